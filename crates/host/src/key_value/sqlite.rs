//! The `spin` key-value backend: local SQLite files laid out as Spin lays them out,
//! `.spin/sqlite_key_value.db` with one table `spin_key_value(store, key, value)`, so a state
//! directory moves between this host and `spin up`. Labels that map to one file share it.
//!
//! Each file has one connection behind a mutex, as in Spin; every operation is one
//! statement or one `BEGIN IMMEDIATE` transaction, so an increment is atomic across requests
//! and across processes sharing the file.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{Backend, KvError, KvResult};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One key-value file.
pub struct SqliteKeyValue {
    conn: Mutex<rusqlite::Connection>,
}

/// One label's view of a file.
struct SqliteStore {
    file: Arc<SqliteKeyValue>,
    label: String,
}

impl SqliteKeyValue {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open the key-value database {}", path.display()))?;
        Self::init(conn, &path.display().to_string())
    }

    /// A store that lives as long as the host (Spin's `spin` type without a `path`).
    pub fn open_in_memory() -> Result<Arc<Self>> {
        let conn = rusqlite::Connection::open_in_memory()
            .context("cannot open an in-memory key-value database")?;
        Self::init(conn, "memory")
    }

    /// `name` is the file (or "memory"), for messages.
    fn init(conn: rusqlite::Connection, name: &str) -> Result<Arc<Self>> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL with NORMAL sync: a commit is an append without fsync, so a counter increment
        // costs microseconds; a power cut may lose the last commits, never corrupt the file.
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("cannot enable WAL on {name}"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )
        .with_context(|| format!("cannot create the key-value table in {name}"))?;
        // From here on a statement that finds the write lock held by another process
        // returns at once (`KvError::Busy`), and the caller waits without holding an async
        // worker (`key_value::call`).
        conn.busy_handler(None)?;
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    /// The store `label` in this file.
    pub fn store(self: &Arc<Self>, label: &str) -> Arc<dyn Backend> {
        Arc::new(SqliteStore {
            file: Arc::clone(self),
            label: label.to_owned(),
        })
    }

    fn conn(&self) -> KvResult<MutexGuard<'_, rusqlite::Connection>> {
        self.conn
            .lock()
            .map_err(|_| KvError::Other("the key-value connection is poisoned".to_owned()))
    }
}

impl Backend for SqliteStore {
    fn is_local(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        let conn = self.file.conn()?;
        read(&conn, &self.label, key).map_err(sql_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> KvResult<()> {
        let conn = self.file.conn()?;
        write(&conn, &self.label, key, value).map_err(sql_error)
    }

    fn delete(&self, key: &str) -> KvResult<()> {
        let conn = self.file.conn()?;
        conn.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.execute(params![self.label, key]))
            .map(drop)
            .map_err(sql_error)
    }

    fn keys(&self) -> KvResult<Vec<String>> {
        let conn = self.file.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")
            .map_err(sql_error)?;
        let keys = stmt
            .query_map(params![self.label], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(sql_error);
        keys
    }

    fn increment(&self, key: &str, delta: i64) -> KvResult<i64> {
        let mut conn = self.file.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let current = match read(&tx, &self.label, key).map_err(sql_error)? {
            None => 0,
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| {
                    KvError::Other(format!("the value of {key:?} is not a counter (8 bytes)"))
                })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Other(format!("the counter {key:?} would overflow")))?;
        write(&tx, &self.label, key, &next.to_le_bytes()).map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
        Ok(next)
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> KvResult<Result<(), Option<Vec<u8>>>> {
        let mut conn = self.file.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let current = read(&tx, &self.label, key).map_err(sql_error)?;
        if current.as_deref() != expected {
            return Ok(Err(current));
        }
        write(&tx, &self.label, key, value).map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
        Ok(Ok(()))
    }
}

fn read(conn: &rusqlite::Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![store, key], |row| row.get(0))
        .optional()
}

fn write(
    conn: &rusqlite::Connection,
    store: &str,
    key: &str,
    value: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![store, key, value])
    .map(drop)
}

fn sql_error(err: rusqlite::Error) -> KvError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            KvError::Busy
        }
        _ => KvError::Other(format!("key-value store: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (tempfile::TempDir, Arc<SqliteKeyValue>) {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteKeyValue::open(&dir.path().join("kv.db")).unwrap();
        (dir, file)
    }

    #[test]
    fn counters_start_at_zero_and_are_stored_as_eight_little_endian_bytes() {
        let (_dir, f) = file();
        let (default, other) = (f.store("default"), f.store("other"));
        assert_eq!(default.increment("c", 1), Ok(1));
        assert_eq!(default.increment("c", 5), Ok(6));
        assert_eq!(default.get("c"), Ok(Some(6i64.to_le_bytes().to_vec())));
        assert_eq!(other.increment("c", -2), Ok(-2));
    }

    #[test]
    fn incrementing_a_value_that_is_not_a_counter_fails_and_keeps_it() {
        let (_dir, f) = file();
        let s = f.store("default");
        s.set("s", b"text").unwrap();
        assert!(s.increment("s", 1).is_err());
        assert_eq!(s.get("s"), Ok(Some(b"text".to_vec())));
    }

    #[test]
    fn concurrent_increments_from_two_connections_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let stores = [
            SqliteKeyValue::open(&path).unwrap().store("default"),
            SqliteKeyValue::open(&path).unwrap().store("default"),
        ];
        std::thread::scope(|scope| {
            for s in &stores {
                scope.spawn(move || {
                    for _ in 0..200 {
                        // The other connection may hold the write lock: wait, as the host
                        // does (`key_value::waiting`).
                        crate::key_value::waiting(|| s.increment("n", 1)).unwrap();
                    }
                });
            }
        });
        assert_eq!(stores[0].increment("n", 0), Ok(400));
    }

    #[test]
    fn swap_applies_only_if_the_value_is_unchanged() {
        let (_dir, f) = file();
        let s = f.store("default");
        assert_eq!(s.swap("k", None, b"a"), Ok(Ok(())));
        assert_eq!(s.swap("k", None, b"b"), Ok(Err(Some(b"a".to_vec()))));
        assert_eq!(s.swap("k", Some(b"a"), b"c"), Ok(Ok(())));
        assert_eq!(s.get("k"), Ok(Some(b"c".to_vec())));
    }

    #[test]
    fn stores_are_separate_and_keys_are_listed_per_store() {
        let (_dir, f) = file();
        let (default, other) = (f.store("default"), f.store("other"));
        default.set("a", b"1").unwrap();
        other.set("b", b"2").unwrap();
        assert_eq!(default.keys(), Ok(vec!["a".to_owned()]));
        default.delete("a").unwrap();
        default.delete("absent").unwrap();
        assert_eq!(default.get("a"), Ok(None));
    }
}
