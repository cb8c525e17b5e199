//! Loading an app: manifest, variables, stores and compiled components, every check done
//! before the server binds, so a broken app fails at start in words a user can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::deps::{Dependency, DependencySource};
use crate::kv::{KeyValueFile, KeyValueStores};
use crate::manifest::{LoadedManifest, RouteDecl};
use crate::routes::{Route, Router};
use crate::runtime_config::RuntimeConfig;
use crate::sqlite::{Database, Databases};
use crate::state::HostState;
use crate::variables::{AppVariables, ComponentVariables};

/// What `up` was asked to run.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub runtime_config: Option<PathBuf>,
    pub sqlite_statements: Vec<String>,
    pub variables: Vec<(String, String)>,
    pub max_instances: u32,
    pub max_memory_bytes: usize,
}

/// A component ready to instantiate.
pub struct LoadedComponent {
    pub id: String,
    pub pre: ProxyPre<HostState>,
    pub variables: ComponentVariables,
    pub sqlite_databases: Arc<[String]>,
    pub key_value_stores: Arc<[String]>,
    pub environment: Vec<(String, String)>,
    /// How many dependency instances a request may create (see `deps`).
    pub dependency_count: usize,
}

pub struct App {
    pub name: String,
    pub version: Option<String>,
    pub engine: Engine,
    pub components: Vec<LoadedComponent>,
    pub router: Router,
    pub databases: Arc<Databases>,
    pub key_value: Arc<KeyValueStores>,
}

impl App {
    pub fn load(options: &AppOptions) -> Result<Self> {
        let loaded = LoadedManifest::load(&options.manifest)?;
        let manifest = &loaded.manifest;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| loaded.dir.join(".spin"));
        let runtime_config = match &options.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        let variables = AppVariables::resolve(&manifest.variables, &options.variables, |name| {
            std::env::var(name).ok()
        })?;

        let databases = Arc::new(open_databases(&loaded, &runtime_config, &state_dir)?);
        run_start_statements(&databases, &options.sqlite_statements)?;
        let key_value = Arc::new(open_key_value_stores(&loaded, &runtime_config, &state_dir)?);

        let engine = new_engine(options.max_instances, options.max_memory_bytes)?;
        let linker = new_linker(&engine)?;

        let mut components = Vec::new();
        let mut routes = Vec::new();
        for (id, component) in &manifest.component {
            let index = components.len();
            for trigger in manifest.trigger.http.iter().filter(|t| &t.component == id) {
                if let RouteDecl::Path(raw) = &trigger.route {
                    routes.push(
                        Route::parse(raw, index).with_context(|| format!("component `{id}`"))?,
                    );
                }
            }
            let source = loaded.source_path(component);
            let wasm = read_wasm(
                &format!("component `{id}`"),
                &source,
                component.build.as_ref().map(|b| b.command.as_str()),
            )?;
            let compiled = Component::new(&engine, &wasm)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{id}`: {} is not a valid component",
                        source.display()
                    )
                })?;
            let mut dependencies = Vec::new();
            for (key, decl) in &component.dependencies {
                let dep =
                    Dependency::parse(key, decl, component.dependencies_inherit_configuration)
                        .with_context(|| format!("`component.{id}.dependencies.\"{key}\"`"))?;
                let path = match &dep.source {
                    DependencySource::Path(path) => loaded.dir.join(path),
                    DependencySource::Component(other) => {
                        let other = manifest.component.get(other).with_context(|| {
                            format!("dependency '{key}' of component '{id}': dependency ID '{other}' does not exist")
                        })?;
                        loaded.source_path(other)
                    }
                };
                let what = format!("dependency '{key}' of component `{id}`");
                let wasm = read_wasm(
                    &what,
                    &path,
                    component.build.as_ref().map(|b| b.command.as_str()),
                )?;
                let dep_component = Component::new(&engine, &wasm)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("{what}: {} is not a valid component", path.display())
                    })?;
                dependencies.push((dep, dep_component));
            }
            let mut component_linker;
            let linker_for_component = if dependencies.is_empty() {
                &linker
            } else {
                component_linker = linker.clone();
                component_linker.allow_shadowing(true);
                crate::deps::link(
                    &engine,
                    id,
                    &compiled,
                    &dependencies,
                    &linker,
                    &mut component_linker,
                )?;
                &component_linker
            };
            let pre = linker_for_component
                .instantiate_pre(&compiled)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` imports something this host does not provide")
                })?;
            let pre = ProxyPre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component `{id}` is not an HTTP component (it exports no `wasi:http/incoming-handler`)"))?;
            components.push(LoadedComponent {
                id: id.clone(),
                pre,
                variables: variables.render_component(id, &component.variables)?,
                sqlite_databases: component.sqlite_databases.clone().into(),
                key_value_stores: component.key_value_stores.clone().into(),
                environment: component.environment.clone().into_iter().collect(),
                dependency_count: dependencies.len(),
            });
        }
        let (router, duplicates) = Router::new(routes);
        if !duplicates.is_empty() {
            eprintln!("The following component routes are duplicates and will never be used:");
            for dup in &duplicates {
                let id = |index: usize| {
                    components
                        .get(index)
                        .map_or("?", |c: &LoadedComponent| c.id.as_str())
                };
                eprintln!(
                    "  {}: {} (duplicate of {})",
                    id(dup.unused),
                    dup.route,
                    id(dup.used)
                );
            }
        }
        Ok(Self {
            name: manifest.application.name.clone(),
            version: manifest.application.version.clone(),
            engine,
            components,
            router,
            databases,
            key_value,
        })
    }
}

fn open_databases(
    loaded: &LoadedManifest,
    config: &RuntimeConfig,
    state_dir: &Path,
) -> Result<Databases> {
    let mut databases = Databases::default();
    // `--sqlite` statements run on the default database whether or not a component uses it.
    let mut labels = vec!["default".to_owned()];
    for component in loaded.manifest.component.values() {
        labels.extend(component.sqlite_databases.iter().cloned());
    }
    labels.sort();
    labels.dedup();
    for label in labels {
        let Some(path) = config.sqlite_path(&label, state_dir)? else {
            let users: Vec<&str> = loaded
                .manifest
                .component
                .iter()
                .filter(|(_, c)| c.sqlite_databases.contains(&label))
                .map(|(id, _)| id.as_str())
                .collect();
            bail!(
                "component `{}` uses the SQLite database `{label}`, which is not defined: only \
                 `default` exists without configuration; define `[sqlite_database.{label}]` in a \
                 runtime config file (--runtime-config-file)",
                users.join("`, `")
            );
        };
        if label == "default" {
            let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
            eprintln!("Storing default SQLite data to {shown:?}.");
        }
        databases.insert(label, Database::open(&path)?);
    }
    Ok(databases)
}

/// The key-value stores the components use. Labels that share a file share one connection.
fn open_key_value_stores(
    loaded: &LoadedManifest,
    config: &RuntimeConfig,
    state_dir: &Path,
) -> Result<KeyValueStores> {
    let mut stores = KeyValueStores::default();
    let mut files: Vec<(PathBuf, Arc<KeyValueFile>)> = Vec::new();
    let mut labels: Vec<&String> = loaded
        .manifest
        .component
        .values()
        .flat_map(|c| &c.key_value_stores)
        .collect();
    labels.sort();
    labels.dedup();
    for label in labels {
        let Some(path) = config.key_value_path(label, state_dir)? else {
            bail!(
                "unknown key_value_stores label `{label}`: only `default` exists without \
                 configuration; define `[key_value_store.{label}]` in a runtime config file \
                 (--runtime-config-file)"
            );
        };
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let file = match files.iter().find(|(p, _)| *p == shown) {
            Some((_, file)) => Arc::clone(file),
            None => {
                if label == "default" {
                    eprintln!("Storing default key-value data to {shown:?}.");
                }
                let file = KeyValueFile::open(&path)?;
                files.push((shown, Arc::clone(&file)));
                file
            }
        };
        stores.insert(label.clone(), file);
    }
    Ok(stores)
}

/// `--sqlite @FILE[:LABEL]` runs a file of statements on a database (`default` unless a
/// label is given); `--sqlite STATEMENT` runs a statement on the default database.
fn run_start_statements(databases: &Databases, statements: &[String]) -> Result<()> {
    for statement in statements {
        let (sql, label, origin) = match statement.strip_prefix('@') {
            Some(spec) => {
                let (file, label) = match spec.rsplit_once(':') {
                    Some((file, label)) if !label.is_empty() && !label.contains(['/', '\\']) => {
                        (file, label)
                    }
                    _ => (spec, "default"),
                };
                let sql = std::fs::read_to_string(file).with_context(|| {
                    format!("could not read file '{file}' containing sql statements")
                })?;
                (sql, label, format!("from file '{file}'"))
            }
            None => (statement.clone(), "default", format!("'{statement}'")),
        };
        let db = databases.get(label).with_context(|| {
            format!("--sqlite {statement}: a database named '{label}' was expected but not found")
        })?;
        db.execute_batch(&sql).with_context(|| {
            format!("failed to execute sql against database '{label}' {origin}")
        })?;
    }
    Ok(())
}

/// Reads a component's wasm; `what` names it in errors ("component `products`").
fn read_wasm(what: &str, source: &Path, build_command: Option<&str>) -> Result<Vec<u8>> {
    match std::fs::read(source) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let hint = match build_command {
                Some(command) => format!("build it with `{command}`, or run `up --build`"),
                None => "build it first".to_owned(),
            };
            bail!("{what}: {} does not exist: {hint}", source.display())
        }
        Err(err) => Err(err).with_context(|| format!("{what}: cannot read {}", source.display())),
    }
}

/// Per slot, the most memory reset in place rather than returned to the kernel.
const KEEP_RESIDENT_BYTES: usize = 16 << 20;
/// Slots whose memory is returned to the kernel together.
const DECOMMIT_BATCH: usize = 32;

fn new_engine(max_instances: u32, max_memory_bytes: usize) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epochs bound how long a request may run inside wasm.
    config.epoch_interruption(true);
    // Compiled components are cached on disk, so a restart does not recompile.
    match wasmtime::Cache::from_file(None) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(err) => eprintln!("warning: compilation cache disabled: {err:#}"),
    }
    let mut pool = PoolingAllocationConfig::default();
    // Each request's instance takes one slot; an app with several components per request
    // (dependencies, chaining) takes a few.
    let slots = max_instances.saturating_mul(4);
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(4))
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memory_size(max_memory_bytes)
        // Resetting a slot with madvise flushes TLBs on every core (measured: a quarter of
        // the host's CPU under load). Where the kernel can report which pages an instance
        // touched (PAGEMAP_SCAN, Linux 6.7+), reset just those with memset and keep them
        // resident; elsewhere batch the decommits.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .decommit_batch_size(DECOMMIT_BATCH);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot configure the WebAssembly engine")
}

fn new_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::SpinSubset::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}
