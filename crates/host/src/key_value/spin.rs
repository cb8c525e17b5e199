//! `fermyon:spin/key-value@2.0.0`, on the shared implementation in `mod.rs`.

use wasmtime::component::Resource;

use super::bindings::fermyon::spin::key_value::{self as v2, Error};
use super::InstanceState;
use super::{call, KvError, Store};

super::error_from_kv!(Error);

impl v2::Host for InstanceState {}

impl v2::HostStore for InstanceState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        Ok(self.open_store(&label)?.map_err(Into::into))
    }

    super::store_methods!(Error);

    async fn get_keys(
        &mut self,
        this: Resource<Store>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.backend(&this)?;
        Ok(call(store, |s| s.keys()).await?.map_err(Into::into))
    }
}
