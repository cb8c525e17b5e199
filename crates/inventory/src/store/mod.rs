//! The database: Spin SQLite (`fermyon:spin/sqlite@2.0.0`, served by every Spin from 2.x on),
//! the schema's migrations, and one module per group of tables, each the only one that
//! writes them. Every write that changes stock also writes its ledger row, and every change
//! its events to the outbox, in the same transaction.
//!
//! The modules import downwards only, never in a circle (a unit test holds them to it):
//!
//! - `error`, `config`, `events`: what the store's error, configuration and events are;
//! - `db`: the connection, its transactions, and the app's clock;
//! - `migrations`, `idempotency`, `held`, `outbox`: one table (group) each;
//! - `ledger`: a change of quantities recorded (its row, and its events);
//! - `levels`: a product's stock per location;
//! - `products`, then `locations`, then `stock` (the one path for taking stock) and
//!   `moves` (counts and transfers), then `reservations`;
//! - `metrics`: what operators watch, read across the tables.

pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod held;
pub mod idempotency;
pub mod ledger;
pub mod levels;
pub mod locations;
pub mod metrics;
pub mod migrations;
pub mod moves;
pub mod outbox;
pub mod products;
pub mod reservations;
pub mod spin;
pub mod stock;

pub use db::{Db, Tx};
pub use error::StoreError;

/// Opens the app's default database with its schema up to date, and reads the app's clock
/// (`db::Clock`): one query when the schema is current.
pub fn open() -> Result<Db, StoreError> {
    let db = Db::connect()?;
    match db.read_clock() {
        Ok(clock) if clock.schema >= migrations::latest() => {}
        // A new database, or one from before the latest migration.
        _ => {
            migrations::migrate(&db)?;
            db.read_clock()?;
        }
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The store's modules form layers: none imports one that imports it back, directly or
    /// through others. (`cargo test -p inventory store_modules`)
    #[test]
    fn store_modules_import_no_module_that_imports_them_back() {
        let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let graph = module_graph::graph(&store, &["crate::store::", "super::"], &["mod"]);
        assert!(graph.len() > 10, "{graph:?}");
        assert!(graph["reservations"].contains("stock"), "{graph:?}");
        let cycles = module_graph::cycles(&graph);
        assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
    }
}
