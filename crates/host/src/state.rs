//! The per-request store data and the Wasmtime trait impls that expose it to WASI.

use wasmtime::component::{Instance, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::KeyValueAccess;
use crate::outbound::OutboundHttp;
use crate::sqlite::SqliteAccess;
use crate::variables::ComponentVariables;

/// Everything one component instance can reach; a new one for every request.
pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub sqlite: SqliteAccess,
    pub key_value: KeyValueAccess,
    pub variables: ComponentVariables,
    pub outbound: OutboundHttp,
    pub limits: StoreLimits,
    /// The component's dependencies, instantiated on first use (see `deps`).
    pub dependencies: Vec<Option<Instance>>,
}

/// What a component was granted: its databases, stores and variables.
pub struct Grants {
    sqlite: SqliteAccess,
    key_value: KeyValueAccess,
    variables: ComponentVariables,
}

impl HostState {
    /// Takes the component's grants away (while a dependency that does not inherit them
    /// runs); `restore_configuration` gives them back.
    pub fn deny_configuration(&mut self) -> Grants {
        Grants {
            sqlite: std::mem::replace(&mut self.sqlite, SqliteAccess::denied()),
            key_value: std::mem::take(&mut self.key_value),
            variables: std::mem::take(&mut self.variables),
        }
    }

    pub fn restore_configuration(&mut self, grants: Grants) {
        self.sqlite = grants.sqlite;
        self.key_value = grants.key_value;
        self.variables = grants.variables;
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}
