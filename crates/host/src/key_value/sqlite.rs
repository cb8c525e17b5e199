//! Spin's key-value stores (`fermyon:spin/key-value@2.0.0` and `wasi:keyvalue/{store,
//! atomics,batch}@0.2.0-draft2`) over local SQLite files, laid out as Spin lays them out:
//! `.spin/sqlite_key_value.db`, one table `spin_key_value(store, key, value)`, so a state
//! directory moves between this host and `spin up`.
//!
//! Each file has one connection behind a mutex, as in Spin; every operation is one
//! statement or one `BEGIN IMMEDIATE` transaction, so an increment is atomic across requests
//! and across processes sharing the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value as v2;
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wasi_kv};
use crate::state::HostState;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One key-value file, shared by the stores whose labels map to it.
pub struct KeyValueFile {
    conn: Mutex<rusqlite::Connection>,
}

impl KeyValueFile {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open the key-value database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL with NORMAL sync: a commit is an append without fsync, so a counter increment
        // costs microseconds; a power cut may lose the last commits, never corrupt the file.
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("cannot enable WAL on {}", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )
        .with_context(|| format!("cannot create the key-value table in {}", path.display()))?;
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    fn conn(&self) -> Result<MutexGuard<'_, rusqlite::Connection>, String> {
        self.conn
            .lock()
            .map_err(|_| "the key-value connection is poisoned".to_owned())
    }

    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let conn = self.conn()?;
        read(&conn, store, key).map_err(sql_error)
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), String> {
        let conn = self.conn()?;
        write(&conn, store, key, value).map_err(sql_error)
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), String> {
        let conn = self.conn()?;
        conn.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.execute(params![store, key]))
            .map(drop)
            .map_err(sql_error)
    }

    fn keys(&self, store: &str) -> Result<Vec<String>, String> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")
            .map_err(sql_error)?;
        let keys = stmt
            .query_map(params![store], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(sql_error);
        keys
    }

    /// Adds `delta` to the counter at `key` (absent is 0) and returns the new value.
    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, String> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let current = match read(&tx, store, key).map_err(sql_error)? {
            None => 0,
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| format!("the value of {key:?} is not a counter (8 bytes)"))?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| format!("the counter {key:?} would overflow"))?;
        write(&tx, store, key, &next.to_le_bytes()).map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
        Ok(next)
    }

    /// Sets `key` to `value` if it still holds `expected`; otherwise returns what it holds.
    fn swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, String> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let current = read(&tx, store, key).map_err(sql_error)?;
        if current.as_deref() != expected {
            return Ok(Err(current));
        }
        write(&tx, store, key, value).map_err(sql_error)?;
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

fn sql_error(err: rusqlite::Error) -> String {
    format!("key-value store: {err}")
}

/// The app's stores, by label.
#[derive(Default)]
pub struct KeyValueStores {
    by_label: HashMap<String, Arc<KeyValueFile>>,
}

impl KeyValueStores {
    pub fn insert(&mut self, label: String, file: Arc<KeyValueFile>) {
        self.by_label.insert(label, file);
    }
}

/// What one component instance may open.
#[derive(Clone, Default)]
pub struct KeyValueAccess {
    stores: Arc<KeyValueStores>,
    granted: Arc<[String]>,
}

/// Why a store cannot be opened, in either interface's terms.
enum OpenError {
    AccessDenied,
    NoSuchStore,
}

impl KeyValueAccess {
    pub fn new(stores: Arc<KeyValueStores>, granted: Arc<[String]>) -> Self {
        Self { stores, granted }
    }

    fn open(&self, label: &str) -> Result<Store, OpenError> {
        if !self.granted.iter().any(|g| g == label) {
            return Err(OpenError::AccessDenied);
        }
        let file = self
            .stores
            .by_label
            .get(label)
            .ok_or(OpenError::NoSuchStore)?;
        Ok(Store {
            file: Arc::clone(file),
            label: label.to_owned(),
        })
    }
}

/// An open store: the guest's `store` (Spin 2) or `bucket` (wasi:keyvalue).
pub struct Store {
    file: Arc<KeyValueFile>,
    label: String,
}

/// A value read for a later compare-and-swap.
pub struct Cas {
    file: Arc<KeyValueFile>,
    label: String,
    key: String,
    current: Option<Vec<u8>>,
}

impl HostState {
    fn kv_store(&self, handle: &Resource<Store>) -> wasmtime::Result<&Store> {
        Ok(self.table.get(handle)?)
    }
}

// ---- fermyon:spin/key-value@2.0.0 ----

impl v2::Host for HostState {}

impl v2::HostStore for HostState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Store>, v2::Error>> {
        match self.key_value.open(&label) {
            Ok(store) => Ok(Ok(self.table.push(store)?)),
            Err(OpenError::AccessDenied) => Ok(Err(v2::Error::AccessDenied)),
            Err(OpenError::NoSuchStore) => Ok(Err(v2::Error::NoSuchStore)),
        }
    }

    fn get(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v2::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.get(&s.label, &key).map_err(v2::Error::Other))
    }

    fn set(
        &mut self,
        this: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.set(&s.label, &key, &value).map_err(v2::Error::Other))
    }

    fn delete(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.delete(&s.label, &key).map_err(v2::Error::Other))
    }

    fn exists(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, v2::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file
            .get(&s.label, &key)
            .map(|v| v.is_some())
            .map_err(v2::Error::Other))
    }

    fn get_keys(
        &mut self,
        this: Resource<Store>,
    ) -> wasmtime::Result<Result<Vec<String>, v2::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.keys(&s.label).map_err(v2::Error::Other))
    }

    fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

// ---- wasi:keyvalue@0.2.0-draft2 ----

impl wasi_kv::Host for HostState {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Store>, wasi_kv::Error>> {
        match self.key_value.open(&identifier) {
            Ok(store) => Ok(Ok(self.table.push(store)?)),
            Err(OpenError::AccessDenied) => Ok(Err(wasi_kv::Error::AccessDenied)),
            Err(OpenError::NoSuchStore) => Ok(Err(wasi_kv::Error::NoSuchStore)),
        }
    }
}

impl wasi_kv::HostBucket for HostState {
    fn get(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.get(&s.label, &key).map_err(wasi_kv::Error::Other))
    }

    fn set(
        &mut self,
        this: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file
            .set(&s.label, &key, &value)
            .map_err(wasi_kv::Error::Other))
    }

    fn delete(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file.delete(&s.label, &key).map_err(wasi_kv::Error::Other))
    }

    fn exists(
        &mut self,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file
            .get(&s.label, &key)
            .map(|v| v.is_some())
            .map_err(wasi_kv::Error::Other))
    }

    /// All keys in one page, as Spin's SQLite store answers.
    fn list_keys(
        &mut self,
        this: Resource<Store>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        let s = self.kv_store(&this)?;
        Ok(s.file
            .keys(&s.label)
            .map(|keys| wasi_kv::KeyResponse { keys, cursor: None })
            .map_err(wasi_kv::Error::Other))
    }

    fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        bucket: Resource<Store>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        let s = self.kv_store(&bucket)?;
        Ok(s.file
            .increment(&s.label, &key, delta)
            .map_err(wasi_kv::Error::Other))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        match cas
            .file
            .swap(&cas.label, &cas.key, cas.current.as_deref(), &value)
        {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(current)) => {
                let fresh = self.table.push(Cas { current, ..cas })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Err(err) => Ok(Err(atomics::CasError::StoreError(wasi_kv::Error::Other(
                err,
            )))),
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wasi_kv::Error>> {
        let s = self.kv_store(&bucket)?;
        let (file, label) = (Arc::clone(&s.file), s.label.clone());
        match file.get(&label, &key) {
            Ok(current) => Ok(Ok(self.table.push(Cas {
                file,
                label,
                key,
                current,
            })?)),
            Err(err) => Ok(Err(wasi_kv::Error::Other(err))),
        }
    }

    fn current(
        &mut self,
        this: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        Ok(Ok(self.table.get(&this)?.current.clone()))
    }

    fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_kv::Error>> {
        let s = self.kv_store(&bucket)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match s.file.get(&s.label, &key) {
                Ok(value) => out.push((key, value)),
                Err(err) => return Ok(Err(wasi_kv::Error::Other(err))),
            }
        }
        Ok(Ok(out))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Store>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let s = self.kv_store(&bucket)?;
        for (key, value) in key_values {
            if let Err(err) = s.file.set(&s.label, &key, &value) {
                return Ok(Err(wasi_kv::Error::Other(err)));
            }
        }
        Ok(Ok(()))
    }

    fn delete_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let s = self.kv_store(&bucket)?;
        for key in keys {
            if let Err(err) = s.file.delete(&s.label, &key) {
                return Ok(Err(wasi_kv::Error::Other(err)));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (tempfile::TempDir, Arc<KeyValueFile>) {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyValueFile::open(&dir.path().join("kv.db")).unwrap();
        (dir, file)
    }

    #[test]
    fn counters_start_at_zero_and_are_stored_as_eight_little_endian_bytes() {
        let (_dir, f) = file();
        assert_eq!(f.increment("default", "c", 1), Ok(1));
        assert_eq!(f.increment("default", "c", 5), Ok(6));
        assert_eq!(f.get("default", "c"), Ok(Some(6i64.to_le_bytes().to_vec())));
        assert_eq!(f.increment("other", "c", -2), Ok(-2));
    }

    #[test]
    fn incrementing_a_value_that_is_not_a_counter_fails_and_keeps_it() {
        let (_dir, f) = file();
        f.set("default", "s", b"text").unwrap();
        assert!(f.increment("default", "s", 1).is_err());
        assert_eq!(f.get("default", "s"), Ok(Some(b"text".to_vec())));
    }

    #[test]
    fn concurrent_increments_from_two_connections_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let files = [
            KeyValueFile::open(&path).unwrap(),
            KeyValueFile::open(&path).unwrap(),
        ];
        std::thread::scope(|scope| {
            for f in &files {
                scope.spawn(move || {
                    for _ in 0..200 {
                        f.increment("default", "n", 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(files[0].increment("default", "n", 0), Ok(400));
    }

    #[test]
    fn swap_applies_only_if_the_value_is_unchanged() {
        let (_dir, f) = file();
        assert_eq!(f.swap("default", "k", None, b"a"), Ok(Ok(())));
        assert_eq!(
            f.swap("default", "k", None, b"b"),
            Ok(Err(Some(b"a".to_vec())))
        );
        assert_eq!(f.swap("default", "k", Some(b"a"), b"c"), Ok(Ok(())));
        assert_eq!(f.get("default", "k"), Ok(Some(b"c".to_vec())));
    }

    #[test]
    fn stores_are_separate_and_keys_are_listed_per_store() {
        let (_dir, f) = file();
        f.set("default", "a", b"1").unwrap();
        f.set("other", "b", b"2").unwrap();
        assert_eq!(f.keys("default"), Ok(vec!["a".to_owned()]));
        f.delete("default", "a").unwrap();
        f.delete("default", "absent").unwrap();
        assert_eq!(f.get("default", "a"), Ok(None));
    }

    #[test]
    fn a_store_not_granted_is_access_denied_and_an_unknown_one_no_such_store() {
        let (_dir, f) = file();
        let mut stores = KeyValueStores::default();
        stores.insert("default".into(), f);
        let access = KeyValueAccess::new(
            Arc::new(stores),
            Arc::from(vec!["default".to_owned(), "ghost".to_owned()]),
        );
        assert!(access.open("default").is_ok());
        assert!(matches!(
            access.open("private"),
            Err(OpenError::AccessDenied)
        ));
        assert!(matches!(access.open("ghost"), Err(OpenError::NoSuchStore)));
    }
}
