//! The order service's own SQLite database (its `default` database).

use spin_sdk::sqlite::{Connection, Value};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS orders (
        id             TEXT PRIMARY KEY,
        status         TEXT NOT NULL,
        lines          TEXT NOT NULL,
        hold_seconds   INTEGER NOT NULL DEFAULT 900,
        -- The inventory's hold of the order's stock, once made.
        reservation_id TEXT,
        detail         TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    )",
    // Every event applied or dropped in the last week, by webhook-id: a redelivery is
    // recognised.
    "CREATE TABLE IF NOT EXISTS seen_events (
        id          TEXT PRIMARY KEY,
        type        TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    )",
    "CREATE INDEX IF NOT EXISTS seen_events_received ON seen_events (received_at)",
    // What the events have said about each product; `version` only ever grows.
    "CREATE TABLE IF NOT EXISTS inventory (
        product_id INTEGER PRIMARY KEY,
        sku        TEXT,
        stock      INTEGER,
        version    INTEGER NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0,
        last_event TEXT NOT NULL
    )",
];

pub fn open() -> Result<Connection, String> {
    let conn = Connection::open_default().map_err(|e| format!("the database: {e}"))?;
    for statement in SCHEMA {
        conn.execute(statement, &[])
            .map_err(|e| format!("the database schema: {e}"))?;
    }
    Ok(conn)
}

pub fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}
