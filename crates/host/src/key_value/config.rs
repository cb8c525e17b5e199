//! `[key_value_store.<label>]` of the runtime config, read as Spin reads it. Each store type
//! this host runs reads its own keys (`TYPES`):
//!
//! - `type = "spin"`: Spin's SQLite file layout, at `path` (relative to the runtime config
//!   file's directory); none is an in-memory store;
//! - `type = "redis"`: a Redis server at `url` (`redis://host:port[/db]`,
//!   `redis+unix:///path`).
//!
//! The `default` label, when not configured, is `sqlite_key_value.db` in the state directory.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};

use super::RedisKeyValue;
use crate::runtime_config::{Location, RuntimeConfig, StoreTable};

pub const KEY: &str = "key_value_store";

/// One label's store, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Spin's SQLite file layout.
    Spin(Location),
    Redis {
        url: String,
    },
}

/// The store types this host runs, each with the reader of its table.
type ReadStore = fn(&StoreTable<'_>, &RuntimeConfig) -> Result<StoreConfig>;
const TYPES: &[(&str, ReadStore)] = &[("spin", spin_store), ("redis", redis_store)];

/// Key-value store types Spin knows that this host does not run.
const SPIN_TYPES_NOT_RUN: &[&str] = &["azure_cosmos", "aws_dynamo"];

/// Every configured store, by label (`default` included).
pub fn stores(config: &RuntimeConfig) -> Result<BTreeMap<String, StoreConfig>> {
    let mut stores = BTreeMap::new();
    let default = StoreConfig::Spin(config.default_location("sqlite_key_value.db"));
    stores.insert("default".to_owned(), default);
    for (label, table) in config.stores(KEY)? {
        let store = store(label, &table, config)
            .with_context(|| format!("invalid runtime config: `[{KEY}.{label}]`"))?;
        stores.insert(label.to_owned(), store);
    }
    Ok(stores)
}

fn store(label: &str, table: &StoreTable<'_>, config: &RuntimeConfig) -> Result<StoreConfig> {
    let kind = table.kind()?;
    if let Some((_, read)) = TYPES.iter().find(|(name, _)| *name == kind) {
        return read(table, config);
    }
    let known = TYPES
        .iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if SPIN_TYPES_NOT_RUN.contains(&kind) {
        bail!(
            "type `{kind}` is a Spin key-value store this host does not run (it runs {known}); \
             use `spin up` or a Spin host for it"
        );
    }
    bail!(
        "could not configure key-value store with label '{label}': the store type '{kind}' is \
         not one this host knows ({known})"
    )
}

fn spin_store(table: &StoreTable<'_>, config: &RuntimeConfig) -> Result<StoreConfig> {
    table.only(&["path"])?;
    Ok(StoreConfig::Spin(match table.string("path")? {
        Some(path) => Location::File(config.config_dir().join(path)),
        None => Location::Memory,
    }))
}

fn redis_store(table: &StoreTable<'_>, _config: &RuntimeConfig) -> Result<StoreConfig> {
    table.only(&["url"])?;
    let url = table
        .string("url")?
        .ok_or_else(|| anyhow!("type `redis` needs `url`"))?;
    RedisKeyValue::check_url(url)?;
    Ok(StoreConfig::Redis {
        url: url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::runtime_config::tests::{config, config_with};

    fn error(text: &str) -> String {
        format!("{:#}", stores(&config(text).unwrap()).unwrap_err())
    }

    #[test]
    fn the_default_store_lives_in_the_state_directory_and_others_where_configured() {
        let found = stores(
            &config_with(
                "[key_value_store.cache]\ntype = \"spin\"\npath = \"kv/cache.db\"\n",
                Some(Path::new("/s")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            found["default"],
            StoreConfig::Spin(Location::File(PathBuf::from("/s/sqlite_key_value.db")))
        );
        // Against the runtime config file's directory, as Spin resolves them.
        assert_eq!(
            found["cache"],
            StoreConfig::Spin(Location::File(PathBuf::from("/etc/app/kv/cache.db")))
        );
        let memory = stores(&config("[key_value_store.default]\ntype = \"spin\"\n").unwrap());
        assert_eq!(
            memory.unwrap()["default"],
            StoreConfig::Spin(Location::Memory)
        );
    }

    #[test]
    fn redis_takes_a_url() {
        let found = stores(
            &config(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/2\"\n",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            found["default"],
            StoreConfig::Redis {
                url: "redis://127.0.0.1:6379/2".into()
            }
        );
        let missing = error("[key_value_store.default]\ntype = \"redis\"\n");
        assert!(missing.contains("needs `url`"), "{missing}");
        let bad = error("[key_value_store.default]\ntype = \"redis\"\nurl = \"http://x\"\n");
        assert!(bad.contains("http://x"), "{bad}");
    }

    #[test]
    fn the_repositorys_redis_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-config.redis.toml");
        let config = RuntimeConfig::load(Some(&path), None, Path::new("/app")).unwrap();
        assert_eq!(
            stores(&config).unwrap()["default"],
            StoreConfig::Redis {
                url: "redis://127.0.0.1:6379".into()
            }
        );
        config.check_keys(&[KEY, "sqlite_database"]).unwrap();
    }

    #[test]
    fn unknown_keys_and_types_are_refused_by_name() {
        for (text, named) in [
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
                "[key_value_store.default]\ntype = \"azure_cosmos\"\n",
                "spin up",
            ),
        ] {
            let err = error(text);
            assert!(err.contains(named), "{text}: {err}");
        }
    }
}
