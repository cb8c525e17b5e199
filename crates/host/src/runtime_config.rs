//! The runtime config file (`--runtime-config-file`): where each store label lives.
//!
//! This host runs the `spin` backends (local SQLite files). Remote backends (Redis key-value,
//! libSQL) are for `spin up` and Spin hosts; naming one here is an error at start, not a
//! silent fallback to a local file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    #[serde(default)]
    sqlite_database: BTreeMap<String, StoreConfig>,
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreConfig>,
    /// The directory relative paths resolve against.
    #[serde(skip)]
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
struct StoreConfig {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the runtime config {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("invalid runtime config {}", path.display()))?;
        config.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// The SQLite file for `label`: the runtime config's, else Spin's default for `default`.
    pub fn sqlite_path(&self, label: &str, state_dir: &Path) -> Result<Option<PathBuf>> {
        self.local_path(
            "sqlite_database",
            &self.sqlite_database,
            label,
            state_dir,
            "sqlite_db.db",
        )
    }

    /// The key-value file for `label`: the runtime config's, else Spin's default for `default`.
    pub fn key_value_path(&self, label: &str, state_dir: &Path) -> Result<Option<PathBuf>> {
        self.local_path(
            "key_value_store",
            &self.key_value_store,
            label,
            state_dir,
            "sqlite_key_value.db",
        )
    }

    fn local_path(
        &self,
        table: &str,
        stores: &BTreeMap<String, StoreConfig>,
        label: &str,
        state_dir: &Path,
        default_file: &str,
    ) -> Result<Option<PathBuf>> {
        let Some(store) = stores.get(label) else {
            return Ok((label == "default").then(|| state_dir.join(default_file)));
        };
        match (store.kind.as_str(), &store.path) {
            ("spin", Some(path)) => Ok(Some(self.dir.join(path))),
            ("spin", None) => Ok(Some(state_dir.join(format!("{label}.db")))),
            (other, _) => bail!(
                "`[{table}.{label}]` has type `{other}`, which this host does not run (it runs \
                 `spin`, local files); use `spin up` or a Spin host for `{other}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> RuntimeConfig {
        let mut config: RuntimeConfig = toml::from_str(text).unwrap();
        config.dir = PathBuf::from("/etc/app");
        config
    }

    #[test]
    fn the_default_database_lives_in_the_state_directory() {
        let path = RuntimeConfig::default()
            .sqlite_path("default", Path::new(".spin"))
            .unwrap();
        assert_eq!(path, Some(PathBuf::from(".spin/sqlite_db.db")));
    }

    #[test]
    fn a_label_without_configuration_has_no_database() {
        let path = RuntimeConfig::default()
            .sqlite_path("orders", Path::new(".spin"))
            .unwrap();
        assert_eq!(path, None);
    }

    #[test]
    fn a_configured_path_is_relative_to_the_config_file() {
        let c = config("[sqlite_database.orders]\ntype = \"spin\"\npath = \"data/orders.db\"\n");
        let path = c.sqlite_path("orders", Path::new(".spin")).unwrap();
        assert_eq!(path, Some(PathBuf::from("/etc/app/data/orders.db")));
    }

    #[test]
    fn a_remote_backend_is_refused_with_a_way_out() {
        let c = config("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\"\n");
        let err = c
            .key_value_path("default", Path::new(".spin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis") && err.contains("spin up"), "{err}");
    }
}
