//! The runtime config file (`--runtime-config-file`), read as Spin reads it: a table whose
//! top-level keys belong to the host interfaces (`[sqlite_database.<label>]` to `sqlite`,
//! `[key_value_store.<label>]` to `key_value`: each parses its own), and `state_dir`, where
//! the `default` stores live unless `--state-dir` is given (`""`: in memory, as on Spin).
//!
//! A key no interface reads is an error naming it, as with Spin ("unused runtime config
//! key(s)"); so is one Spin knows but this host does not run (variable providers, logs...),
//! never a silent fallback.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// Keys Spin's runtime config knows that this host does not run.
const SPIN_KEYS_NOT_RUN: &[&str] = &[
    "max_instance_memory",
    "variables_provider",
    "config_provider",
    "llm_compute",
    "client_tls",
    "otel",
];

/// Where a local store's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    /// In memory, for as long as the host runs (Spin's `spin` type without a `path`).
    Memory,
}

#[derive(Debug)]
pub struct RuntimeConfig {
    table: toml::Table,
    /// The file's directory: key-value paths resolve against it, as on Spin.
    config_dir: PathBuf,
    /// The working directory: SQLite paths resolve against it, as `spin up` resolves them.
    cwd: PathBuf,
    /// `None`: the default stores are in memory.
    state_dir: Option<PathBuf>,
    /// The file's `log_dir` (`""`: none).
    log_dir: Option<String>,
}

impl RuntimeConfig {
    /// The app's runtime config: the file at `path` if there is one. `state_dir` is
    /// `--state-dir`, which wins over the file's; by default it is `.spin` beside the
    /// manifest.
    pub fn load(
        path: Option<&Path>,
        state_dir: Option<&Path>,
        manifest_dir: &Path,
    ) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let (text, config_dir) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the runtime config {}", path.display())
                })?;
                (text, cwd.join(path.parent().unwrap_or(Path::new(""))))
            }
            None => (String::new(), cwd.clone()),
        };
        let what = || match path {
            Some(path) => format!("invalid runtime config {}", path.display()),
            None => "invalid runtime config".to_owned(),
        };
        Self::parse(&text, config_dir, cwd, state_dir, manifest_dir).with_context(what)
    }

    fn parse(
        text: &str,
        config_dir: PathBuf,
        cwd: PathBuf,
        state_dir: Option<&Path>,
        manifest_dir: &Path,
    ) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)?;
        let from_file = match table.remove("state_dir") {
            None => None,
            Some(toml::Value::String(dir)) => Some(dir),
            Some(_) => bail!("`state_dir` must be a string"),
        };
        let log_dir = match table.remove("log_dir") {
            None => None,
            Some(toml::Value::String(dir)) => Some(dir),
            Some(_) => bail!("`log_dir` must be a string"),
        };
        let state_dir = match (state_dir, from_file) {
            (Some(cli), _) => (!cli.as_os_str().is_empty()).then(|| cli.to_path_buf()),
            (None, Some(dir)) => (!dir.is_empty()).then(|| cwd.join(dir)),
            (None, None) => Some(manifest_dir.join(".spin")),
        };
        Ok(Self {
            table,
            config_dir,
            cwd,
            state_dir,
            log_dir,
        })
    }

    /// Where the components' output files go, as `spin up` resolves it: `cli` (`--log-dir`,
    /// `""`: none), else the file's `log_dir` (relative to the working directory), else
    /// `logs` in the state directory; none without one.
    pub fn log_dir(&self, cli: Option<&Path>) -> Option<PathBuf> {
        match (cli, &self.log_dir) {
            (Some(cli), _) => (!cli.as_os_str().is_empty()).then(|| self.cwd.join(cli)),
            (None, Some(dir)) => (!dir.is_empty()).then(|| self.cwd.join(dir)),
            (None, None) => self.state_dir.as_ref().map(|dir| dir.join("logs")),
        }
    }

    /// Refuses any top-level key that none of the interfaces reads (`known`).
    pub fn check_keys(&self, known: &[&str]) -> Result<()> {
        let mut unused = Vec::new();
        for key in self.table.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            if SPIN_KEYS_NOT_RUN.contains(&key.as_str()) {
                bail!(
                    "invalid runtime config: `{key}` is a Spin runtime config key this host does \
                     not run; use `spin up` or a Spin host for it"
                );
            }
            unused.push(key.clone());
        }
        if !unused.is_empty() {
            bail!(
                "invalid runtime config: unused runtime config key(s): {}",
                unused.join(", ")
            );
        }
        Ok(())
    }

    /// The `[<key>.<label>]` tables, by label.
    pub fn stores(&self, key: &str) -> Result<Vec<(&str, StoreTable<'_>)>> {
        let Some(value) = self.table.get(key) else {
            return Ok(Vec::new());
        };
        let labels = value
            .as_table()
            .ok_or_else(|| anyhow!("`{key}` must be a table of `[{key}.<label>]` tables"))?;
        labels
            .iter()
            .map(|(label, store)| match store.as_table() {
                Some(table) => Ok((label.as_str(), StoreTable { table })),
                None => Err(anyhow!("`{key}.{label}` must be a table")),
            })
            .collect()
    }

    /// Where the default store's `file` lives: in the state directory, or in memory.
    pub fn default_location(&self, file: &str) -> Location {
        match &self.state_dir {
            Some(dir) => Location::File(dir.join(file)),
            None => Location::Memory,
        }
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }
}

/// A store's table, checked: `type` first, then only the keys that type takes.
pub struct StoreTable<'a> {
    table: &'a toml::Table,
}

impl<'a> StoreTable<'a> {
    /// The store's `type`.
    pub fn kind(&self) -> Result<&'a str> {
        self.table
            .get("type")
            .ok_or_else(|| anyhow!("`type` is missing"))?
            .as_str()
            .ok_or_else(|| anyhow!("`type` must be a string"))
    }

    /// Refuses a key other than `type` and `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        for key in self.table.keys() {
            if key != "type" && !allowed.contains(&key.as_str()) {
                let expected = allowed
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                bail!(
                    "unknown key `{key}` for type `{}` (it takes {expected})",
                    self.kind()?
                );
            }
        }
        Ok(())
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>> {
        self.table
            .get(key)
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| anyhow!("`{key}` must be a string"))
            })
            .transpose()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.table
            .get(key)
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| anyhow!("`{key}` must be true or false"))
            })
            .transpose()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A config read from `text` as if the file were in `/etc/app` and the host ran in
    /// `/work`, for an app in `/app`.
    pub fn config(text: &str) -> Result<RuntimeConfig> {
        config_with(text, None)
    }

    pub fn config_with(text: &str, state_dir: Option<&Path>) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(
            text,
            PathBuf::from("/etc/app"),
            PathBuf::from("/work"),
            state_dir,
            Path::new("/app"),
        )
    }

    #[test]
    fn the_default_stores_live_in_the_state_directory() {
        assert_eq!(
            config("").unwrap().default_location("x.db"),
            Location::File(PathBuf::from("/app/.spin/x.db"))
        );
    }

    #[test]
    fn log_dir_comes_from_the_command_line_then_the_file_then_the_state_directory() {
        let file = "log_dir = \"out\"";
        assert_eq!(
            config(file).unwrap().log_dir(Some(Path::new("cli"))),
            Some(PathBuf::from("/work/cli"))
        );
        assert_eq!(config(file).unwrap().log_dir(Some(Path::new(""))), None);
        assert_eq!(
            config(file).unwrap().log_dir(None),
            Some(PathBuf::from("/work/out"))
        );
        assert_eq!(config("log_dir = \"\"").unwrap().log_dir(None), None);
        assert_eq!(
            config("").unwrap().log_dir(None),
            Some(PathBuf::from("/app/.spin/logs"))
        );
        assert_eq!(
            config_with("", Some(Path::new(""))).unwrap().log_dir(None),
            None
        );
    }

    #[test]
    fn state_dir_comes_from_the_command_line_then_the_file() {
        let file = "state_dir = \"data\"";
        let cli = Path::new("/cli");
        assert_eq!(
            config_with(file, Some(cli))
                .unwrap()
                .default_location("x.db"),
            Location::File(PathBuf::from("/cli/x.db"))
        );
        assert_eq!(
            config(file).unwrap().default_location("x.db"),
            Location::File(PathBuf::from("/work/data/x.db"))
        );
        assert_eq!(
            config_with(file, Some(Path::new("")))
                .unwrap()
                .default_location("x.db"),
            Location::Memory
        );
        assert_eq!(
            config("state_dir = \"\"").unwrap().default_location("x.db"),
            Location::Memory
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name_and_spins_own_with_a_way_out() {
        let err = config("cache_dir = \"x\"\n")
            .unwrap()
            .check_keys(&["sqlite_database"])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unused runtime config key(s): cache_dir"),
            "{err}"
        );
        let err = config("[[variables_provider]]\ntype = \"vault\"\n")
            .unwrap()
            .check_keys(&[])
            .unwrap_err();
        assert!(err.to_string().contains("spin up"), "{err}");
        assert!(config("[sqlite_database.x]\ntype = \"spin\"\n")
            .unwrap()
            .check_keys(&["sqlite_database"])
            .is_ok());
    }

    #[test]
    fn a_store_table_takes_its_type_and_only_its_keys() {
        let config = config("[s.a]\ntype = \"spin\"\npath = \"x\"\n[s.b]\npath = \"x\"\n").unwrap();
        let stores = config.stores("s").unwrap();
        let (label, a) = &stores[0];
        assert_eq!((*label, a.kind().unwrap()), ("a", "spin"));
        assert!(a.only(&["path"]).is_ok());
        let err = a.only(&["url"]).unwrap_err().to_string();
        assert!(err.contains("unknown key `path`"), "{err}");
        let err = stores[1].1.kind().unwrap_err().to_string();
        assert!(err.contains("`type` is missing"), "{err}");
    }
}
