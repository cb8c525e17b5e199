//! `[component.<id>.dependencies]`: which component satisfies which imports, with Spin's
//! rules for keys, sources and configuration inheritance. Parsed once, with the manifest;
//! `link.rs` links what is declared here.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};

use super::{DependencyDecl, DependencyTable};

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
    pub fn satisfies(&self, import: &str) -> bool {
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
    pub name: DependencyName,
    pub source: DependencySource,
    /// The dependency's export that satisfies the import, when its name differs.
    pub export: Option<String>,
    /// Whether it reaches the component's variables, stores and databases.
    pub inherit: bool,
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
