//! Expressions of the manifest: the application's `[variables]`, resolved once at start from
//! the command line, the environment (`SPIN_VARIABLE_<NAME>`), the `.env` file beside the
//! manifest (the same names) and the manifest's defaults, in that order of precedence; and
//! the `{{ name }}` templates that use them (`[component.<id>.variables]`,
//! `allowed_outbound_hosts`), rendered against those values.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::manifest::{check_variable_name, VariableDecl};

/// Values of the application's `[variables]`.
#[derive(Debug)]
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// `cli` are `--variable` pairs; `env` looks up an environment variable.
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        cli: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        for (name, _) in cli {
            if !decls.contains_key(name) {
                bail!("`--variable {name}=...`: the manifest declares no variable `{name}` in `[variables]`");
            }
        }
        let mut values = BTreeMap::new();
        for (name, decl) in decls {
            let env_name = env_name(name);
            let value = cli
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| env(&env_name))
                .or_else(|| decl.default.clone());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if decl.required => bail!(
                    "the required variable `{name}` has no value: set the environment variable \
                     {env_name} or pass `--variable {name}=VALUE`"
                ),
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// Renders a component's variable templates (`"https://{{ host }}/x"`).
    pub fn render_all(
        &self,
        component: &str,
        templates: &BTreeMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        templates
            .iter()
            .map(|(name, template)| {
                let value = self
                    .render(template)
                    .with_context(|| format!("in `[component.{component}.variables]`, `{name}`"))?;
                Ok((name.clone(), value))
            })
            .collect()
    }

    /// Renders a template against the application's variables.
    pub fn render(&self, template: &str) -> Result<String> {
        render(template, |var| self.values.get(var).map(String::as_str))
    }

    /// An application variable's resolved value.
    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Where variables come from besides the command line: the process environment, then a
/// `.env` file (`SPIN_VARIABLE_<NAME>=value` lines, parsed by `dotenvy` as Spin parses them;
/// no file is no values). This host reads the `.env` beside the manifest; `spin up` reads the
/// one in its working directory, the same file when it runs from the app's directory.
#[derive(Debug, Default)]
pub struct Environment {
    dotenv: HashMap<String, String>,
}

impl Environment {
    pub fn load(manifest_dir: &Path) -> Result<Self> {
        let path = manifest_dir.join(".env");
        let Ok(lines) = dotenvy::from_path_iter(&path) else {
            return Ok(Self::default());
        };
        let dotenv = lines
            .collect::<Result<HashMap<_, _>, _>>()
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self { dotenv })
    }

    /// An environment variable's value: the process's own, else the `.env` file's.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }
}

/// `jwt_secret` -> `SPIN_VARIABLE_JWT_SECRET`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

fn render<'a>(template: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{{") {
        out.push_str(before);
        let (name, tail) = after
            .split_once("}}")
            .ok_or_else(|| anyhow!("unclosed `{{{{` in the template `{template}`"))?;
        let name = name.trim();
        check_variable_name(name).with_context(|| format!("`{{{{ {name} }}}}`"))?;
        let value = lookup(name).ok_or_else(|| {
            anyhow!("`{{{{ {name} }}}}` refers to `{name}`, which `[variables]` does not declare or has no value")
        })?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(pairs: &[(&str, Option<&str>, bool)]) -> BTreeMap<String, VariableDecl> {
        pairs
            .iter()
            .map(|(name, default, required)| {
                let decl = VariableDecl {
                    default: default.map(str::to_owned),
                    required: *required,
                    secret: false,
                    description: None,
                };
                (name.to_string(), decl)
            })
            .collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_command_line_beats_the_environment_which_beats_the_default() {
        let decls = decls(&[
            ("a", Some("default"), false),
            ("b", Some("default"), false),
            ("c", Some("default"), false),
        ]);
        let cli = vec![("a".to_string(), "cli".to_string())];
        let env = |name: &str| {
            matches!(name, "SPIN_VARIABLE_A" | "SPIN_VARIABLE_B").then(|| "env".to_string())
        };
        let vars = AppVariables::resolve(&decls, &cli, env).unwrap();
        assert_eq!(vars.get("a"), Some("cli"));
        assert_eq!(vars.get("b"), Some("env"));
        assert_eq!(vars.get("c"), Some("default"));
    }

    #[test]
    fn dot_env_beside_the_manifest_comes_after_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let none = Environment::load(dir.path()).unwrap();
        assert_eq!(none.get("SPIN_VARIABLE_INVENTORY_TEST_UNSET"), None);
        std::fs::write(
            dir.path().join(".env"),
            "# local secrets\nSPIN_VARIABLE_INVENTORY_TEST_A=\"from file\"\nPATH=/from/dotenv\nexport SPIN_VARIABLE_INVENTORY_TEST_PATH=${PATH}\n",
        )
        .unwrap();
        let env = Environment::load(dir.path()).unwrap();
        assert_eq!(
            env.get("SPIN_VARIABLE_INVENTORY_TEST_A").as_deref(),
            Some("from file")
        );
        // The process environment wins over the file; the file may use it.
        assert!(std::env::var("PATH").is_ok_and(|path| path != "/from/dotenv"));
        assert_eq!(env.get("PATH"), std::env::var("PATH").ok());
        assert_eq!(
            env.get("SPIN_VARIABLE_INVENTORY_TEST_PATH"),
            std::env::var("PATH").ok()
        );
        std::fs::write(dir.path().join(".env"), "NOT A LINE\n").unwrap();
        let err = format!("{:#}", Environment::load(dir.path()).unwrap_err());
        assert!(err.contains(".env"), "{err}");
    }

    #[test]
    fn a_required_variable_without_a_value_names_its_environment_variable() {
        let err =
            AppVariables::resolve(&decls(&[("jwt_secret", None, true)]), &[], no_env).unwrap_err();
        assert!(
            err.to_string().contains("SPIN_VARIABLE_JWT_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn a_command_line_variable_the_manifest_does_not_declare_is_refused() {
        let cli = vec![("nope".to_string(), "1".to_string())];
        let err = AppVariables::resolve(&decls(&[]), &cli, no_env).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn templates_render_with_and_without_spaces() {
        let vars = AppVariables::resolve(
            &decls(&[("host", Some("h"), false), ("port", Some("1"), false)]),
            &[],
            no_env,
        )
        .unwrap();
        let templates = BTreeMap::from([(
            "url".to_string(),
            "http://{{ host }}:{{port}}/x".to_string(),
        )]);
        let rendered = vars.render_all("web", &templates).unwrap();
        assert_eq!(rendered["url"], "http://h:1/x");
    }

    #[test]
    fn a_template_naming_an_undeclared_variable_is_an_error_at_start() {
        let vars = AppVariables::resolve(&decls(&[]), &[], no_env).unwrap();
        let templates = BTreeMap::from([("url".to_string(), "{{ missing }}".to_string())]);
        let err = vars.render_all("web", &templates).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("component.web.variables") && text.contains("missing"),
            "{text}"
        );
    }
}
