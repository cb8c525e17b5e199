//! Component dependencies. Spin composes a dependency into the component at load; so does
//! this host when the component's dependencies inherit its configuration
//! (`dependencies_inherit_configuration`, as the app's guard does): `compose` makes one
//! component of the importing one and its dependencies, each import a dependency satisfies
//! wired to the dependency's export of the same name (or `export`), and the dependencies' own
//! imports joined to the component's. A request instantiates the whole in one go, and the
//! calls between them run in compiled adapters, never through the host.
//!
//! A dependency that does not inherit must see none of the component's configuration, as
//! with Spin's deny adapter: variables are undefined and stores and databases are
//! access-denied while it runs. Such dependencies are linked instead (`Dependencies`): each
//! import it satisfies forwards to the dependency's export, in an instance of the dependency
//! made in the same store on first use, with the component's grants taken away for the call.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, PackageId};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, StoreContextMut};

use crate::factors::InstanceState;
use crate::manifest::Dependency;

/// The imports among `imports` that each dependency satisfies, in the dependencies' order:
/// every dependency at least one, no import two. `id` names the importing component.
fn satisfied_imports<'i>(
    id: &str,
    imports: impl Iterator<Item = &'i str> + Clone,
    deps: impl Iterator<Item = &'i Dependency>,
) -> Result<Vec<Vec<&'i str>>> {
    let mut satisfied_by: BTreeMap<&str, &str> = BTreeMap::new();
    let mut all = Vec::new();
    for dep in deps {
        let satisfied: Vec<&str> = imports
            .clone()
            .filter(|name| dep.name.satisfies(name))
            .collect();
        ensure!(
            !satisfied.is_empty(),
            "dependency '{}' doesn't match any imports of component '{id}'",
            dep.key
        );
        for import in &satisfied {
            if let Some(other) = satisfied_by.insert(import, &dep.key) {
                bail!(
                    "component '{id}' has dependency conflicts: import '{import}' satisfied by \
                     dependencies: '{other}', '{}'",
                    dep.key
                );
            }
        }
        all.push(satisfied);
    }
    Ok(all)
}

/// `main` (a component's wasm) with `deps` composed into it; `id` names the component.
pub fn compose(id: &str, main: &[u8], deps: &[(&Dependency, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let main_package = register(&mut graph, "app:component", main)
        .with_context(|| format!("component '{id}' cannot be composed"))?;
    let main_world = graph[main_package].ty();
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();
    let exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    let satisfied = satisfied_imports(
        id,
        imports.iter().map(String::as_str),
        deps.iter().map(|(dep, _)| *dep),
    )?;
    let main_instance = graph.instantiate(main_package);
    for (slot, ((dep, wasm), imports)) in deps.iter().zip(satisfied).enumerate() {
        let package = register(&mut graph, &format!("app:dependency{slot}"), wasm)
            .with_context(|| format!("dependency '{}' cannot be composed", dep.key))?;
        let instance = graph.instantiate(package);
        for import in imports {
            let export = dep.export.as_deref().unwrap_or(import);
            let item = graph.alias_instance_export(instance, export).map_err(|_| {
                anyhow::anyhow!(
                    "dependency '{}' doesn't export '{export}' to satisfy import '{import}'",
                    dep.key
                )
            })?;
            graph
                .set_instantiation_argument(main_instance, import, item)
                .map_err(|err| {
                    anyhow::anyhow!(
                        "dependency '{}' exports '{export}' which is not compatible with import \
                         '{import}': {:#}",
                        dep.key,
                        anyhow::Error::from(err)
                    )
                })?;
        }
    }
    for name in &exports {
        let item = graph.alias_instance_export(main_instance, name)?;
        graph.export(item, name)?;
    }
    graph
        .encode(EncodeOptions::default())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component '{id}' and its dependencies cannot be composed"))
}

fn register(graph: &mut CompositionGraph, name: &str, wasm: &[u8]) -> Result<PackageId> {
    let package = Package::from_bytes(name, None, wasm, graph.types_mut())?;
    Ok(graph.register_package(package)?)
}

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
        let imports: Vec<(String, ComponentItem)> = main_ty
            .imports(self.engine)
            .map(|(name, ext)| (name.to_owned(), ext.ty))
            .collect();
        let satisfied = satisfied_imports(
            self.id,
            imports.iter().map(|(name, _)| name.as_str()),
            deps.iter().map(|(dep, _)| dep),
        )?;
        for (slot, ((dep, component), satisfied)) in deps.iter().zip(satisfied).enumerate() {
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
            let target = Export {
                dep,
                component,
                pre: &pre,
                slot,
            };
            for (import, import_ty) in imports
                .iter()
                .filter(|(n, _)| satisfied.contains(&n.as_str()))
            {
                self.forward(linker, import, import_ty, &target)?;
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
