//! Fixed-window rate limiting over key-value counters.
//!
//! A window's counter is its own key, `rate-limit:<window>:<start>:<client>`, and only ever
//! changes by `wasi:keyvalue/atomics.increment`: Spin's stores keep such a counter as an
//! 8-byte little-endian integer, and one increment is one atomic read-modify-write, so
//! concurrent requests each see a distinct count and exactly `limit` of them pass.

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::config;
use crate::exports::inventory::guard::rate_limit::{Decision, RateLimitError};

/// The key-value store the counters live in.
const STORE: &str = "default";
const PREFIX: &str = "rate-limit";

pub fn check(client: &str) -> Result<Decision, RateLimitError> {
    let limit = config::positive("rate_limit_requests").map_err(RateLimitError::Misconfigured)?;
    let window =
        config::positive("rate_limit_window_seconds").map_err(RateLimitError::Misconfigured)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| RateLimitError::Store(format!("the clock is before 1970: {err}")))?
        .as_secs();
    let start = now - now % window;
    let bucket = store::open(STORE).map_err(store_error)?;
    let count = atomics::increment(&bucket, &key(window, start, client), 1).map_err(store_error)?;
    if count == 1 {
        // The first request of a window retires the client's previous counter, so the store
        // holds about one key per active client. Failing to delete costs only space.
        let _ = bucket.delete(&key(window, start.saturating_sub(window), client));
    }
    // A count below 1 means someone wrote the counter by other means: refuse, never pass.
    let count = u64::try_from(count)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| RateLimitError::Store(format!("the counter for {client:?} is {count}")))?;
    Ok(Decision {
        allowed: count <= limit,
        limit,
        remaining: limit.saturating_sub(count),
        reset: start + window - now,
        window,
    })
}

fn key(window: u64, start: u64, client: &str) -> String {
    format!("{PREFIX}:{window}:{start}:{client}")
}

fn store_error(err: store::Error) -> RateLimitError {
    RateLimitError::Store(match err {
        store::Error::NoSuchStore => format!("no key-value store `{STORE}`"),
        store::Error::AccessDenied => format!(
            "access to the key-value store `{STORE}` is denied; list it in the component's \
             `key_value_stores`"
        ),
        store::Error::Other(text) => text,
    })
}
