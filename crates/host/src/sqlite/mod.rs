//! Spin's SQLite interface, both generations (`fermyon:spin/sqlite@2.0.0`,
//! `spin:sqlite/sqlite@3.1.0`, which also serves 3.0.0's importers), as Spin's `factor-sqlite` serves it: the app's databases are
//! local files (`database.rs`), configured by `[sqlite_database.<label>]` (`config.rs`); a
//! component opens those its `sqlite_databases` lists (`access-denied` for the others); its
//! connections live in its instance's own resource table (`host.rs`).

mod config;
mod database;
mod host;

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use wasmtime::component::{HasSelf, Linker};

use crate::factor::AppContext;
use crate::labels::{Opened, Refused, StoreFactor, Stores};
use crate::manifest::Component;
use crate::runtime_config::Location;
use database::{Database, SqlError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "sqlite",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/sqlite.connection": crate::sqlite::database::Connection,
            "spin:sqlite/sqlite.connection": crate::sqlite::database::Connection,
        },
    });
}

pub struct SqliteFactor;

/// The app's databases, by label.
pub type AppState = Stores<Location, Arc<Database>>;

/// One instance's grant and its open connections.
pub type InstanceState = Opened<Arc<Database>>;

impl StoreFactor for SqliteFactor {
    type Config = Location;
    type Store = Arc<Database>;

    const RUNTIME_CONFIG_KEYS: &'static [&'static str] = &[config::KEY];

    /// Opens the databases the components use (and `default`, which `--sqlite` statements
    /// may use); keeps those `previous` has open where they are still configured.
    fn open(ctx: &AppContext<'_>, previous: Option<&AppState>) -> Result<AppState> {
        let undefined = |label: &str| {
            anyhow!(
                "component `{}` uses the SQLite database `{label}`, which is not defined: only \
                 `default` exists without configuration; define `[sqlite_database.{label}]` in \
                 a runtime config file (--runtime-config-file)",
                users(ctx, label).join("`, `")
            )
        };
        let configured = config::locations(ctx.runtime_config)?;
        let databases = Stores::open(used_labels(ctx), &configured, previous, undefined, open)?;
        if previous.is_none() {
            run_start_statements(&databases, ctx.sqlite_statements)?;
        }
        Ok(databases)
    }

    fn granted(component: &Component) -> &[String] {
        &component.sqlite_databases
    }
}

/// Links both generations of the interface, on the state `get` projects to.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    bindings::Sqlite::add_to_linker::<T, HasSelf<InstanceState>>(linker, get)
        .map_err(anyhow::Error::from)
}

/// `default`, and every label a component lists, once each, in order.
fn used_labels(ctx: &AppContext<'_>) -> Vec<String> {
    let mut labels = vec!["default".to_owned()];
    for component in ctx.manifest.manifest.component.values() {
        labels.extend(component.sqlite_databases.iter().cloned());
    }
    labels.sort();
    labels.dedup();
    labels
}

/// The components that list `label`.
fn users<'a>(ctx: &'a AppContext<'_>, label: &str) -> Vec<&'a str> {
    ctx.manifest
        .manifest
        .component
        .iter()
        .filter(|(_, c)| c.sqlite_databases.iter().any(|l| l == label))
        .map(|(id, _)| id.as_str())
        .collect()
}

fn open(label: &str, location: &Location) -> Result<Arc<Database>> {
    match location {
        Location::File(path) => {
            if label == "default" {
                let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                eprintln!("Storing default SQLite data to {shown:?}.");
            }
            Database::open(path)
        }
        Location::Memory => {
            eprintln!(
                "Storing SQLite data of `{label}` in memory: it is gone when the host stops."
            );
            Database::open_in_memory(label)
        }
    }
}

/// `--sqlite @FILE[:LABEL]` runs a file of statements on a database (`default` unless a
/// label is given); `--sqlite STATEMENT` runs a statement on the default database.
fn run_start_statements(databases: &AppState, statements: &[String]) -> Result<()> {
    for statement in statements {
        let (sql, label, origin) = match statement.strip_prefix('@') {
            Some(spec) => {
                let (file, label) = match spec.rsplit_once(':') {
                    Some((file, label)) if !label.is_empty() && !label.contains(['/', '\\']) => {
                        (file, label)
                    }
                    _ => (spec, "default"),
                };
                let sql = std::fs::read_to_string(file).with_context(|| {
                    format!("could not read file '{file}' containing sql statements")
                })?;
                (sql, label, format!("from file '{file}'"))
            }
            None => (statement.clone(), "default", format!("'{statement}'")),
        };
        let db = databases.get(label).with_context(|| {
            format!("--sqlite {statement}: a database named '{label}' was expected but not found")
        })?;
        db.execute_batch(&sql).with_context(|| {
            format!("failed to execute sql against database '{label}' {origin}")
        })?;
    }
    Ok(())
}

impl From<Refused> for SqlError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::AccessDenied => Self::AccessDenied,
            Refused::NoSuchStore => Self::NoSuchDatabase,
        }
    }
}
