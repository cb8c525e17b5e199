//! The database: Spin SQLite (`fermyon:spin/sqlite@2.0.0`, served by every Spin from 2.x on),
//! the schema's migrations, and one module per group of tables. Every write that changes
//! stock also writes its ledger row, and every change its events to the outbox, in the same
//! transaction.

pub mod db;
pub mod events;
pub mod idempotency;
pub mod ledger;
pub mod metrics;
pub mod migrations;
pub mod outbox;
pub mod products;
pub mod reservations;
pub mod stock;

pub use db::{Db, StoreError};

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
