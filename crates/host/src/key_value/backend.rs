//! The storage behind a key-value store label. Spin's semantics, whatever the backend:
//! `increment` is one atomic read-modify-write of a counter (absent is 0) kept in the
//! backend's own form, as Spin keeps it (the file store: 8-byte little-endian; Redis:
//! `INCRBY`'s decimal text), and `swap` applies only if the value is still what was read.

use super::KvError;

pub type KvResult<T> = Result<T, KvError>;

/// One store (a label), already bound to where its data lives.
pub trait Backend: Send + Sync {
    /// Whether calls answer in microseconds on the calling thread (a local file), so they
    /// may run where they are, with no hand-off to the blocking pool.
    fn is_local(&self) -> bool {
        false
    }
    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> KvResult<()>;
    /// Deleting an absent key is not an error.
    fn delete(&self, key: &str) -> KvResult<()>;
    fn exists(&self, key: &str) -> KvResult<bool> {
        self.get(key).map(|value| value.is_some())
    }
    fn keys(&self) -> KvResult<Vec<String>>;
    /// Adds `delta` to the counter at `key` and returns the new value.
    fn increment(&self, key: &str, delta: i64) -> KvResult<i64>;
    /// Sets `key` to `value` if it still holds `expected`; otherwise returns what it holds.
    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> KvResult<Result<(), Option<Vec<u8>>>>;
}
