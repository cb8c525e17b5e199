//! Spin's variables interface (`fermyon:spin/variables@2.0.0`, and `spin:variables@3.0.0`,
//! async, which WASI 0.3 guests import), as Spin's
//! `factor-variables` serves it: a component reads its own `[component.<id>.variables]`,
//! rendered at load against the application's variables (`expressions.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{Accessor, HasSelf, Linker};

use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};
use bindings::fermyon::spin::variables;
use bindings::spin::variables::variables as v3;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "variables",
        imports: { default: async | trappable },
    });
}

pub struct VariablesFactor;

impl Factor for VariablesFactor {
    type AppState = ();
    type ComponentState = ComponentVariables;
    type InstanceState = ComponentVariables;

    fn configure_app(_ctx: &AppContext<'_>, _previous: Option<&()>) -> Result<()> {
        Ok(())
    }

    fn configure_component(_app: &(), ctx: &ComponentContext<'_>) -> Result<ComponentVariables> {
        let values = ctx.variables.render_all(ctx.id, &ctx.component.variables)?;
        Ok(ComponentVariables {
            component: ctx.id.into(),
            values: Arc::new(values),
        })
    }

    fn instance(component: &ComponentVariables, _ctx: &InstanceContext) -> ComponentVariables {
        component.clone()
    }

    fn denied() -> Option<ComponentVariables> {
        Some(ComponentVariables::default())
    }
}

/// Links the interface, on the state `get` projects to.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ComponentVariables,
) -> Result<()> {
    bindings::Variables::add_to_linker::<T, HasSelf<ComponentVariables>>(linker, get)
        .map_err(anyhow::Error::from)
}

/// The rendered variables one component may read.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    component: Arc<str>,
    values: Arc<HashMap<String, String>>,
}

impl ComponentVariables {
    fn lookup(&self, name: &str) -> Result<String, variables::Error> {
        if let Err(reason) = check_key(name) {
            return Err(variables::Error::InvalidName(format!("{name:?}: {reason}")));
        }
        self.values.get(name).cloned().ok_or_else(|| {
            variables::Error::Undefined(format!("no variable for {:?}.{name:?}", self.component))
        })
    }
}

impl variables::Host for ComponentVariables {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.lookup(&name))
    }
}

impl v3::Host for ComponentVariables {}

impl<U> v3::HostWithStore<U> for HasSelf<ComponentVariables> {
    async fn get(
        accessor: &Accessor<U, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, v3::Error>> {
        let value = accessor.with(|mut access| access.get().lookup(&name));
        Ok(value.map_err(|err| match err {
            variables::Error::InvalidName(text) => v3::Error::InvalidName(text),
            variables::Error::Undefined(text) => v3::Error::Undefined(text),
            variables::Error::Provider(text) => v3::Error::Provider(text),
            variables::Error::Other(text) => v3::Error::Other(text),
        }))
    }
}

/// Spin's rule for a name a guest asks for: lower-case letters, digits and `_`, starting
/// with a letter, ending with a letter or digit, no `__`.
fn check_key(name: &str) -> Result<(), &'static str> {
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase ASCII letter");
    }
    if !name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("must end with a lowercase ASCII letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("may contain only lowercase ASCII letters, digits, and underscores");
    }
    if name.contains("__") {
        return Err("must not contain multiple consecutive underscores");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_asking_for_an_undeclared_or_invalid_name_gets_the_matching_error() {
        let vars = ComponentVariables::default();
        assert!(matches!(
            vars.lookup("nothing"),
            Err(variables::Error::Undefined(_))
        ));
        for bad in [
            "Bad-Name",
            "invalid-name",
            "invalid!name",
            "4invalidname",
            "a__b",
            "a_",
            "",
        ] {
            assert!(
                matches!(vars.lookup(bad), Err(variables::Error::InvalidName(_))),
                "{bad}"
            );
        }
        // Spin's key rule, looser than the manifest's: a word may start with a digit.
        assert!(matches!(
            vars.lookup("a_1"),
            Err(variables::Error::Undefined(_))
        ));
    }
}
