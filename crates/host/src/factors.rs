//! The host's interfaces, listed once, and the per-instance store data made of them.
//!
//! Each interface is a module of its own with the shape of `factor.rs` (app, component and
//! instance state; its bindings linked with a projection from the store's data to its
//! instance state). A new interface is a new module and one line in `factors!` below.

use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmtime::component::{Instance, Linker};

use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::factor::{AppContext, Chain, ComponentContext, Factor, InstanceContext, NoChain};
use crate::{key_value, outbound_http, sqlite, variables, wasi};

/// Puts the listed interfaces together: for each level of state, a struct with a field per
/// interface (named after its module), made by calling each interface in turn.
macro_rules! factors {
    ($($module:ident :: $factor:ident),* $(,)?) => {
        /// Every interface's app-level state.
        pub struct AppStates {
            $(pub $module: <$module::$factor as Factor>::AppState,)*
        }

        /// Every interface's grants to one component.
        pub struct ComponentStates {
            $(pub $module: <$module::$factor as Factor>::ComponentState,)*
        }

        /// Every interface's state in one instance.
        pub struct InstanceStates {
            $(pub $module: <$module::$factor as Factor>::InstanceState,)*
        }

        /// What a non-inheriting dependency took away from the instance (`deny`).
        pub struct Taken {
            $($module: Option<<$module::$factor as Factor>::InstanceState>,)*
        }

        /// The runtime config keys the interfaces read.
        pub const RUNTIME_CONFIG_KEYS: &[&[&str]] =
            &[$(<$module::$factor as Factor>::RUNTIME_CONFIG_KEYS),*];

        impl AppStates {
            pub fn configure(ctx: &AppContext<'_>, previous: Option<&Self>) -> Result<Self> {
                Ok(Self {
                    $($module: <$module::$factor as Factor>::configure_app(
                        ctx,
                        previous.map(|p| &p.$module),
                    )?,)*
                })
            }

            pub fn component(&self, ctx: &ComponentContext<'_>) -> Result<ComponentStates> {
                Ok(ComponentStates {
                    $($module: <$module::$factor as Factor>::configure_component(
                        &self.$module,
                        ctx,
                    )?,)*
                })
            }
        }

        impl ComponentStates {
            pub fn instance(&self, ctx: &InstanceContext) -> InstanceStates {
                InstanceStates {
                    $($module: <$module::$factor as Factor>::instance(&self.$module, ctx),)*
                }
            }
        }

        impl InstanceStates {
            /// Swaps the grants out for what a dependency without the component's
            /// configuration may use (nothing); `restore` gives them back.
            pub fn deny(&mut self) -> Taken {
                Taken {
                    $($module: <$module::$factor as Factor>::denied()
                        .map(|denied| std::mem::replace(&mut self.$module, denied)),)*
                }
            }

            pub fn restore(&mut self, taken: Taken) {
                $(if let Some(state) = taken.$module {
                    self.$module = state;
                })*
            }
        }

        /// Links every interface, each on its own part of the store's data.
        pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
            $($module::add_to_linker(linker, |state: &mut InstanceState| {
                &mut state.factors.$module
            })?;)*
            Ok(())
        }
    };
}

factors! {
    wasi::WasiFactor,
    outbound_http::OutboundHttpFactor,
    sqlite::SqliteFactor,
    key_value::KeyValueFactor,
    variables::VariablesFactor,
}

/// The data of one instance's store: its interfaces' states, its limits, and the instances
/// of its dependencies.
pub struct InstanceState {
    pub factors: InstanceStates,
    pub limits: Limits,
    /// The component's dependencies, instantiated on first use (see `link`).
    pub dependencies: Vec<Option<Instance>>,
}

impl InstanceState {
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }
}

/// An instance's limits, and how much linear memory it has grown in all (its memories and
/// those of the dependencies composed into it), which decides whether a reused instance
/// takes more requests (`reuse`).
pub struct Limits {
    pub store: StoreLimits,
    pub grown: Arc<AtomicUsize>,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.store.memory_growing(current, desired, maximum)?;
        if allowed {
            self.grown
                .fetch_add(desired.saturating_sub(current), Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.store.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.store.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.store.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.store.instances()
    }

    fn tables(&self) -> usize {
        self.store.tables()
    }

    fn memories(&self) -> usize {
        self.store.memories()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = &mut self.factors.wasi;
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// `wasi:http` keeps its resources in the WASI table, beside the streams they use.
impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = &mut self.factors.outbound_http;
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table: &mut self.factors.wasi.table,
            hooks: &mut http.hooks,
        }
    }
}

/// A store for an instance of a component: its interfaces' states, its limits, and the
/// trigger to chain requests to (none while the host stops). `grown` counts the memory it
/// grows. The caller sets how time is bounded.
pub fn new_store(
    engine: &Engine,
    factors: &ComponentStates,
    dependency_count: usize,
    chain: Option<Arc<dyn Chain>>,
    grown: Arc<AtomicUsize>,
) -> Store<InstanceState> {
    let chain = chain.unwrap_or_else(|| Arc::new(NoChain));
    let state = InstanceState {
        factors: factors.instance(&InstanceContext { chain }),
        limits: Limits {
            store: StoreLimitsBuilder::new().instances(64).build(),
            grown,
        },
        dependencies: vec![None; dependency_count],
    };
    let mut store = Store::new(engine, state);
    store.limiter(InstanceState::limiter);
    store
}
