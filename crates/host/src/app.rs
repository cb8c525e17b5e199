//! Loading an app: manifest, variables, stores and compiled components, every check done
//! before the server binds, so a broken app fails at start in words a user can act on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::key_value::{Backend, KeyValueStores, RedisKeyValue, SqliteKeyValue};
use crate::manifest::{self, DependencySource, LoadedManifest, RouteDecl};
use crate::outbound::AllowedHosts;
use crate::routes::{Duplicate, Route, Router};
use crate::runtime_config::{KeyValueConfig, Location, RuntimeConfig};
use crate::sqlite::{Database, Databases};
use crate::state::HostState;
use crate::variables::{AppVariables, ComponentVariables, Environment};

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
    /// Where compiled components are cached (default: Wasmtime's user cache).
    pub cache_dir: Option<PathBuf>,
}

/// A component ready to instantiate.
pub struct LoadedComponent {
    pub id: String,
    pub pre: ProxyPre<HostState>,
    pub variables: ComponentVariables,
    pub sqlite_databases: Arc<[String]>,
    pub key_value_stores: Arc<[String]>,
    pub environment: Vec<(String, String)>,
    /// `allowed_outbound_hosts`, templates rendered.
    pub allowed_hosts: Arc<AllowedHosts>,
    /// How many dependency instances a request may create (see `link`).
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
    /// Where each open store was configured to be: a reload keeps a store open only if it
    /// is still configured there.
    locations: StoreLocations,
    /// Every wasm file compiled for this app, with the file's stamp when it was read: a
    /// reload recompiles only what changed.
    compiled: HashMap<PathBuf, (FileStamp, Component)>,
}

/// A file's size and modification time: what tells a rebuilt wasm file from the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of the file at `path`; `None` if there is no file there.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl App {
    /// Loads the app for the first time: a new engine, the stores opened, `--sqlite` run.
    pub fn load(options: &AppOptions) -> Result<Self> {
        let engine = crate::engine::new_engine(
            options.max_instances,
            options.max_memory_bytes,
            options.cache_dir.as_deref(),
        )?;
        Self::assemble(options, engine, None)
    }

    /// The app again, from the manifest and wasm files as they are now (`watch`): the same
    /// engine, the same open stores (their data and in-flight transactions untouched), and
    /// the compiled components whose files did not change. `--sqlite` is not run again.
    pub fn reload(&self, options: &AppOptions) -> Result<Self> {
        Self::assemble(options, self.engine.clone(), Some(self))
    }

    fn assemble(options: &AppOptions, engine: Engine, previous: Option<&App>) -> Result<Self> {
        let loaded = LoadedManifest::load(&options.manifest)?;
        let manifest = &loaded.manifest;
        let runtime_config = match &options.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        let state_dir = runtime_config.state_dir(options.state_dir.as_deref(), &loaded.dir);
        let state_dir = state_dir.as_deref();
        let environment = Environment::load(&loaded.dir)?;
        let variables = AppVariables::resolve(&manifest.variables, &options.variables, |name| {
            environment.get(name)
        })?;

        let mut locations = StoreLocations::default();
        let databases = open_databases(
            &loaded,
            &runtime_config,
            state_dir,
            previous.map(|p| (&*p.databases, &p.locations.sqlite)),
            &mut locations.sqlite,
        )?;
        let databases = Arc::new(databases);
        if previous.is_none() {
            run_start_statements(&databases, &options.sqlite_statements)?;
        }
        let key_value = open_key_value_stores(
            &loaded,
            &runtime_config,
            state_dir,
            previous.map(|p| (&*p.key_value, &p.locations.key_value)),
            &mut locations.key_value,
        )?;
        let key_value = Arc::new(key_value);

        let mut loader = Loader {
            loaded: &loaded,
            engine: &engine,
            linker: crate::engine::new_linker(&engine)?,
            compiled: HashMap::new(),
            previous: previous.map(|p| &p.compiled),
        };
        let mut components = Vec::new();
        let mut routes = Vec::new();
        for (id, component) in &manifest.component {
            for trigger in manifest.trigger.http.iter().filter(|t| &t.component == id) {
                if let RouteDecl::Path(raw) = &trigger.route {
                    let route = Route::parse(raw, components.len());
                    routes.push(route.with_context(|| format!("component `{id}`"))?);
                }
            }
            // Cheap checks first: a bad template fails before anything is compiled.
            let configured = Configured {
                variables: variables.render_component(id, &component.variables)?,
                allowed_hosts: allowed_hosts(&variables, id, component)?,
            };
            components.push(loader.load(id, component, configured)?);
        }
        let (router, duplicates) = Router::new(routes);
        report_duplicate_routes(&duplicates, &components);
        let compiled = loader.compiled;
        Ok(Self {
            name: manifest.application.name.clone(),
            version: manifest.application.version.clone(),
            engine,
            components,
            router,
            databases,
            key_value,
            locations,
            compiled,
        })
    }
}

/// A component's configuration, resolved with the app's variables.
struct Configured {
    variables: ComponentVariables,
    allowed_hosts: AllowedHosts,
}

/// `allowed_outbound_hosts`, each entry's templates rendered now: the host knows every
/// variable's value at start (Spin resolves them on first use; the outcome is the same).
fn allowed_hosts(
    variables: &AppVariables,
    id: &str,
    component: &manifest::Component,
) -> Result<AllowedHosts> {
    let what = || format!("`component.{id}.allowed_outbound_hosts` is malformed");
    let entries = component
        .allowed_outbound_hosts
        .iter()
        .map(|entry| variables.render(entry))
        .collect::<Result<Vec<_>>>()
        .with_context(what)?;
    AllowedHosts::parse(&entries).with_context(what)
}

/// Compiles and links components, each wasm file once however many components use it, and
/// not at all if the previous load compiled the same file.
struct Loader<'a> {
    loaded: &'a LoadedManifest,
    engine: &'a Engine,
    linker: Linker<HostState>,
    compiled: HashMap<PathBuf, (FileStamp, Component)>,
    previous: Option<&'a HashMap<PathBuf, (FileStamp, Component)>>,
}

impl Loader<'_> {
    /// Compiles one component and its dependencies and links them, ready to instantiate.
    fn load(
        &mut self,
        id: &str,
        component: &manifest::Component,
        configured: Configured,
    ) -> Result<LoadedComponent> {
        let build = component.build.as_ref().map(|b| b.command.as_str());
        let source = self.loaded.source_path(component);
        let compiled = self.compile(&format!("component `{id}`"), &source, build)?;
        let mut dependencies = Vec::new();
        for dep in &component.dependencies {
            let path = match &dep.source {
                DependencySource::Path(path) => self.loaded.dir.join(path),
                DependencySource::Component(other) => {
                    let other = self.loaded.manifest.component.get(other).with_context(|| {
                        format!(
                            "dependency '{}' of component '{id}': dependency ID '{other}' does not exist",
                            dep.key
                        )
                    })?;
                    self.loaded.source_path(other)
                }
            };
            let what = format!("dependency '{}' of component `{id}`", dep.key);
            dependencies.push((dep.clone(), self.compile(&what, &path, build)?));
        }
        // Dependencies shadow the imports they satisfy in a linker of this component's own.
        let with_dependencies;
        let linker = if dependencies.is_empty() {
            &self.linker
        } else {
            let mut linker = self.linker.clone();
            linker.allow_shadowing(true);
            crate::link::link(
                self.engine,
                id,
                &compiled,
                &dependencies,
                &self.linker,
                &mut linker,
            )?;
            with_dependencies = linker;
            &with_dependencies
        };
        let pre = linker
            .instantiate_pre(&compiled)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component `{id}` imports something this host does not provide")
            })?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{id}` is not an HTTP component (it exports no `wasi:http/incoming-handler`)"))?;
        Ok(LoadedComponent {
            id: id.to_owned(),
            pre,
            variables: configured.variables,
            allowed_hosts: Arc::new(configured.allowed_hosts),
            sqlite_databases: component.sqlite_databases.clone().into(),
            key_value_stores: component.key_value_stores.clone().into(),
            environment: component.environment.clone().into_iter().collect(),
            dependency_count: dependencies.len(),
        })
    }

    /// The compiled component at `path`; `what` names it in errors.
    fn compile(&mut self, what: &str, path: &Path, build: Option<&str>) -> Result<Component> {
        if let Some((_, compiled)) = self.compiled.get(path) {
            return Ok(compiled.clone());
        }
        let stamp = FileStamp::of(path);
        let unchanged = self
            .previous
            .and_then(|previous| previous.get(path))
            .filter(|(before, _)| Some(*before) == stamp);
        let compiled = match unchanged {
            Some((_, compiled)) => compiled.clone(),
            None => {
                let wasm = read_wasm(what, path, build)?;
                Component::new(self.engine, &wasm)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("{what}: {} is not a valid component", path.display())
                    })?
            }
        };
        if let Some(stamp) = stamp {
            self.compiled
                .insert(path.to_path_buf(), (stamp, compiled.clone()));
        }
        Ok(compiled)
    }
}

/// Warns, as Spin does, about routes that a more specific or earlier one always wins over.
fn report_duplicate_routes(duplicates: &[Duplicate], components: &[LoadedComponent]) {
    if duplicates.is_empty() {
        return;
    }
    eprintln!("The following component routes are duplicates and will never be used:");
    let id = |index: usize| components.get(index).map_or("?", |c| c.id.as_str());
    for dup in duplicates {
        eprintln!(
            "  {}: {} (duplicate of {})",
            id(dup.unused),
            dup.route,
            id(dup.used)
        );
    }
}

/// Where each label's store was configured, as resolved when it was opened.
#[derive(Debug, Default)]
struct StoreLocations {
    sqlite: BTreeMap<String, Location>,
    key_value: BTreeMap<String, KeyValueConfig>,
}

/// The databases the components use (and `default`); those `previous` has open where they
/// are still configured are kept. Records each label's location in `locations`.
fn open_databases(
    loaded: &LoadedManifest,
    config: &RuntimeConfig,
    state_dir: Option<&Path>,
    previous: Option<(&Databases, &BTreeMap<String, Location>)>,
    locations: &mut BTreeMap<String, Location>,
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
        let Some(location) = config.sqlite_database(&label, state_dir) else {
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
        let kept = previous
            .filter(|(_, was)| was.get(&label) == Some(&location))
            .and_then(|(open, _)| open.get(&label));
        let db = match (kept, &location) {
            (Some(open), _) => Arc::clone(open),
            (None, Location::File(path)) => {
                if label == "default" {
                    let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                    eprintln!("Storing default SQLite data to {shown:?}.");
                }
                Database::open(path)?
            }
            (None, Location::Memory) => {
                eprintln!(
                    "Storing SQLite data of `{label}` in memory: it is gone when the host stops."
                );
                Database::open_in_memory(&label)?
            }
        };
        locations.insert(label.clone(), location);
        databases.insert(label, db);
    }
    Ok(databases)
}

/// The key-value stores the components use. Labels that share a file share one connection,
/// labels that share a Redis URL one pool; those `previous` has open where they are still
/// configured are kept. Records each label's configuration in `locations`.
fn open_key_value_stores(
    loaded: &LoadedManifest,
    config: &RuntimeConfig,
    state_dir: Option<&Path>,
    previous: Option<(&KeyValueStores, &BTreeMap<String, KeyValueConfig>)>,
    locations: &mut BTreeMap<String, KeyValueConfig>,
) -> Result<KeyValueStores> {
    let mut stores = KeyValueStores::default();
    let mut files: Vec<(PathBuf, Arc<SqliteKeyValue>)> = Vec::new();
    let mut servers: Vec<(String, Arc<RedisKeyValue>)> = Vec::new();
    let mut labels: Vec<&String> = loaded
        .manifest
        .component
        .values()
        .flat_map(|c| &c.key_value_stores)
        .collect();
    labels.sort();
    labels.dedup();
    for label in labels {
        let Some(store) = config.key_value_store(label, state_dir) else {
            bail!(
                "unknown key_value_stores label `{label}`: only `default` exists without \
                 configuration; define `[key_value_store.{label}]` in a runtime config file \
                 (--runtime-config-file)"
            );
        };
        locations.insert(label.clone(), store.clone());
        let kept = previous
            .filter(|(_, was)| was.get(label) == Some(&store))
            .and_then(|(open, _)| open.get(label));
        if let Some(open) = kept {
            stores.insert(label.clone(), open);
            continue;
        }
        let backend: Arc<dyn Backend> = match store {
            KeyValueConfig::Spin(Location::File(path)) => {
                let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
                let file = match files.iter().find(|(p, _)| *p == shown) {
                    Some((_, file)) => Arc::clone(file),
                    None => {
                        if label == "default" {
                            eprintln!("Storing default key-value data to {shown:?}.");
                        }
                        let file = SqliteKeyValue::open(&path)?;
                        files.push((shown, Arc::clone(&file)));
                        file
                    }
                };
                file.store(label)
            }
            KeyValueConfig::Spin(Location::Memory) => {
                eprintln!("Storing key-value data of `{label}` in memory: it is gone when the host stops.");
                SqliteKeyValue::open_in_memory()?.store(label)
            }
            KeyValueConfig::Redis { url } => {
                let server = match servers.iter().find(|(u, _)| *u == url) {
                    Some((_, server)) => Arc::clone(server),
                    None => {
                        let server = Arc::new(RedisKeyValue::new(&url)?);
                        servers.push((url, Arc::clone(&server)));
                        server
                    }
                };
                eprintln!(
                    "Storing key-value data of `{label}` in {}.",
                    server.summary()
                );
                server
            }
        };
        stores.insert(label.clone(), backend);
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
