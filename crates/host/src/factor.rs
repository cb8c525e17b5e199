//! The shape of a host interface, as Spin's factors have it (`spin-factors`): each interface
//! is a module with three levels of state and the bindings that expose the last one.
//!
//! - app state, made once per load of the app from the manifest and the runtime config,
//!   keeping what the previous load had open where it is still configured the same (a
//!   reload under `watch` keeps stores and their data);
//! - component state, what one component was granted (its stores, its variables, its
//!   outbound hosts), made at load;
//! - instance state, made for each instance (each request), with its own resource table:
//!   the interface's generated `Host` traits are implemented on it, and its `add_to_linker`
//!   links them with a projection from the store's data to it.
//!
//! `factors.rs` lists the interfaces and puts them together.

use std::future::Future;
use std::pin::Pin;

use anyhow::Result;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::expressions::AppVariables;
use crate::manifest::{Component, LoadedManifest};
use crate::runtime_config::RuntimeConfig;

/// One host interface: how its state is made at each level.
pub trait Factor {
    type AppState: Send + Sync + 'static;
    type ComponentState: Send + Sync + 'static;
    type InstanceState: Send + 'static;

    /// The top-level keys of the runtime config file this interface reads.
    const RUNTIME_CONFIG_KEYS: &'static [&'static str] = &[];

    /// The app-level state; `previous` is the running app's, on a reload.
    fn configure_app(
        ctx: &AppContext<'_>,
        previous: Option<&Self::AppState>,
    ) -> Result<Self::AppState>;

    /// What one component may use, checked at load.
    fn configure_component(
        app: &Self::AppState,
        ctx: &ComponentContext<'_>,
    ) -> Result<Self::ComponentState>;

    /// A fresh instance's state.
    fn instance(component: &Self::ComponentState, ctx: &InstanceContext) -> Self::InstanceState;

    /// The state a dependency runs with when it does not inherit the component's
    /// configuration (`dependencies_inherit_configuration` unset), as Spin's deny adapter
    /// leaves it: nothing granted. `None` for an interface that grants nothing per component.
    fn denied() -> Option<Self::InstanceState> {
        None
    }
}

/// What an app is configured from.
pub struct AppContext<'a> {
    pub manifest: &'a LoadedManifest,
    pub runtime_config: &'a RuntimeConfig,
    /// `--sqlite` statements, run on the first load only.
    pub sqlite_statements: &'a [String],
    /// `--log-dir` (`""`: none), which wins over the runtime config's `log_dir`.
    pub log_dir: Option<&'a std::path::Path>,
    /// Whose output is copied to the host's stderr (`--follow`, `--quiet`).
    pub follow: &'a crate::component_logs::Follow,
}

/// One component of the app.
pub struct ComponentContext<'a> {
    pub id: &'a str,
    pub component: &'a Component,
    /// The application's variables, resolved.
    pub variables: &'a AppVariables,
}

/// What an instance is made with, from the trigger that runs it.
pub struct InstanceContext {
    /// Runs service-chained requests (`http://<component>.spin.internal`).
    pub chain: std::sync::Arc<dyn Chain>,
}

pub type ChainFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// Runs a chained request in another component of the app (the HTTP trigger does).
pub trait Chain: Send + Sync {
    fn chain(&self, component: &str, request: http::Request<WasiBody>) -> ChainFuture;
}

/// The outbound hooks of an instance made while the host stops: nothing to chain to.
pub struct NoChain;

impl Chain for NoChain {
    fn chain(&self, _target: &str, _request: http::Request<WasiBody>) -> ChainFuture {
        Box::pin(async {
            Err(HttpError::InternalError(Some(
                "the host is stopping".into(),
            )))
        })
    }
}
