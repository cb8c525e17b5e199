//! Linking component dependencies. Spin composes a dependency into the component at load;
//! this host links it at load instead: each import it satisfies forwards to the dependency's
//! export of the same name (or `export`), in an instance of the dependency made in the same
//! store on first use. A request that never calls the dependency never instantiates it.
//!
//! With inheritance (`manifest::dependency`) the dependency reaches the app's variables,
//! stores and databases with the importing component's grants. Otherwise, as with Spin's deny
//! adapter, it sees none: variables are undefined and stores and databases are access-denied
//! while it runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, StoreContextMut};

use crate::factors::InstanceState;
use crate::manifest::Dependency;

/// Links one component's dependencies. `base` is the linker the dependencies themselves
/// are instantiated with (the host's interfaces).
pub struct Dependencies<'a> {
    engine: &'a Engine,
    /// The importing component's id, for errors.
    id: &'a str,
    base: &'a Linker<InstanceState>,
}

impl<'a> Dependencies<'a> {
    pub fn new(engine: &'a Engine, id: &'a str, base: &'a Linker<InstanceState>) -> Self {
        Self { engine, id, base }
    }

    /// Links `main`'s imports that `deps` satisfy into `linker`; the `slot`th dependency's
    /// instance is kept in the store's `dependencies[slot]`.
    pub fn link(
        &self,
        main: &Component,
        deps: &[(Dependency, Component)],
        linker: &mut Linker<InstanceState>,
    ) -> Result<()> {
        let main_ty = main.component_type();
        let mut satisfied_by: BTreeMap<String, &str> = BTreeMap::new();
        for (slot, (dep, component)) in deps.iter().enumerate() {
            let pre = self
                .base
                .instantiate_pre(component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "dependency '{}' of component '{}' imports something this host does not \
                         provide",
                        dep.key, self.id
                    )
                })?;
            let imports: Vec<(String, ComponentItem)> = main_ty
                .imports(self.engine)
                .filter(|(name, _)| dep.name.satisfies(name))
                .map(|(name, ext)| (name.to_owned(), ext.ty))
                .collect();
            ensure!(
                !imports.is_empty(),
                "dependency '{}' doesn't match any imports of component '{}'",
                dep.key,
                self.id
            );
            for (import, import_ty) in imports {
                if let Some(other) = satisfied_by.insert(import.clone(), &dep.key) {
                    bail!(
                        "component '{}' has dependency conflicts: import '{import}' satisfied by \
                         dependencies: '{other}', '{}'",
                        self.id,
                        dep.key
                    );
                }
                let target = Export {
                    dep,
                    component,
                    pre: &pre,
                    slot,
                };
                self.forward(linker, &import, &import_ty, &target)?;
            }
        }
        Ok(())
    }

    /// Defines each function of the interface `import` in `linker` as a call to the same
    /// function of the dependency's export.
    fn forward(
        &self,
        linker: &mut Linker<InstanceState>,
        import: &str,
        import_ty: &ComponentItem,
        target: &Export<'_>,
    ) -> Result<()> {
        let dep = target.dep;
        let export = dep.export.clone().unwrap_or_else(|| import.to_owned());
        let incompatible = |what: &str| {
            anyhow::anyhow!(
                "dependency '{}' exports '{export}' which is not compatible with import \
                 '{import}' ({what})",
                dep.key
            )
        };
        let (export_ty, export_index) = self.export_of(target, &export, import)?;
        let (
            ComponentItem::ComponentInstance(import_ty),
            ComponentItem::ComponentInstance(export_ty),
        ) = (import_ty, &export_ty)
        else {
            bail!(incompatible("only interface imports can be satisfied"));
        };
        let mut instance = linker.instance(import)?;
        for (name, item) in import_ty.exports(self.engine) {
            let wanted = match item.ty {
                ComponentItem::ComponentFunc(wanted) => wanted,
                // Types travel by structure; there is nothing to link.
                ComponentItem::Type(_) => continue,
                _ => bail!(incompatible(&format!(
                    "`{name}` is a resource or a nested item, which this host does not forward"
                ))),
            };
            let func = match export_ty.get_export(self.engine, name).map(|e| e.ty) {
                Some(ComponentItem::ComponentFunc(given)) if same_signature(&wanted, &given) => {
                    target.component.get_export_index(Some(&export_index), name)
                }
                Some(ComponentItem::ComponentFunc(_)) => {
                    bail!(incompatible(&format!("`{name}` has another signature")))
                }
                _ => None,
            }
            .ok_or_else(|| incompatible(&format!("no function `{name}`")))?;
            let call = Arc::new(Target {
                pre: target.pre.clone(),
                func,
                slot: target.slot,
                inherit: dep.inherit,
            });
            instance.func_new_async(name, move |store, _ty, params, results| {
                let call = Arc::clone(&call);
                Box::new(async move { call.call(store, params, results).await })
            })?;
        }
        Ok(())
    }

    /// The type and index of the dependency's export `export`.
    fn export_of(
        &self,
        target: &Export<'_>,
        export: &str,
        import: &str,
    ) -> Result<(ComponentItem, ComponentExportIndex)> {
        let missing = || {
            anyhow::anyhow!(
                "dependency '{}' doesn't export '{export}' to satisfy import '{import}'",
                target.dep.key
            )
        };
        let ty = target
            .component
            .component_type()
            .get_export(self.engine, export)
            .ok_or_else(missing)?
            .ty;
        let index = target
            .component
            .get_export_index(None, export)
            .ok_or_else(missing)?;
        Ok((ty, index))
    }
}

/// A dependency, as linked: its declaration, its component, its instance-to-be, its slot.
struct Export<'a> {
    dep: &'a Dependency,
    component: &'a Component,
    pre: &'a InstancePre<InstanceState>,
    slot: usize,
}

fn same_signature(a: &ComponentFunc, b: &ComponentFunc) -> bool {
    a.params()
        .map(|(_, ty)| ty)
        .eq(b.params().map(|(_, ty)| ty))
        && a.results().eq(b.results())
}

/// One forwarded function: which dependency instance, and which of its exports.
struct Target {
    pre: InstancePre<InstanceState>,
    func: ComponentExportIndex,
    slot: usize,
    inherit: bool,
}

impl Target {
    async fn call(
        &self,
        mut store: StoreContextMut<'_, InstanceState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        // Taken away before the dependency runs any code, its instantiation included.
        let taken = (!self.inherit).then(|| store.data_mut().factors.deny());
        let result = self.instantiate_and_call(&mut store, params, results).await;
        if let Some(taken) = taken {
            store.data_mut().factors.restore(taken);
        }
        result
    }

    async fn instantiate_and_call(
        &self,
        store: &mut StoreContextMut<'_, InstanceState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let existing = store.data().dependencies.get(self.slot).copied().flatten();
        let instance = match existing {
            Some(instance) => instance,
            None => {
                let instance = self.pre.instantiate_async(&mut *store).await?;
                if let Some(slot) = store.data_mut().dependencies.get_mut(self.slot) {
                    *slot = Some(instance);
                }
                instance
            }
        };
        let func = instance
            .get_func(&mut *store, self.func)
            .ok_or_else(|| wasmtime::format_err!("a dependency lost an export it had at load"))?;
        func.call_async(&mut *store, params, results).await
    }
}
