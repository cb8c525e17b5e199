//! WASI 0.2 (`wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`, ...), as Spin's
//! `factor-wasi` gives it to a component: its `environment` from the manifest, the host's
//! stdout and stderr (the access log is the guest's stdout), and the instance's WASI
//! resource table, which `wasi:http` shares (`outbound_http`).

use anyhow::Result;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiView};

use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};

pub struct WasiFactor;

/// A component's environment variables.
pub struct ComponentState {
    environment: Vec<(String, String)>,
}

pub struct InstanceState {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl Factor for WasiFactor {
    type AppState = ();
    type ComponentState = ComponentState;
    type InstanceState = InstanceState;

    fn configure_app(_ctx: &AppContext<'_>, _previous: Option<&()>) -> Result<()> {
        Ok(())
    }

    fn configure_component(_app: &(), ctx: &ComponentContext<'_>) -> Result<ComponentState> {
        Ok(ComponentState {
            environment: ctx.component.environment.clone().into_iter().collect(),
        })
    }

    fn instance(component: &ComponentState, _ctx: &InstanceContext) -> InstanceState {
        InstanceState {
            ctx: WasiCtx::builder()
                .inherit_stdout()
                .inherit_stderr()
                .envs(&component.environment)
                .build(),
            table: ResourceTable::new(),
        }
    }
}

/// Links WASI 0.2 for a store whose data is a `WasiView` (which projects to this state).
pub fn add_to_linker<T: WasiView + Send + 'static>(
    linker: &mut Linker<T>,
    _get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker).map_err(anyhow::Error::from)
}
