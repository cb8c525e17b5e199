//! Spin's SQLite interface, both generations (`fermyon:spin/sqlite@2.0.0`,
//! `spin:sqlite/sqlite@3.0.0`), as Spin's `factor-sqlite` serves it: the app's databases are
//! local files (`database.rs`), configured by `[sqlite_database.<label>]` (`config.rs`); a
//! component opens those its `sqlite_databases` lists (`access-denied` for the others); its
//! connections live in its instance's own resource table (`host.rs`).

mod config;
mod database;
mod host;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use wasmtime::component::{HasSelf, Linker, ResourceTable};

use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};
use crate::runtime_config::Location;
use database::{Database, Databases, SqlError};

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

/// The app's databases, and where each was configured to be.
pub struct AppState {
    databases: Arc<Databases>,
    locations: BTreeMap<String, Location>,
}

/// The databases one component may open.
#[derive(Clone)]
pub struct ComponentState {
    databases: Arc<Databases>,
    granted: Arc<[String]>,
}

/// One instance's grant and its open connections.
pub struct InstanceState {
    grant: ComponentState,
    table: ResourceTable,
}

impl Factor for SqliteFactor {
    type AppState = AppState;
    type ComponentState = ComponentState;
    type InstanceState = InstanceState;

    const RUNTIME_CONFIG_KEYS: &'static [&'static str] = &[config::KEY];

    /// Opens the databases the components use (and `default`, which `--sqlite` statements
    /// may use); keeps those `previous` has open where they are still configured.
    fn configure_app(ctx: &AppContext<'_>, previous: Option<&AppState>) -> Result<AppState> {
        let configured = config::locations(ctx.runtime_config)?;
        let mut databases = Databases::default();
        let mut locations = BTreeMap::new();
        for label in used_labels(ctx) {
            let Some(location) = configured.get(&label) else {
                bail!(
                    "component `{}` uses the SQLite database `{label}`, which is not defined: \
                     only `default` exists without configuration; define \
                     `[sqlite_database.{label}]` in a runtime config file \
                     (--runtime-config-file)",
                    users(ctx, &label).join("`, `")
                );
            };
            let kept = previous
                .filter(|p| p.locations.get(&label) == Some(location))
                .and_then(|p| p.databases.get(&label));
            let db = match kept {
                Some(open) => Arc::clone(open),
                None => open(&label, location)?,
            };
            locations.insert(label.clone(), location.clone());
            databases.insert(label, db);
        }
        if previous.is_none() {
            run_start_statements(&databases, ctx.sqlite_statements)?;
        }
        Ok(AppState {
            databases: Arc::new(databases),
            locations,
        })
    }

    fn configure_component(app: &AppState, ctx: &ComponentContext<'_>) -> Result<ComponentState> {
        Ok(ComponentState {
            databases: Arc::clone(&app.databases),
            granted: ctx.component.sqlite_databases.clone().into(),
        })
    }

    fn instance(component: &ComponentState, _ctx: &InstanceContext) -> InstanceState {
        InstanceState {
            grant: component.clone(),
            table: ResourceTable::new(),
        }
    }

    fn denied() -> Option<InstanceState> {
        Some(InstanceState {
            grant: ComponentState {
                databases: Arc::default(),
                granted: Arc::from(Vec::new()),
            },
            table: ResourceTable::new(),
        })
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

impl ComponentState {
    /// The database `label`, if this component may open it.
    fn database(&self, label: &str) -> Result<Arc<Database>, SqlError> {
        if !self.granted.iter().any(|g| g == label) {
            return Err(SqlError::AccessDenied);
        }
        self.databases
            .get(label)
            .cloned()
            .ok_or(SqlError::NoSuchDatabase)
    }
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
fn run_start_statements(databases: &Databases, statements: &[String]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(dir: &std::path::Path, granted: &[&str]) -> ComponentState {
        let mut databases = Databases::default();
        databases.insert(
            "default".into(),
            Database::open(&dir.join("db.sqlite")).unwrap(),
        );
        let granted: Vec<String> = granted.iter().map(|s| s.to_string()).collect();
        ComponentState {
            databases: Arc::new(databases),
            granted: granted.into(),
        }
    }

    #[test]
    fn an_undeclared_database_is_access_denied() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            grant(dir.path(), &[]).database("default"),
            Err(SqlError::AccessDenied)
        ));
    }

    #[test]
    fn a_declared_but_undefined_database_is_no_such_database() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            grant(dir.path(), &["default", "orders"]).database("orders"),
            Err(SqlError::NoSuchDatabase)
        ));
    }
}
