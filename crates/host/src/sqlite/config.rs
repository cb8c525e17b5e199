//! `[sqlite_database.<label>]` of the runtime config, read as Spin reads it: `type = "spin"`
//! with an optional `path` (relative to the working directory, as `spin up` resolves it;
//! none is an in-memory database). The `default` label, when not configured, is
//! `sqlite_db.db` in the state directory.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::runtime_config::{Location, RuntimeConfig, StoreTable};

pub const KEY: &str = "sqlite_database";

/// Where each configured database lives, by label (`default` included).
pub fn locations(config: &RuntimeConfig) -> Result<BTreeMap<String, Location>> {
    let mut locations = BTreeMap::new();
    locations.insert(
        "default".to_owned(),
        config.default_location("sqlite_db.db"),
    );
    for (label, table) in config.stores(KEY)? {
        let location = location(label, &table, config)
            .with_context(|| format!("invalid runtime config: `[{KEY}.{label}]`"))?;
        locations.insert(label.to_owned(), location);
    }
    Ok(locations)
}

fn location(label: &str, table: &StoreTable<'_>, config: &RuntimeConfig) -> Result<Location> {
    match table.kind()? {
        "spin" => {
            table.only(&["path", "allow_attach_file"])?;
            if table.bool("allow_attach_file")? == Some(true) {
                bail!("`allow_attach_file = true` is not supported by this host");
            }
            Ok(match table.string("path")? {
                Some(path) => Location::File(config.cwd().join(path)),
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
    use std::path::PathBuf;

    use super::*;
    use crate::runtime_config::tests::config;

    fn error(text: &str) -> String {
        format!("{:#}", locations(&config(text).unwrap()).unwrap_err())
    }

    #[test]
    fn the_default_database_lives_in_the_state_directory_and_others_where_configured() {
        let found = locations(
            &config(
                "[sqlite_database.orders]\ntype = \"spin\"\npath = \"data/orders.db\"\n\
                 [sqlite_database.scratch]\ntype = \"spin\"\n",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            found["default"],
            Location::File(PathBuf::from("/app/.spin/sqlite_db.db"))
        );
        // Against the working directory, as `spin up` resolves them.
        assert_eq!(
            found["orders"],
            Location::File(PathBuf::from("/work/data/orders.db"))
        );
        assert_eq!(found["scratch"], Location::Memory);
        assert!(!found.contains_key("other"));
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused_by_name() {
        for (text, named) in [
            (
                "[sqlite_database.default]\ntype = \"spin\"\nfile = \"x\"\n",
                "`file`",
            ),
            (
                "[sqlite_database.orders]\ntype = \"postgres\"\n",
                "Unknown database kind: postgres",
            ),
            (
                "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://db\"\n",
                "spin up",
            ),
        ] {
            let err = error(text);
            assert!(err.contains(named), "{text}: {err}");
        }
    }
}
