//! Host bindings for the Spin interfaces in `wit/`. Every import is async on the host side:
//! storage calls block (disk, locks), so they run on the blocking pool (`blocking`) and the
//! async workers that accept and route connections never wait for them.

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-subset",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
        "fermyon:spin/key-value.store": crate::key_value::Store,
        "wasi:keyvalue/store.bucket": crate::key_value::Store,
        "wasi:keyvalue/atomics.cas": crate::key_value::Cas,
    },
});

/// Runs blocking work (SQLite, a key-value file) on tokio's blocking pool and waits for it
/// without holding an async worker.
pub async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> wasmtime::Result<R> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| wasmtime::format_err!("a storage call failed: {err}"))
}
