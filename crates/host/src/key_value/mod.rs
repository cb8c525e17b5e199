//! Spin's key-value stores, split as Spin splits them: the storage behind a label is a
//! [`Backend`] (`sqlite.rs`: Spin's local file layout; `redis.rs`: a Redis server), and the
//! guest interfaces (`spin.rs`:
//! `fermyon:spin/key-value@2.0.0`; `wasi.rs`: `wasi:keyvalue/{store,atomics,batch}
//! @0.2.0-draft2`) share one implementation of opening and using a store, here.

mod backend;
mod redis;
mod spin;
mod sqlite;
mod wasi;

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;

use crate::bindings::blocking;
use crate::state::HostState;

pub use backend::{Backend, KvResult};
pub use redis::RedisKeyValue;
pub use sqlite::SqliteKeyValue;

/// Why a key-value operation failed, before each interface names it in its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The component did not list the store in `key_value_stores`.
    AccessDenied,
    /// The component lists it, but the app defines no such store.
    NoSuchStore,
    Other(String),
}

/// The app's stores, by label.
#[derive(Default)]
pub struct KeyValueStores {
    by_label: HashMap<String, Arc<dyn Backend>>,
}

impl KeyValueStores {
    pub fn insert(&mut self, label: String, backend: Arc<dyn Backend>) {
        self.by_label.insert(label, backend);
    }

    pub fn get(&self, label: &str) -> Option<Arc<dyn Backend>> {
        self.by_label.get(label).map(Arc::clone)
    }
}

/// What one component instance may open.
#[derive(Clone, Default)]
pub struct KeyValueAccess {
    stores: Arc<KeyValueStores>,
    granted: Arc<[String]>,
}

impl KeyValueAccess {
    pub fn new(stores: Arc<KeyValueStores>, granted: Arc<[String]>) -> Self {
        Self { stores, granted }
    }

    fn open(&self, label: &str) -> KvResult<Store> {
        if !self.granted.iter().any(|g| g == label) {
            return Err(KvError::AccessDenied);
        }
        let backend = self
            .stores
            .by_label
            .get(label)
            .ok_or(KvError::NoSuchStore)?;
        Ok(Store(Arc::clone(backend)))
    }
}

/// An open store: the guest's `store` (Spin 2) or `bucket` (wasi:keyvalue).
pub struct Store(Arc<dyn Backend>);

/// A value read for a later compare-and-swap (`wasi:keyvalue/atomics.cas`).
pub struct Cas {
    store: Arc<dyn Backend>,
    key: String,
    current: Option<Vec<u8>>,
}

/// The methods both generations' store resources have (Spin 2's `store`, wasi:keyvalue's
/// `bucket`), forwarded to the backend; `$error` is the generation's error type.
macro_rules! store_methods {
    ($error:ty) => {
        async fn get(
            &mut self,
            this: Resource<Store>,
            key: String,
        ) -> wasmtime::Result<Result<Option<Vec<u8>>, $error>> {
            let store = self.kv_store(&this)?;
            Ok(blocking(move || store.get(&key)).await?.map_err(Into::into))
        }

        async fn set(
            &mut self,
            this: Resource<Store>,
            key: String,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), $error>> {
            let store = self.kv_store(&this)?;
            Ok(blocking(move || store.set(&key, &value))
                .await?
                .map_err(Into::into))
        }

        async fn delete(
            &mut self,
            this: Resource<Store>,
            key: String,
        ) -> wasmtime::Result<Result<(), $error>> {
            let store = self.kv_store(&this)?;
            Ok(blocking(move || store.delete(&key))
                .await?
                .map_err(Into::into))
        }

        async fn exists(
            &mut self,
            this: Resource<Store>,
            key: String,
        ) -> wasmtime::Result<Result<bool, $error>> {
            let store = self.kv_store(&this)?;
            Ok(blocking(move || store.exists(&key))
                .await?
                .map_err(Into::into))
        }

        async fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
            self.kv_drop(this)
        }
    };
}
use store_methods;

/// Both generations name the same three failures in their own `error` variant.
macro_rules! error_from_kv {
    ($error:ty) => {
        impl From<KvError> for $error {
            fn from(err: KvError) -> Self {
                match err {
                    KvError::AccessDenied => Self::AccessDenied,
                    KvError::NoSuchStore => Self::NoSuchStore,
                    KvError::Other(text) => Self::Other(text),
                }
            }
        }
    };
}
use error_from_kv;

/// The operations both interface generations expose, written once.
impl HostState {
    fn kv_open(&mut self, label: &str) -> wasmtime::Result<KvResult<Resource<Store>>> {
        Ok(match self.key_value.open(label) {
            Ok(store) => Ok(self.table.push(store)?),
            Err(err) => Err(err),
        })
    }

    /// The backend of an open store, to use on the blocking pool.
    fn kv_store(&self, handle: &Resource<Store>) -> wasmtime::Result<Arc<dyn Backend>> {
        Ok(Arc::clone(&self.table.get(handle)?.0))
    }

    fn kv_drop(&mut self, handle: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }

    async fn kv_cas_new(
        &mut self,
        handle: &Resource<Store>,
        key: String,
    ) -> wasmtime::Result<KvResult<Resource<Cas>>> {
        let store = self.kv_store(handle)?;
        let (store, key, read) = blocking(move || {
            let read = store.get(&key);
            (store, key, read)
        })
        .await?;
        Ok(match read {
            Ok(current) => Ok(self.table.push(Cas {
                store,
                key,
                current,
            })?),
            Err(err) => Err(err),
        })
    }

    /// Swaps if unchanged; otherwise a fresh `Cas` holding what the key holds now.
    async fn kv_cas_swap(
        &mut self,
        handle: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<KvResult<Result<(), Resource<Cas>>>> {
        let cas = self.table.delete(handle)?;
        let (cas, swapped) = blocking(move || {
            let swapped = cas.store.swap(&cas.key, cas.current.as_deref(), &value);
            (cas, swapped)
        })
        .await?;
        Ok(match swapped {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(current)) => Ok(Err(self.table.push(Cas { current, ..cas })?)),
            Err(err) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_not_granted_is_access_denied_and_an_unknown_one_no_such_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteKeyValue::open(&dir.path().join("kv.db")).unwrap();
        let mut stores = KeyValueStores::default();
        stores.insert("default".into(), file.store("default"));
        let access = KeyValueAccess::new(
            Arc::new(stores),
            Arc::from(vec!["default".to_owned(), "ghost".to_owned()]),
        );
        assert!(access.open("default").is_ok());
        assert_eq!(access.open("private").err(), Some(KvError::AccessDenied));
        assert_eq!(access.open("ghost").err(), Some(KvError::NoSuchStore));
    }
}
