//! Loading an app: manifest, runtime config, variables, each host interface's state and the
//! compiled components, every check done before the server binds, so a broken app fails at
//! start in words a user can act on.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::Engine;
use wasmtime_wasi_http::handler::ProxyHandler;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::compile::{Compiled, Compiler, WasmFile};
use crate::component_logs::Follow;
use crate::expressions::{AppVariables, Environment};
use crate::factor::{AppContext, ComponentContext};
use crate::factors::{self, AppStates, ComponentStates, InstanceState};
use crate::manifest::{self, DependencySource, LoadedManifest, RouteDecl};
use crate::routes::{Duplicate, Route, Router};
use crate::runtime_config::RuntimeConfig;

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
    /// Write `/tmp/perf-<pid>.map` so `perf` names the compiled wasm functions.
    pub perfmap: bool,
    /// `--log-dir`: where the components' output files go (`""`: none; default: the
    /// runtime config's `log_dir`, else `logs` in the state directory).
    pub log_dir: Option<PathBuf>,
    /// Whose output is copied to the host's stderr.
    pub follow: Follow,
}

/// A component ready to instantiate.
pub struct LoadedComponent {
    pub id: String,
    /// The manifest's description, printed under its routes.
    pub description: Option<String>,
    pub handler: Handler,
    /// What each host interface granted it.
    pub factors: Arc<ComponentStates>,
    /// How many linked dependencies' instances a request may create (see `link`); none
    /// when they are composed in.
    pub dependency_count: usize,
}

/// How a component's requests get instances, by what it exports.
pub enum Handler {
    /// `wasi:http/incoming-handler@0.2.x` (WASI 0.2): a fresh instance for each request.
    Single(ProxyPre<InstanceState>),
    /// `wasi:http/handler@0.3.x` (WASI 0.3): instances reused across requests (`reuse`),
    /// made by the trigger's handler, set up on the component's first request.
    Reused {
        pre: ServicePre<InstanceState>,
        instances: std::sync::OnceLock<ProxyHandler<crate::reuse::Reuse>>,
    },
}

pub struct App {
    pub name: String,
    pub version: Option<String>,
    pub engine: Engine,
    pub components: Vec<LoadedComponent>,
    pub router: Router,
    /// Each host interface's state: the open stores among it, which a reload keeps where
    /// they are still configured the same.
    factors: AppStates,
    /// Every wasm file compiled for this app: a reload recompiles only what changed.
    compiled: Compiled,
}

impl App {
    /// Loads the app for the first time: a new engine, the stores opened, `--sqlite` run.
    pub fn load(options: &AppOptions) -> Result<Self> {
        let engine = crate::engine::new_engine(
            options.max_instances,
            options.max_memory_bytes,
            options.cache_dir.as_deref(),
            options.perfmap,
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
        let runtime_config = RuntimeConfig::load(
            options.runtime_config.as_deref(),
            options.state_dir.as_deref(),
            &loaded.dir,
        )?;
        runtime_config.check_keys(&factors::RUNTIME_CONFIG_KEYS.concat())?;
        let environment = Environment::load(&loaded.dir)?;
        let variables =
            AppVariables::resolve(&loaded.manifest.variables, &options.variables, |name| {
                environment.get(name)
            })?;
        let ctx = AppContext {
            manifest: &loaded,
            runtime_config: &runtime_config,
            sqlite_statements: &options.sqlite_statements,
            log_dir: options.log_dir.as_deref(),
            follow: &options.follow,
        };
        let factors = AppStates::configure(&ctx, previous.map(|p| &p.factors))?;
        let mut loader = Loader {
            loaded: &loaded,
            linker: crate::engine::new_linker(&engine)?,
            compiler: Compiler::new(&engine, previous.map(|p| &p.compiled)),
            engine: &engine,
        };
        let mut components = Vec::new();
        let mut routes = Vec::new();
        for (id, component) in &loaded.manifest.component {
            routes.extend(component_routes(&loaded, id, components.len())?);
            // Cheap checks first: a bad template fails before anything is compiled.
            let granted = factors.component(&ComponentContext {
                id,
                component,
                variables: &variables,
            })?;
            components.push(loader.load(id, component, granted)?);
        }
        let (router, duplicates) = Router::new(routes);
        report_duplicate_routes(&duplicates, &components);
        Ok(Self {
            name: loaded.manifest.application.name.clone(),
            version: loaded.manifest.application.version.clone(),
            compiled: loader.compiler.finish(),
            engine,
            components,
            router,
            factors,
        })
    }
}

/// The routes of component `id`, which is the `index`th.
fn component_routes(loaded: &LoadedManifest, id: &str, index: usize) -> Result<Vec<Route>> {
    let triggers = loaded.manifest.trigger.http.iter();
    triggers
        .filter(|trigger| trigger.component == id)
        .filter_map(|trigger| match &trigger.route {
            RouteDecl::Path(raw) => Some(raw),
            RouteDecl::Private { .. } => None,
        })
        .map(|raw| Route::parse(raw, index).with_context(|| format!("component `{id}`")))
        .collect()
}

/// Compiles and links components, ready to instantiate.
struct Loader<'a> {
    loaded: &'a LoadedManifest,
    engine: &'a Engine,
    linker: Linker<InstanceState>,
    compiler: Compiler<'a>,
}

impl Loader<'_> {
    /// Compiles one component and its dependencies and links them.
    fn load(
        &mut self,
        id: &str,
        component: &manifest::Component,
        factors: ComponentStates,
    ) -> Result<LoadedComponent> {
        let build = component.build.as_ref().map(|b| b.command.as_str());
        let source = self.loaded.source_path(component);
        let main = WasmFile {
            what: &format!("component `{id}`"),
            path: &source,
        };
        let dependencies = self.dependencies(id, component)?;
        let inherit = dependencies.iter().all(|(dep, _, _)| dep.inherit);
        let (compiled, linked) = if inherit {
            // Composed in, as Spin does: one component, nothing to link.
            let files: Vec<_> = dependencies
                .iter()
                .map(|(dep, what, path)| (dep, WasmFile { what, path }))
                .collect();
            let compiled = self.compiler.compile_composed(id, main, &files, build)?;
            (compiled, None)
        } else {
            // Dependencies shadow the imports they satisfy in a linker of this component's own.
            let compiled = self.compiler.compile(main.what, main.path, build)?;
            let mut deps = Vec::new();
            for (dep, what, path) in dependencies {
                deps.push((dep, self.compiler.compile(&what, &path, build)?));
            }
            let mut linker = self.linker.clone();
            linker.allow_shadowing(true);
            crate::link::Dependencies::new(self.engine, id, &self.linker).link(
                &compiled,
                &deps,
                &mut linker,
            )?;
            (compiled, Some((linker, deps.len())))
        };
        let linker = linked.as_ref().map_or(&self.linker, |(linker, _)| linker);
        let pre = linker
            .instantiate_pre(&compiled)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component `{id}` imports something this host does not provide")
            })?;
        let handler = match ServicePre::new(pre.clone()) {
            Ok(pre) => Handler::Reused {
                pre,
                instances: std::sync::OnceLock::new(),
            },
            Err(_) => Handler::Single(
                ProxyPre::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "component `{id}` is not an HTTP component (it exports neither \
                     `wasi:http/incoming-handler@0.2` nor `wasi:http/handler@0.3`)"
                        )
                    })?,
            ),
        };
        Ok(LoadedComponent {
            id: id.to_owned(),
            description: component.description.clone(),
            handler,
            factors: Arc::new(factors),
            dependency_count: linked.map_or(0, |(_, count)| count),
        })
    }

    /// The component's dependencies in key order, each with its name in errors and its file.
    fn dependencies(
        &self,
        id: &str,
        component: &manifest::Component,
    ) -> Result<Vec<(manifest::Dependency, String, PathBuf)>> {
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
            dependencies.push((dep.clone(), what, path));
        }
        Ok(dependencies)
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

/// The app being served now. A request takes the current one when it arrives and keeps it
/// to the end; a reload (`watch`) replaces it for the requests that come after.
pub struct LiveApp {
    current: RwLock<Arc<App>>,
}

impl LiveApp {
    pub fn new(app: App) -> Self {
        Self {
            current: RwLock::new(Arc::new(app)),
        }
    }

    pub fn get(&self) -> Arc<App> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, app: App) {
        let app = Arc::new(app);
        match self.current.write() {
            Ok(mut current) => *current = app,
            Err(poisoned) => *poisoned.into_inner() = app,
        }
    }
}
