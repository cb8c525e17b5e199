//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`, on the shared implementation in
//! `mod.rs`.

use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::InstanceState;
use super::{call, Cas, KvError, Store};

use store::Error;

super::error_from_kv!(Error);

impl store::Host for InstanceState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        Ok(self.open_store(&identifier)?.map_err(Into::into))
    }
}

impl store::HostBucket for InstanceState {
    super::store_methods!(Error);

    /// All keys in one page, as Spin's SQLite store answers.
    async fn list_keys(
        &mut self,
        this: Resource<Store>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, Error>> {
        let store = self.backend(&this)?;
        Ok(call(store, |s| s.keys())
            .await?
            .map(|keys| store::KeyResponse { keys, cursor: None })
            .map_err(Into::into))
    }
}

impl atomics::Host for InstanceState {
    async fn increment(
        &mut self,
        bucket: Resource<Store>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let store = self.backend(&bucket)?;
        Ok(call(store, move |s| s.increment(&key, delta))
            .await?
            .map_err(Into::into))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        Ok(match self.swap_if_unchanged(cas, value).await? {
            Ok(Ok(())) => Ok(()),
            Ok(Err(fresh)) => Err(atomics::CasError::CasFailed(fresh)),
            Err(err) => Err(atomics::CasError::StoreError(err.into())),
        })
    }
}

impl atomics::HostCas for InstanceState {
    async fn new(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        Ok(self.read_for_swap(&bucket, key).await?.map_err(Into::into))
    }

    async fn current(
        &mut self,
        this: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&this)?.current.clone()))
    }

    async fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for InstanceState {
    async fn get_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let store = self.backend(&bucket)?;
        let values = call(store, move |s| {
            keys.iter()
                .map(|key| s.get(key).map(|value| (key.clone(), value)))
                .collect::<Result<_, _>>()
        })
        .await?;
        Ok(values.map_err(Into::into))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Store>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.backend(&bucket)?;
        let done = call(store, move |s| {
            key_values
                .iter()
                .try_for_each(|(key, value)| s.set(key, value))
        })
        .await?;
        Ok(done.map_err(Into::into))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.backend(&bucket)?;
        let done = call(store, move |s| {
            keys.iter().try_for_each(|key| s.delete(key))
        })
        .await?;
        Ok(done.map_err(Into::into))
    }
}
