//! The Spin application manifest (`spin.toml`, manifest version 2): the subset this host runs.
//!
//! Unknown keys are refused, as Spin refuses them, so a typo is an error that names the key
//! rather than a capability that silently does nothing.
//!
//! The structs carry every key of Spin's schema that this host accepts, read or not, so that
//! a valid Spin manifest is valid here; `dead_code` is allowed on them for that reason.
//!
//! This module owns every declaration: what needs more than deserializing (dependencies) is
//! parsed here, once, when the manifest is loaded.

mod dependency;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

pub use dependency::{Dependency, DependencySource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: RouteDecl,
    pub component: String,
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RouteDecl {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Component {
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub build: Option<BuildConfig>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    /// `[component.<id>.dependencies]` as written; parsed into `dependencies` at load.
    #[serde(default, rename = "dependencies")]
    dependency_decls: BTreeMap<String, DependencyDecl>,
    /// The component's dependencies, in key order.
    #[serde(skip)]
    pub dependencies: Vec<Dependency>,
}

/// A value of `[component.<id>.dependencies]`: where the component satisfying an import
/// comes from.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DependencyDecl {
    /// A registry version range, `"1.2.0"`.
    Version(String),
    Table(DependencyTable),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyTable {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    /// The dependency's export that satisfies the import, when its name differs.
    #[serde(default)]
    pub export: Option<String>,
    /// Spin 4: per-dependency inheritance, `true`, `false`, or a list of permission sets.
    #[serde(default)]
    pub inherit_configuration: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BuildConfig {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A parsed manifest together with the directory relative paths in it resolve against.
#[derive(Debug)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

impl LoadedManifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        let manifest =
            parse(&text).with_context(|| format!("invalid manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self { manifest, dir })
    }

    pub fn source_path(&self, component: &Component) -> PathBuf {
        self.dir.join(&component.source)
    }
}

pub fn parse(text: &str) -> Result<Manifest> {
    let mut manifest: Manifest = toml::from_str(text)?;
    validate(&manifest)?;
    for (id, component) in &mut manifest.component {
        component.dependencies = component
            .dependency_decls
            .iter()
            .map(|(key, decl)| {
                Dependency::parse(key, decl, component.dependencies_inherit_configuration)
                    .with_context(|| format!("`component.{id}.dependencies.\"{key}\"`"))
            })
            .collect::<Result<_>>()?;
    }
    Ok(manifest)
}

fn validate(manifest: &Manifest) -> Result<()> {
    ensure!(
        manifest.spin_manifest_version == 2,
        "`spin_manifest_version` must be 2 (found {})",
        manifest.spin_manifest_version
    );
    for name in manifest.variables.keys() {
        check_variable_name(name).with_context(|| format!("in `[variables]`, `{name}`"))?;
    }
    for (name, decl) in &manifest.variables {
        ensure!(
            decl.required != decl.default.is_some(),
            "variable `{name}` must be `required = true` OR have a `default`"
        );
    }
    for (id, component) in &manifest.component {
        check_component_id(id)?;
        for name in component.variables.keys() {
            check_variable_name(name)
                .with_context(|| format!("in `[component.{id}.variables]`, `{name}`"))?;
        }
        if !component.files.is_empty() {
            bail!("`component.{id}.files`: mounting files is not supported by this host");
        }
        if component.source.trim().is_empty() {
            bail!("`component.{id}.source` is empty");
        }
    }
    for (index, trigger) in manifest.trigger.http.iter().enumerate() {
        ensure!(
            manifest.component.contains_key(&trigger.component),
            "`trigger.http[{index}].component` names `{}`, but there is no `[component.{}]`",
            trigger.component,
            trigger.component
        );
        if let RouteDecl::Private { private } = trigger.route {
            ensure!(
                private,
                "`trigger.http[{index}].route`: `{{ private = false }}` is not a route; give a path"
            );
        }
        if let Some(executor) = &trigger.executor {
            let kind = executor.get("type").and_then(toml::Value::as_str);
            ensure!(
                kind.is_none() || kind == Some("spin"),
                "`trigger.http[{index}].executor`: only the `spin` executor is supported"
            );
        }
    }
    Ok(())
}

/// Spin's rule for variable names: `_`-separated words of lower-case letters and digits,
/// each starting with a letter (`jwt_secret`, not `a_1` or `JwtSecret`).
pub fn check_variable_name(name: &str) -> Result<()> {
    let valid = name.split('_').all(|word| {
        let mut chars = word.chars();
        matches!(chars.next(), Some('a'..='z'))
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    ensure!(
        valid,
        "invalid variable name: use `_`-separated words of lower-case letters and digits, each starting with a letter"
    );
    Ok(())
}

/// Spin's rule for component ids: `-`-separated words of ASCII letters and digits, each
/// starting with a letter and all lower-case or all upper-case.
fn check_component_id(id: &str) -> Result<()> {
    let valid = id.split('-').all(|word| {
        word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && word.chars().all(|c| c.is_ascii_alphanumeric())
            && (!word.chars().any(|c| c.is_ascii_uppercase())
                || !word.chars().any(|c| c.is_ascii_lowercase()))
    });
    ensure!(
        valid,
        "invalid component id `{id}`: use `-`-separated words of letters and digits, each starting with a letter"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "demo"
        [[trigger.http]]
        route = "/..."
        component = "web"
        [component.web]
        source = "web.wasm"
    "#;

    fn error_of(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("the manifest was accepted"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn a_minimal_manifest_parses() {
        let manifest = parse(MINIMAL).unwrap();
        assert_eq!(manifest.trigger.http.len(), 1);
        assert_eq!(manifest.component["web"].source, "web.wasm");
    }

    #[test]
    fn an_unknown_component_key_is_named_in_the_error() {
        let text = MINIMAL.replace(
            "source = \"web.wasm\"",
            "source = \"web.wasm\"\nsqlite_database = [\"default\"]",
        );
        let err = error_of(&text);
        assert!(err.contains("sqlite_database"), "{err}");
    }

    #[test]
    fn a_trigger_naming_a_missing_component_is_refused() {
        let err = error_of(&MINIMAL.replace("component = \"web\"", "component = \"api\""));
        assert!(
            err.contains("`trigger.http[0].component` names `api`"),
            "{err}"
        );
    }

    #[test]
    fn the_manifest_version_must_be_two() {
        let err =
            error_of(&MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(err.contains("spin_manifest_version"), "{err}");
    }

    #[test]
    fn a_missing_source_is_named_in_the_error() {
        let err = error_of(&MINIMAL.replace("source = \"web.wasm\"", ""));
        assert!(err.contains("source"), "{err}");
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(check_variable_name("jwt_secret").is_ok());
        assert!(check_variable_name("a1").is_ok());
        assert!(check_variable_name("rate_limit_requests").is_ok());
        for bad in ["", "JWT", "1a", "_a", "a_1", "a__b", "a-b", "a.b"] {
            assert!(check_variable_name(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn an_invalid_variable_name_in_the_manifest_is_refused() {
        let text = format!("{MINIMAL}\n[variables]\nJwtSecret = {{ default = \"x\" }}\n");
        let err = error_of(&text);
        assert!(err.contains("JwtSecret"), "{err}");
    }

    #[test]
    fn component_ids_follow_spin_rules() {
        assert!(check_component_id("products").is_ok());
        assert!(check_component_id("order-events2").is_ok());
        assert!(check_component_id("API-v2").is_ok());
        assert!(check_component_id("Api-v2").is_err());
        for bad in ["", "myComp", "a_b", "-a", "a-", "1a"] {
            assert!(check_component_id(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_private_route_parses() {
        let text = MINIMAL.replace("route = \"/...\"", "route = { private = true }");
        let manifest = parse(&text).unwrap();
        assert!(matches!(
            manifest.trigger.http[0].route,
            RouteDecl::Private { private: true }
        ));
    }
}
