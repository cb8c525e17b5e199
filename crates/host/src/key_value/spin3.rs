//! `spin:key-value/key-value@3.0.0`, which WASI 0.3 guests import: every function is async
//! and runs with the store let go, so the instance's other requests run while one waits
//! for its store. On the shared implementation in `mod.rs`.

use wasmtime::component::{Accessor, FutureReader, HasSelf, Resource, StreamReader};

use super::bindings::spin::key_value::key_value::{self as v3, Error};
use super::{call, InstanceState, KvError, Store};

super::error_from_kv!(Error);

impl v3::Host for InstanceState {}

impl v3::HostStore for InstanceState {
    async fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Runs `work` on the backend of the open store `this`, away from the store.
async fn on_backend<U, R: Send + 'static>(
    accessor: &Accessor<U, HasSelf<InstanceState>>,
    this: &Resource<Store>,
    work: impl Fn(&dyn super::Backend) -> super::KvResult<R> + Send + 'static,
) -> wasmtime::Result<Result<R, Error>> {
    let store = accessor.with(|mut access| access.get().backend(this))?;
    Ok(call(store, work).await?.map_err(Into::into))
}

impl<U> v3::HostStoreWithStore<U> for HasSelf<InstanceState> {
    async fn open(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        accessor.with(|mut access| Ok(access.get().open_store(&label)?.map_err(Into::into)))
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        on_backend(accessor, &this, move |s| s.get(&key)).await
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        this: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        on_backend(accessor, &this, move |s| s.set(&key, &value)).await
    }

    async fn delete(
        accessor: &Accessor<U, Self>,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        on_backend(accessor, &this, move |s| s.delete(&key)).await
    }

    async fn exists(
        accessor: &Accessor<U, Self>,
        this: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        on_backend(accessor, &this, move |s| s.exists(&key)).await
    }

    /// The keys, read at once, streamed to the guest; the future says whether reading
    /// them failed. (A plain `fn` returning a future: as an `async fn`, rustc 1.95 asks the
    /// instance state to outlive `'static` through its `dyn Backend`, E0477.)
    #[allow(clippy::manual_async_fn)]
    fn get_keys(
        accessor: &Accessor<U, Self>,
        this: Resource<Store>,
    ) -> impl std::future::Future<
        Output = wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)>,
    > + Send {
        async move {
            let store = accessor.with(|mut access| access.get().backend(&this))?;
            let (keys, outcome) = match call(store, |s| s.keys()).await? {
                Ok(keys) => (keys, Ok(())),
                Err(err) => (Vec::new(), Err(Error::from(err))),
            };
            accessor.with(|mut access| {
                let keys = StreamReader::new(&mut access, keys)?;
                let outcome = std::future::ready(Ok::<_, wasmtime::Error>(outcome));
                Ok((keys, FutureReader::new(&mut access, outcome)?))
            })
        }
    }
}
