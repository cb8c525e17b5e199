//! Component dependencies (`[component.<id>.dependencies]`), with Spin's semantics.
//!
//! A key names a package (`ns:pkg`) or one interface (`ns:pkg/iface`), optionally at an
//! exact version; it satisfies every import of the component it names. Spin composes the
//! dependency into the component at load; this host links it at load instead: each import it
//! satisfies forwards to the dependency's export of the same name (or `export`), in an
//! instance of the dependency made in the same store on first use. A request that never
//! calls the dependency never instantiates it.
//!
//! With `dependencies_inherit_configuration = true` the dependency reaches the app's
//! variables, stores and databases with the importing component's grants. Otherwise, as with
//! Spin's deny adapter, it sees none: variables are undefined and stores and databases are
//! access-denied while it runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, StoreContextMut};

use crate::manifest::{DependencyDecl, DependencyTable};
use crate::state::HostState;

/// A dependency key: `ns:pkg`, `ns:pkg/iface`, either with `@x.y.z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyName {
    package: String,
    interface: Option<String>,
    version: Option<semver::Version>,
}

impl DependencyName {
    pub fn parse(key: &str) -> Result<Self> {
        let (name, version) = match key.split_once('@') {
            Some((name, version)) => {
                let version = semver::Version::parse(version).with_context(|| {
                    format!("`{version}` is not a full semantic version (x.y.z)")
                })?;
                (name, Some(version))
            }
            None => (key, None),
        };
        let (package, interface) = match name.split_once('/') {
            Some((package, interface)) => (package, Some(interface)),
            None => (name, None),
        };
        let well_formed = |part: &str| {
            !part.is_empty()
                && part.split('-').all(|w| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        };
        let (namespace, pkg) = package.split_once(':').unwrap_or(("", package));
        ensure!(
            well_formed(namespace) && well_formed(pkg) && interface.is_none_or(well_formed),
            "a dependency is named by a package (`namespace:package`) or an interface \
             (`namespace:package/interface`), optionally with `@x.y.z`"
        );
        Ok(Self {
            package: package.to_owned(),
            interface: interface.map(str::to_owned),
            version,
        })
    }

    /// Whether this key satisfies the import `name` (`ns:pkg/iface@version`).
    fn satisfies(&self, import: &str) -> bool {
        let Ok(import) = Self::parse(import) else {
            return false;
        };
        import.package == self.package
            && self
                .interface
                .as_ref()
                .is_none_or(|i| Some(i) == import.interface.as_ref())
            && self
                .version
                .as_ref()
                .is_none_or(|v| Some(v) == import.version.as_ref())
    }
}

/// Where a dependency's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencySource {
    /// A wasm file, relative to the manifest.
    Path(PathBuf),
    /// Another component of the app, by id: its `source`.
    Component(String),
}

#[derive(Debug, Clone)]
pub struct Dependency {
    pub key: String,
    name: DependencyName,
    pub source: DependencySource,
    export: Option<String>,
    inherit: bool,
}

impl Dependency {
    pub fn parse(key: &str, decl: &DependencyDecl, component_inherits: bool) -> Result<Self> {
        let name = DependencyName::parse(key)?;
        let table = match decl {
            DependencyDecl::Version(version) => bail!(
                "`{version}` is a registry version: this host cannot fetch from a registry; give \
                 `{{ path = \"...\" }}` or `{{ component = \"...\" }}`"
            ),
            DependencyDecl::Table(table) => table,
        };
        let DependencyTable {
            path,
            component,
            version,
            registry,
            package,
            url,
            digest,
            export,
            inherit_configuration,
        } = table;
        ensure!(
            version.is_none() && registry.is_none() && package.is_none(),
            "registry dependencies cannot be fetched by this host; give `path` or `component`"
        );
        ensure!(
            url.is_none() && digest.is_none(),
            "URL dependencies cannot be fetched by this host; download the file and give `path`"
        );
        let source = match (path, component) {
            (Some(path), None) => DependencySource::Path(PathBuf::from(path)),
            (None, Some(id)) => DependencySource::Component(id.clone()),
            _ => bail!("give exactly one of `path` or `component`"),
        };
        ensure!(
            export.is_none() || name.interface.is_some(),
            "using an export to satisfy the package dependency `{key}` is not permitted; name \
             an interface (`{key}/<interface>`)"
        );
        let inherit = match inherit_configuration {
            None => component_inherits,
            Some(_) if component_inherits => bail!(
                "`inherit_configuration` cannot be combined with the component's \
                 `dependencies_inherit_configuration`"
            ),
            Some(toml::Value::Boolean(inherit)) => *inherit,
            Some(_) => bail!(
                "`inherit_configuration` must be `true` or `false` here: this host does not \
                 grant part of a configuration"
            ),
        };
        Ok(Self {
            key: key.to_owned(),
            name,
            source,
            export: export.clone(),
            inherit,
        })
    }
}

/// Links `main`'s imports that `deps` satisfy into `linker`. `base` is the linker the
/// dependencies themselves are instantiated with (the host's interfaces). Returns how many
/// dependency instances a store of this component may hold.
pub fn link(
    engine: &Engine,
    id: &str,
    main: &Component,
    deps: &[(Dependency, Component)],
    base: &Linker<HostState>,
    linker: &mut Linker<HostState>,
) -> Result<usize> {
    let main_ty = main.component_type();
    let mut satisfied_by: BTreeMap<String, &str> = BTreeMap::new();
    for (slot, (dep, component)) in deps.iter().enumerate() {
        let pre = base
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "dependency '{}' of component '{id}' imports something this host does not \
                     provide",
                    dep.key
                )
            })?;
        let dep_ty = component.component_type();
        let imports: Vec<(String, ComponentItem)> = main_ty
            .imports(engine)
            .filter(|(name, _)| dep.name.satisfies(name))
            .map(|(name, ext)| (name.to_owned(), ext.ty))
            .collect();
        ensure!(
            !imports.is_empty(),
            "dependency '{}' doesn't match any imports of component '{id}'",
            dep.key
        );
        for (import, import_ty) in imports {
            if let Some(other) = satisfied_by.insert(import.clone(), &dep.key) {
                bail!(
                    "component '{id}' has dependency conflicts: import '{import}' satisfied by \
                     dependencies: '{other}', '{}'",
                    dep.key
                );
            }
            let export = dep.export.clone().unwrap_or_else(|| import.clone());
            let missing = || {
                anyhow::anyhow!(
                    "dependency '{}' doesn't export '{export}' to satisfy import '{import}'",
                    dep.key
                )
            };
            let export_ty = dep_ty.get_export(engine, &export).ok_or_else(missing)?.ty;
            let export_index = component
                .get_export_index(None, &export)
                .ok_or_else(missing)?;
            let incompatible = |what: &str| {
                anyhow::anyhow!(
                    "dependency '{}' exports '{export}' which is not compatible with import \
                     '{import}' ({what})",
                    dep.key
                )
            };
            let (
                ComponentItem::ComponentInstance(import_ty),
                ComponentItem::ComponentInstance(export_ty),
            ) = (&import_ty, &export_ty)
            else {
                bail!(incompatible("only interface imports can be satisfied"));
            };
            let mut instance = linker.instance(&import)?;
            for (name, item) in import_ty.exports(engine) {
                match item.ty {
                    ComponentItem::ComponentFunc(wanted) => {
                        let given = match export_ty.get_export(engine, name).map(|e| e.ty) {
                            Some(ComponentItem::ComponentFunc(given)) => given,
                            _ => bail!(incompatible(&format!("no function `{name}`"))),
                        };
                        ensure!(
                            same_signature(&wanted, &given),
                            incompatible(&format!("`{name}` has another signature"))
                        );
                        let func = component
                            .get_export_index(Some(&export_index), name)
                            .ok_or_else(|| incompatible(&format!("no function `{name}`")))?;
                        let target = Arc::new(Target {
                            pre: pre.clone(),
                            func,
                            slot,
                            inherit: dep.inherit,
                        });
                        instance.func_new_async(name, move |store, _ty, params, results| {
                            let target = Arc::clone(&target);
                            Box::new(async move { target.call(store, params, results).await })
                        })?;
                    }
                    // Types travel by structure; there is nothing to link.
                    ComponentItem::Type(_) => {}
                    _ => bail!(incompatible(&format!(
                        "`{name}` is a resource or a nested item, which this host does not \
                         forward"
                    ))),
                }
            }
        }
    }
    Ok(deps.len())
}

fn same_signature(a: &ComponentFunc, b: &ComponentFunc) -> bool {
    a.params()
        .map(|(_, ty)| ty)
        .eq(b.params().map(|(_, ty)| ty))
        && a.results().eq(b.results())
}

/// One forwarded function: which dependency instance, and which of its exports.
struct Target {
    pre: InstancePre<HostState>,
    func: ComponentExportIndex,
    slot: usize,
    inherit: bool,
}

impl Target {
    async fn call(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        // Taken away before the dependency runs any code, its instantiation included.
        let grants = (!self.inherit).then(|| store.data_mut().deny_configuration());
        let result = self.instantiate_and_call(&mut store, params, results).await;
        if let Some(grants) = grants {
            store.data_mut().restore_configuration(grants);
        }
        result
    }

    async fn instantiate_and_call(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn name(key: &str) -> DependencyName {
        DependencyName::parse(key).unwrap()
    }

    #[test]
    fn a_package_key_satisfies_every_interface_of_the_package_at_any_version() {
        let key = name("inventory:guard");
        assert!(key.satisfies("inventory:guard/auth@0.1.0"));
        assert!(key.satisfies("inventory:guard/rate-limit"));
        assert!(!key.satisfies("inventory:guardian/auth@0.1.0"));
        assert!(!key.satisfies("wasi:http/types@0.2.0"));
    }

    #[test]
    fn an_interface_key_with_a_version_satisfies_exactly_that_import() {
        let key = name("inventory:guard/auth@0.1.0");
        assert!(key.satisfies("inventory:guard/auth@0.1.0"));
        assert!(!key.satisfies("inventory:guard/auth@0.1.1"));
        assert!(!key.satisfies("inventory:guard/validation@0.1.0"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in [
            "guard",
            "inventory:",
            "Inventory:guard",
            "inventory:guard@1.0",
            "a:b/",
        ] {
            assert!(DependencyName::parse(key).is_err(), "{key}");
        }
    }

    fn decl(text: &str) -> DependencyDecl {
        #[derive(serde::Deserialize)]
        struct Wrap {
            d: DependencyDecl,
        }
        toml::from_str::<Wrap>(&format!("d = {text}")).unwrap().d
    }

    #[test]
    fn sources_this_host_cannot_fetch_are_refused_by_name() {
        let err = Dependency::parse("a:b", &decl("\"1.0.0\""), true).unwrap_err();
        assert!(err.to_string().contains("registry"), "{err}");
        let err = Dependency::parse(
            "a:b",
            &decl("{ url = \"https://x\", digest = \"sha256:0\" }"),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("URL"), "{err}");
    }

    #[test]
    fn inheritance_comes_from_the_component_or_the_dependency_but_not_both() {
        let d = Dependency::parse("a:b", &decl("{ path = \"x.wasm\" }"), true).unwrap();
        assert!(d.inherit);
        let d = Dependency::parse(
            "a:b",
            &decl("{ path = \"x.wasm\", inherit_configuration = true }"),
            false,
        )
        .unwrap();
        assert!(d.inherit);
        assert!(Dependency::parse(
            "a:b",
            &decl("{ path = \"x.wasm\", inherit_configuration = true }"),
            true
        )
        .is_err());
        let d = Dependency::parse("a:b", &decl("{ component = \"guard\" }"), false).unwrap();
        assert!(!d.inherit);
        assert_eq!(d.source, DependencySource::Component("guard".into()));
    }

    #[test]
    fn an_export_rename_needs_an_interface_key() {
        assert!(Dependency::parse(
            "a:b",
            &decl("{ path = \"x.wasm\", export = \"c:d/e\" }"),
            true
        )
        .is_err());
        assert!(Dependency::parse(
            "a:b/e",
            &decl("{ path = \"x.wasm\", export = \"c:d/e\" }"),
            true
        )
        .is_ok());
    }
}
