//! The order service's own SQLite database (its `default` database), through spin-sdk 7's
//! async SQLite: each request opens its own connection, so requests sharing an instance never
//! share a transaction.

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

/// A connection of this request's.
pub struct Db(Connection);

/// A row, its values by column name.
pub struct Row {
    columns: std::rc::Rc<[String]>,
    values: Vec<Value>,
}

impl Row {
    fn value(&self, name: &str) -> Option<&Value> {
        let at = self.columns.iter().position(|c| c == name)?;
        self.values.get(at)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl Db {
    /// The database, its schema made if it is new.
    pub async fn open() -> Result<Self, String> {
        let conn = Connection::open_default()
            .await
            .map_err(|e| format!("the database: {e}"))?;
        let db = Self(conn);
        for statement in SCHEMA {
            db.exec(statement, Vec::new())
                .await
                .map_err(|e| format!("the database schema: {e}"))?;
        }
        Ok(db)
    }

    /// Runs one statement; its rows.
    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, String> {
        let result = self
            .0
            .execute(sql, params)
            .await
            .map_err(|e| e.to_string())?;
        let columns: std::rc::Rc<[String]> = result.columns().into();
        let rows = result.collect().await.map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|row| Row {
                columns: std::rc::Rc::clone(&columns),
                values: row.values,
            })
            .collect())
    }

    /// Runs one statement to its end.
    pub async fn exec(&self, sql: &str, params: Vec<Value>) -> Result<(), String> {
        self.query(sql, params).await.map(drop)
    }
}

pub fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}
