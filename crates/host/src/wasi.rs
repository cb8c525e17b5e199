//! WASI 0.2 and 0.3 (`wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`, ...), as Spin's
//! `factor-wasi` gives it to a component: its `environment` from the manifest, its stdout
//! and stderr where `spin up` puts them (`component_logs`), and the instance's WASI
//! resource table, which `wasi:http` shares (`outbound_http`).

use anyhow::Result;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiView};

use crate::component_logs::{ComponentLogs, GuestOutput};
use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};

pub struct WasiFactor;

/// A component's environment variables and where its output goes.
pub struct ComponentState {
    environment: Vec<(String, String)>,
    stdout: GuestOutput,
    stderr: GuestOutput,
}

pub struct InstanceState {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl Factor for WasiFactor {
    type AppState = ComponentLogs;
    type ComponentState = ComponentState;
    type InstanceState = InstanceState;

    fn configure_app(
        ctx: &AppContext<'_>,
        previous: Option<&ComponentLogs>,
    ) -> Result<ComponentLogs> {
        let logs = ComponentLogs {
            dir: ctx.runtime_config.log_dir(ctx.log_dir),
            follow: ctx.follow.clone(),
        };
        logs.prepare(previous.is_none_or(|previous| previous.dir != logs.dir))?;
        Ok(logs)
    }

    fn configure_component(
        logs: &ComponentLogs,
        ctx: &ComponentContext<'_>,
    ) -> Result<ComponentState> {
        let (stdout, stderr) = logs.streams(ctx.id)?;
        Ok(ComponentState {
            environment: ctx.component.environment.clone().into_iter().collect(),
            stdout,
            stderr,
        })
    }

    fn instance(component: &ComponentState, _ctx: &InstanceContext) -> InstanceState {
        InstanceState {
            ctx: WasiCtx::builder()
                .stdout(component.stdout.clone())
                .stderr(component.stderr.clone())
                .envs(&component.environment)
                .build(),
            table: ResourceTable::new(),
        }
    }
}

/// Links WASI 0.2 and WASI 0.3 for a store whose data is a `WasiView` (which projects to
/// this state): both generations share the context and the table, and a WASI 0.3 component
/// built with Rust's `std` imports both.
pub fn add_to_linker<T: WasiView + Send + 'static>(
    linker: &mut Linker<T>,
    _get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi::p3::add_to_linker(linker).map_err(anyhow::Error::from)
}
