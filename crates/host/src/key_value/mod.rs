//! Spin's key-value interfaces, as Spin's `factor-key-value` serves them: the storage behind
//! a label is a [`Backend`] (`sqlite.rs`: Spin's local file layout; `redis.rs`: a Redis
//! server), chosen by `[key_value_store.<label>]` (`config.rs`); a component opens the labels
//! its `key_value_stores` lists (`access-denied` for the others). The guest interfaces
//! (`spin.rs`: `fermyon:spin/key-value@2.0.0`; `spin3.rs`: `spin:key-value/key-value@3.0.0`, WASI 0.3's
//! async one; `wasi.rs`: `wasi:keyvalue/{store,atomics,batch}
//! @0.2.0-draft2`) share one implementation of opening and using a store, here, and keep
//! their open stores in the instance's own resource table.

mod backend;
mod config;
mod redis;
mod spin;
mod spin3;
mod sqlite;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::blocking::blocking;
use crate::factor::AppContext;
use crate::labels::{Opened, Refused, StoreFactor, Stores};
use crate::manifest::Component;
use crate::runtime_config::Location;
use backend::{Backend, KvResult};
use config::StoreConfig;
use redis::RedisKeyValue;
use sqlite::SqliteKeyValue;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "key-value",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::key_value::Store,
            "spin:key-value/key-value.store": crate::key_value::Store,
            "wasi:keyvalue/store.bucket": crate::key_value::Store,
            "wasi:keyvalue/atomics.cas": crate::key_value::Cas,
        },
    });
}

/// Why a key-value operation failed, before each interface names it in its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The component did not list the store in `key_value_stores`.
    AccessDenied,
    /// The component lists it, but the app defines no such store.
    NoSuchStore,
    /// A local file's write lock is held by another process: try again (see `call`).
    Busy,
    Other(String),
}

/// How long a call waits for another process to let go of a local file's write lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `work` on `store`. A local file answers in microseconds, so the call runs where it
/// is, with no hand-off to another thread (measured: the hand-offs were a sixth of the
/// host's time under load); only if another process holds the file's write lock does it
/// go, like every Redis call, to the blocking pool, to wait there.
async fn call<R: Send + 'static>(
    store: Arc<dyn Backend>,
    work: impl Fn(&dyn Backend) -> KvResult<R> + Send + 'static,
) -> wasmtime::Result<KvResult<R>> {
    if store.is_local() {
        match work(&*store) {
            Err(KvError::Busy) => {}
            done => return Ok(done),
        }
    }
    blocking(move || waiting(|| work(&*store))).await
}

/// `work`, tried again every millisecond while another process holds the write lock, for
/// `LOCK_WAIT`.
pub fn waiting<R>(work: impl Fn() -> KvResult<R>) -> KvResult<R> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match work() {
            Err(KvError::Busy) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(KvError::Busy) => {
                return Err(KvError::Other(format!(
                    "the key-value store stayed locked by another process for {LOCK_WAIT:?}"
                )))
            }
            done => return done,
        }
    }
}

pub struct KeyValueFactor;

/// The app's stores by label.
pub type AppState = Stores<StoreConfig, Arc<dyn Backend>>;

/// One instance's grant and its open stores.
pub type InstanceState = Opened<Arc<dyn Backend>>;

impl StoreFactor for KeyValueFactor {
    type Config = StoreConfig;
    type Store = Arc<dyn Backend>;

    const RUNTIME_CONFIG_KEYS: &'static [&'static str] = &[config::KEY];

    /// Opens the stores the components use. Labels that share a file share one connection,
    /// labels that share a Redis URL one pool; those `previous` has open where they are still
    /// configured the same are kept.
    fn open(ctx: &AppContext<'_>, previous: Option<&AppState>) -> Result<AppState> {
        let undefined = |label: &str| {
            anyhow!(
                "unknown key_value_stores label `{label}`: only `default` exists without \
                 configuration; define `[key_value_store.{label}]` in a runtime config file \
                 (--runtime-config-file)"
            )
        };
        let configured = config::stores(ctx.runtime_config)?;
        let mut opener = Opener::default();
        Stores::open(
            used_labels(ctx),
            &configured,
            previous,
            undefined,
            |label, config| opener.open(label, config),
        )
    }

    fn granted(component: &Component) -> &[String] {
        &component.key_value_stores
    }
}

/// Links both generations of the interfaces, on the state `get` projects to.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    bindings::KeyValue::add_to_linker::<T, HasSelf<InstanceState>>(linker, get)
        .map_err(anyhow::Error::from)
}

/// Every label a component lists, once each, in order.
fn used_labels(ctx: &AppContext<'_>) -> Vec<String> {
    let mut labels: Vec<String> = ctx
        .manifest
        .manifest
        .component
        .values()
        .flat_map(|c| c.key_value_stores.iter().cloned())
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Opens stores, each file and each Redis server once however many labels use it.
#[derive(Default)]
struct Opener {
    files: Vec<(PathBuf, Arc<SqliteKeyValue>)>,
    servers: Vec<(String, Arc<RedisKeyValue>)>,
}

impl Opener {
    fn open(&mut self, label: &str, config: &StoreConfig) -> Result<Arc<dyn Backend>> {
        Ok(match config {
            StoreConfig::Spin(Location::File(path)) => self.file(label, path)?.store(label),
            StoreConfig::Spin(Location::Memory) => {
                eprintln!(
                    "Storing key-value data of `{label}` in memory: it is gone when the host stops."
                );
                SqliteKeyValue::open_in_memory()?.store(label)
            }
            StoreConfig::Redis { url } => {
                let server = self.server(url)?;
                eprintln!(
                    "Storing key-value data of `{label}` in {}.",
                    server.summary()
                );
                server
            }
        })
    }

    fn file(&mut self, label: &str, path: &std::path::Path) -> Result<Arc<SqliteKeyValue>> {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some((_, file)) = self.files.iter().find(|(p, _)| *p == shown) {
            return Ok(Arc::clone(file));
        }
        if label == "default" {
            eprintln!("Storing default key-value data to {shown:?}.");
        }
        let file = SqliteKeyValue::open(path)?;
        self.files.push((shown, Arc::clone(&file)));
        Ok(file)
    }

    fn server(&mut self, url: &str) -> Result<Arc<RedisKeyValue>> {
        if let Some((_, server)) = self.servers.iter().find(|(u, _)| u == url) {
            return Ok(Arc::clone(server));
        }
        let server = Arc::new(RedisKeyValue::new(url)?);
        self.servers.push((url.to_owned(), Arc::clone(&server)));
        Ok(server)
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
            let store = self.backend(&this)?;
            Ok($crate::key_value::call(store, move |s| s.get(&key))
                .await?
                .map_err(Into::into))
        }

        async fn set(
            &mut self,
            this: Resource<Store>,
            key: String,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), $error>> {
            let store = self.backend(&this)?;
            Ok($crate::key_value::call(store, move |s| s.set(&key, &value))
                .await?
                .map_err(Into::into))
        }

        async fn delete(
            &mut self,
            this: Resource<Store>,
            key: String,
        ) -> wasmtime::Result<Result<(), $error>> {
            let store = self.backend(&this)?;
            Ok($crate::key_value::call(store, move |s| s.delete(&key))
                .await?
                .map_err(Into::into))
        }

        async fn exists(
            &mut self,
            this: Resource<Store>,
            key: String,
        ) -> wasmtime::Result<Result<bool, $error>> {
            let store = self.backend(&this)?;
            Ok($crate::key_value::call(store, move |s| s.exists(&key))
                .await?
                .map_err(Into::into))
        }

        async fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
            self.table.delete(this)?;
            Ok(())
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
                    KvError::Busy => Self::Other("the key-value store is locked".to_owned()),
                    KvError::Other(text) => Self::Other(text),
                }
            }
        }
    };
}
use error_from_kv;

/// The operations both interface generations expose, written once.
impl InstanceState {
    fn open_store(&mut self, label: &str) -> wasmtime::Result<KvResult<Resource<Store>>> {
        Ok(match self.grant.open(label) {
            Ok(backend) => Ok(self.table.push(Store(backend))?),
            Err(Refused::AccessDenied) => Err(KvError::AccessDenied),
            Err(Refused::NoSuchStore) => Err(KvError::NoSuchStore),
        })
    }

    /// The backend of an open store, to call (`call`).
    fn backend(&self, handle: &Resource<Store>) -> wasmtime::Result<Arc<dyn Backend>> {
        Ok(Arc::clone(&self.table.get(handle)?.0))
    }

    async fn read_for_swap(
        &mut self,
        handle: &Resource<Store>,
        key: String,
    ) -> wasmtime::Result<KvResult<Resource<Cas>>> {
        let store = self.backend(handle)?;
        let read = {
            let key = key.clone();
            call(Arc::clone(&store), move |s| s.get(&key)).await?
        };
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
    async fn swap_if_unchanged(
        &mut self,
        handle: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<KvResult<Result<(), Resource<Cas>>>> {
        let cas = self.table.delete(handle)?;
        let swapped = {
            let (key, current) = (cas.key.clone(), cas.current.clone());
            call(Arc::clone(&cas.store), move |s| {
                s.swap(&key, current.as_deref(), &value)
            })
            .await?
        };
        Ok(match swapped {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(current)) => Ok(Err(self.table.push(Cas { current, ..cas })?)),
            Err(err) => Err(err),
        })
    }
}
