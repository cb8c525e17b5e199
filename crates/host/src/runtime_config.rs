//! The runtime config file (`--runtime-config-file`): where each store label lives, read as
//! Spin reads it.
//!
//! - `[key_value_store.<label>]`: `type = "spin"` with an optional `path` (relative to this
//!   file's directory; none is an in-memory store), or `type = "redis"` with `url`.
//! - `[sqlite_database.<label>]`: `type = "spin"` with an optional `path` (relative to the
//!   working directory, as `spin up` resolves it; none is an in-memory database).
//! - `state_dir`: where the `default` stores live unless `--state-dir` is given (`""`: in
//!   memory).
//!
//! The `default` labels, when not configured, are `sqlite_db.db` and `sqlite_key_value.db`
//! in the state directory. A key or a type this host does not know is an error naming it,
//! as with Spin ("unused runtime config key(s)"); so is one Spin knows but this host does
//! not run (libSQL, cloud stores, variable providers), never a silent fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// Where a local store's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    /// In memory, for as long as the host runs (Spin's `spin` type without a `path`).
    Memory,
}

/// One key-value store label's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueConfig {
    /// Spin's SQLite file layout.
    Spin(Location),
    /// A Redis server (`redis://host:port[/db]` or `redis+unix:///path`).
    Redis { url: String },
}

/// The state directory as the runtime config file sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum StateDir {
    /// Not set: `.spin` beside the manifest.
    #[default]
    Default,
    /// `state_dir = ""`: the default stores are in memory.
    Unset,
    Provided(PathBuf),
}

#[derive(Debug, Default)]
pub struct RuntimeConfig {
    sqlite_database: BTreeMap<String, Location>,
    key_value_store: BTreeMap<String, KeyValueConfig>,
    state_dir: StateDir,
}

/// Keys Spin's runtime config knows that this host does not run.
const SPIN_KEYS_NOT_RUN: &[&str] = &[
    "log_dir",
    "max_instance_memory",
    "variables_provider",
    "config_provider",
    "llm_compute",
    "client_tls",
    "otel",
];

/// Key-value store types Spin knows that this host does not run.
const SPIN_KEY_VALUE_TYPES_NOT_RUN: &[&str] = &["azure_cosmos", "aws_dynamo"];

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the runtime config {}", path.display()))?;
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, &cwd.join(dir), &cwd)
            .with_context(|| format!("invalid runtime config {}", path.display()))
    }

    /// `config_dir` resolves key-value paths, `cwd` SQLite paths, as Spin resolves them.
    fn parse(text: &str, config_dir: &Path, cwd: &Path) -> Result<Self> {
        let table: toml::Table = toml::from_str(text)?;
        let mut config = Self::default();
        let mut unused = Vec::new();
        for (key, value) in &table {
            match key.as_str() {
                "key_value_store" => {
                    for (label, store) in tables(key, value)? {
                        let store = key_value_store(&label, store, config_dir)
                            .with_context(|| format!("`[key_value_store.{label}]`"))?;
                        config.key_value_store.insert(label, store);
                    }
                }
                "sqlite_database" => {
                    for (label, db) in tables(key, value)? {
                        let db = sqlite_database(&label, db, cwd)
                            .with_context(|| format!("`[sqlite_database.{label}]`"))?;
                        config.sqlite_database.insert(label, db);
                    }
                }
                "state_dir" => {
                    let dir = value
                        .as_str()
                        .ok_or_else(|| anyhow!("`state_dir` must be a string"))?;
                    config.state_dir = match dir {
                        "" => StateDir::Unset,
                        dir => StateDir::Provided(cwd.join(dir)),
                    };
                }
                known if SPIN_KEYS_NOT_RUN.contains(&known) => bail!(
                    "`{known}` is a Spin runtime config key this host does not run; use \
                     `spin up` or a Spin host for it"
                ),
                other => unused.push(other.to_owned()),
            }
        }
        if !unused.is_empty() {
            bail!("unused runtime config key(s): {}", unused.join(", "));
        }
        Ok(config)
    }

    /// The state directory: `--state-dir`, else the file's `state_dir`, else `.spin`
    /// beside the manifest; `None` when either sets it to `""` (in memory, as on Spin).
    pub fn state_dir(&self, cli: Option<&Path>, manifest_dir: &Path) -> Option<PathBuf> {
        if let Some(dir) = cli {
            return (!dir.as_os_str().is_empty()).then(|| dir.to_path_buf());
        }
        match &self.state_dir {
            StateDir::Default => Some(manifest_dir.join(".spin")),
            StateDir::Unset => None,
            StateDir::Provided(dir) => Some(dir.clone()),
        }
    }

    /// Where the SQLite database `label` lives; `None` if it is not defined.
    pub fn sqlite_database(&self, label: &str, state_dir: Option<&Path>) -> Option<Location> {
        match self.sqlite_database.get(label) {
            Some(location) => Some(location.clone()),
            None => (label == "default").then(|| default_location(state_dir, "sqlite_db.db")),
        }
    }

    /// The key-value store `label`'s backend; `None` if it is not defined.
    pub fn key_value_store(&self, label: &str, state_dir: Option<&Path>) -> Option<KeyValueConfig> {
        match self.key_value_store.get(label) {
            Some(store) => Some(store.clone()),
            None => (label == "default")
                .then(|| KeyValueConfig::Spin(default_location(state_dir, "sqlite_key_value.db"))),
        }
    }
}

fn default_location(state_dir: Option<&Path>, file: &str) -> Location {
    match state_dir {
        Some(dir) => Location::File(dir.join(file)),
        None => Location::Memory,
    }
}

/// `[<key>.<label>]` tables.
fn tables<'a>(key: &str, value: &'a toml::Value) -> Result<Vec<(String, &'a toml::Table)>> {
    let labels = value
        .as_table()
        .ok_or_else(|| anyhow!("`{key}` must be a table of `[{key}.<label>]` tables"))?;
    labels
        .iter()
        .map(|(label, store)| match store.as_table() {
            Some(store) => Ok((label.clone(), store)),
            None => Err(anyhow!("`{key}.{label}` must be a table")),
        })
        .collect()
}

/// A store's keys, checked: `type` first, then only `allowed`.
struct StoreTable<'a> {
    table: &'a toml::Table,
}

impl<'a> StoreTable<'a> {
    fn kind(table: &'a toml::Table) -> Result<(&'a str, Self)> {
        let kind = table
            .get("type")
            .ok_or_else(|| anyhow!("`type` is missing"))?
            .as_str()
            .ok_or_else(|| anyhow!("`type` must be a string"))?;
        Ok((kind, Self { table }))
    }

    fn only(&self, kind: &str, allowed: &[&str]) -> Result<()> {
        for key in self.table.keys() {
            if key != "type" && !allowed.contains(&key.as_str()) {
                let expected = allowed
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                bail!("unknown key `{key}` for type `{kind}` (it takes {expected})");
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>> {
        self.table
            .get(key)
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| anyhow!("`{key}` must be a string"))
            })
            .transpose()
    }
}

fn key_value_store(label: &str, table: &toml::Table, config_dir: &Path) -> Result<KeyValueConfig> {
    let (kind, store) = StoreTable::kind(table)?;
    match kind {
        "spin" => {
            store.only(kind, &["path"])?;
            Ok(KeyValueConfig::Spin(match store.string("path")? {
                Some(path) => Location::File(config_dir.join(path)),
                None => Location::Memory,
            }))
        }
        "redis" => {
            store.only(kind, &["url"])?;
            let url = store
                .string("url")?
                .ok_or_else(|| anyhow!("type `redis` needs `url`"))?;
            crate::key_value::RedisKeyValue::check_url(url)?;
            Ok(KeyValueConfig::Redis {
                url: url.to_owned(),
            })
        }
        known if SPIN_KEY_VALUE_TYPES_NOT_RUN.contains(&known) => bail!(
            "type `{known}` is a Spin key-value store this host does not run (it runs `spin` \
             and `redis`); use `spin up` or a Spin host for it"
        ),
        other => bail!(
            "could not configure key-value store with label '{label}': the store type \
             '{other}' is not one this host knows (`spin`, `redis`)"
        ),
    }
}

fn sqlite_database(label: &str, table: &toml::Table, cwd: &Path) -> Result<Location> {
    let (kind, db) = StoreTable::kind(table)?;
    match kind {
        "spin" => {
            db.only(kind, &["path", "allow_attach_file"])?;
            if table
                .get("allow_attach_file")
                .and_then(toml::Value::as_bool)
                == Some(true)
            {
                bail!("`allow_attach_file = true` is not supported by this host");
            }
            Ok(match db.string("path")? {
                Some(path) => Location::File(cwd.join(path)),
                None => Location::Memory,
            })
        }
        "libsql" => bail!(
            "type `libsql` (a remote libSQL server) is not run by this host, which keeps \
             SQLite in local files; use `spin up` or a Spin host such as SpinKube for it"
        ),
        other => bail!("database `{label}`: Unknown database kind: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(text, Path::new("/etc/app"), Path::new("/work"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn the_default_stores_live_in_the_state_directory() {
        let config = parse("").unwrap();
        let state = config.state_dir(None, Path::new("/app"));
        assert_eq!(state, Some(PathBuf::from("/app/.spin")));
        assert_eq!(
            config.sqlite_database("default", state.as_deref()),
            Some(Location::File(PathBuf::from("/app/.spin/sqlite_db.db")))
        );
        assert_eq!(
            config.key_value_store("default", state.as_deref()),
            Some(KeyValueConfig::Spin(Location::File(PathBuf::from(
                "/app/.spin/sqlite_key_value.db"
            ))))
        );
        assert_eq!(config.sqlite_database("orders", state.as_deref()), None);
        assert_eq!(config.key_value_store("cache", state.as_deref()), None);
    }

    #[test]
    fn state_dir_comes_from_the_command_line_then_the_file() {
        let config = parse("state_dir = \"data\"").unwrap();
        let cli = Path::new("/cli");
        assert_eq!(
            config.state_dir(Some(cli), Path::new("/app")),
            Some(cli.to_path_buf())
        );
        assert_eq!(
            config.state_dir(None, Path::new("/app")),
            Some(PathBuf::from("/work/data"))
        );
        assert_eq!(
            config.state_dir(Some(Path::new("")), Path::new("/app")),
            None
        );
        let memory = parse("state_dir = \"\"").unwrap();
        let state = memory.state_dir(None, Path::new("/app"));
        assert_eq!(state, None);
        assert_eq!(
            memory.sqlite_database("default", state.as_deref()),
            Some(Location::Memory)
        );
    }

    #[test]
    fn paths_resolve_as_spin_resolves_them() {
        let config = parse(
            "[sqlite_database.orders]\ntype = \"spin\"\npath = \"data/orders.db\"\n\
             [sqlite_database.scratch]\ntype = \"spin\"\n\
             [key_value_store.cache]\ntype = \"spin\"\npath = \"kv/cache.db\"\n\
             [key_value_store.default]\ntype = \"spin\"\n",
        )
        .unwrap();
        // SQLite against the working directory, key-value against the file's directory.
        assert_eq!(
            config.sqlite_database("orders", None),
            Some(Location::File(PathBuf::from("/work/data/orders.db")))
        );
        assert_eq!(
            config.sqlite_database("scratch", None),
            Some(Location::Memory)
        );
        assert_eq!(
            config.key_value_store("cache", None),
            Some(KeyValueConfig::Spin(Location::File(PathBuf::from(
                "/etc/app/kv/cache.db"
            ))))
        );
        assert_eq!(
            config.key_value_store("default", Some(Path::new("/s"))),
            Some(KeyValueConfig::Spin(Location::Memory))
        );
    }

    #[test]
    fn redis_takes_a_url() {
        let config = parse(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/2\"\n",
        )
        .unwrap();
        assert_eq!(
            config.key_value_store("default", None),
            Some(KeyValueConfig::Redis {
                url: "redis://127.0.0.1:6379/2".into()
            })
        );
        let missing = error("[key_value_store.default]\ntype = \"redis\"\n");
        assert!(missing.contains("needs `url`"), "{missing}");
        let bad = error("[key_value_store.default]\ntype = \"redis\"\nurl = \"http://x\"\n");
        assert!(bad.contains("http://x"), "{bad}");
    }

    #[test]
    fn the_repositorys_redis_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-config.redis.toml");
        let config = RuntimeConfig::load(&path).unwrap();
        assert_eq!(
            config.key_value_store("default", None),
            Some(KeyValueConfig::Redis {
                url: "redis://127.0.0.1:6379".into()
            })
        );
        let db = config.sqlite_database("default", None);
        assert!(
            matches!(&db, Some(Location::File(p)) if p.ends_with(".spin/sqlite_db.db")),
            "{db:?}"
        );
    }

    #[test]
    fn unknown_keys_and_types_are_refused_by_name() {
        for (text, named) in [
            (
                "cache_dir = \"x\"\n",
                "unused runtime config key(s): cache_dir",
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"\nuri = \"redis://x\"\n",
                "`uri`",
            ),
            (
                "[key_value_store.default]\ntype = \"memcached\"\n",
                "'memcached'",
            ),
            (
                "[key_value_store.default]\npath = \"x\"\n",
                "`type` is missing",
            ),
            (
                "[sqlite_database.default]\ntype = \"spin\"\nfile = \"x\"\n",
                "`file`",
            ),
            (
                "[sqlite_database.orders]\ntype = \"postgres\"\n",
                "Unknown database kind: postgres",
            ),
        ] {
            let err = error(text);
            assert!(err.contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn what_spin_runs_but_this_host_does_not_is_refused_with_a_way_out() {
        for text in [
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://db\"\ntoken = \"t\"\n",
            "[key_value_store.default]\ntype = \"azure_cosmos\"\n",
            "[[variables_provider]]\ntype = \"vault\"\n",
        ] {
            let err = error(text);
            assert!(err.contains("spin up"), "{text}: {err}");
        }
    }
}
