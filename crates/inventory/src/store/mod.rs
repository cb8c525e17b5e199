//! The database: Spin SQLite (`fermyon:spin/sqlite@2.0.0`, served by every Spin from 2.x on),
//! the schema's migrations, and one module per group of tables. Every write that changes
//! stock also writes its ledger row, and every change its events to the outbox, in the same
//! transaction.

pub mod db;
pub mod events;
pub mod idempotency;
pub mod ledger;
pub mod migrations;
pub mod outbox;
pub mod products;
pub mod stock;

pub use db::{Db, StoreError};

/// Opens the app's default database with its schema up to date.
pub fn open() -> Result<Db, StoreError> {
    let db = Db::connect()?;
    migrations::migrate(&db)?;
    Ok(db)
}
