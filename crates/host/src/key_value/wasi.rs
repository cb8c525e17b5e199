//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`, on the shared implementation in
//! `mod.rs`.

use wasmtime::component::Resource;

use super::{Cas, KvError, Store};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::state::HostState;

use store::Error;

super::error_from_kv!(Error);

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        Ok(self.kv_open(&identifier)?.map_err(Into::into))
    }
}

impl store::HostBucket for HostState {
    super::store_methods!(Error);

    /// All keys in one page, as Spin's SQLite store answers.
    fn list_keys(
        &mut self,
        this: Resource<Store>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, Error>> {
        Ok(self
            .kv_store(&this)?
            .keys()
            .map(|keys| store::KeyResponse { keys, cursor: None })
            .map_err(Into::into))
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        bucket: Resource<Store>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        Ok(self
            .kv_store(&bucket)?
            .increment(&key, delta)
            .map_err(Into::into))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        Ok(match self.kv_cas_swap(cas, value)? {
            Ok(Ok(())) => Ok(()),
            Ok(Err(fresh)) => Err(atomics::CasError::CasFailed(fresh)),
            Err(err) => Err(atomics::CasError::StoreError(err.into())),
        })
    }
}

impl atomics::HostCas for HostState {
    fn new(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        Ok(self.kv_cas_new(&bucket, key)?.map_err(Into::into))
    }

    fn current(&mut self, this: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
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
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let store = self.kv_store(&bucket)?;
        Ok(keys
            .into_iter()
            .map(|key| store.get(&key).map(|value| (key, value)))
            .collect::<Result<_, _>>()
            .map_err(Into::into))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Store>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.kv_store(&bucket)?;
        Ok(key_values
            .iter()
            .try_for_each(|(key, value)| store.set(key, value))
            .map_err(Into::into))
    }

    fn delete_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.kv_store(&bucket)?;
        Ok(keys
            .iter()
            .try_for_each(|key| store.delete(key))
            .map_err(Into::into))
    }
}
