//! Blocking work (SQLite, a key-value file, a Redis round trip) off the async workers.

/// Runs `work` on tokio's blocking pool and waits for it without holding an async worker,
/// so the workers that accept and route connections never wait on storage.
pub async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> wasmtime::Result<R> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| wasmtime::format_err!("a storage call failed: {err}"))
}
