//! `fermyon:spin/key-value@2.0.0`, on the shared implementation in `mod.rs`.

use wasmtime::component::Resource;

use super::{KvError, Store};
use crate::bindings::blocking;
use crate::bindings::fermyon::spin::key_value::{self as v2, Error};
use crate::state::HostState;

super::error_from_kv!(Error);

impl v2::Host for HostState {}

impl v2::HostStore for HostState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        Ok(self.kv_open(&label)?.map_err(Into::into))
    }

    super::store_methods!(Error);

    async fn get_keys(
        &mut self,
        this: Resource<Store>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.kv_store(&this)?;
        Ok(blocking(move || store.keys()).await?.map_err(Into::into))
    }
}
