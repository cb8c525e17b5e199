//! Fixed-window rate limiting over key-value counters.
//!
//! A window's counter is its own key, `rate-limit:<window>:<start>:<client>`, and only ever
//! changes by `wasi:keyvalue/atomics.increment`: one increment is one atomic read-modify-write
//! in every Spin store (on Redis, `INCRBY`, shared by every replica), so concurrent requests
//! each see a distinct count and exactly `limit` of them pass.
//!
//! Counters do not pile up. A client's first request of a window (count 1) registers its
//! counter in the window's index, and sweeps a few counters of the oldest window that is
//! over (the index of windows is in the order they began): bounded work on the requests that
//! already write, no listing of keys, and the store holds about the counters of the last two
//! windows' clients, not of every client ever seen. Every claim on an index entry is an
//! atomic increment, so concurrent sweepers never take the same entry, and exactly one of
//! them retires a finished window.

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::config;
use crate::exports::inventory::guard::rate_limit::{Decision, RateLimitError};

/// The key-value store the counters live in.
const STORE: &str = "default";
const PREFIX: &str = "rate-limit";
/// Counters of old windows swept per first request of a client in a window.
const SWEEP_PER_FIRST_REQUEST: usize = 2;

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
        // Failing to keep the store small costs only space: never refuse a request for it.
        let counters = Counters {
            bucket: &bucket,
            window,
        };
        let _ = counters.register(start, client);
        let _ = bucket.delete(&key(window, start.saturating_sub(window), client));
        let _ = counters.sweep(start);
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

/// The index of counters, for one window length.
struct Counters<'a> {
    bucket: &'a store::Bucket,
    window: u64,
}

impl Counters<'_> {
    /// `rate-limit-windows:<window>:<name>`: `n` windows begun, `done` retired, `<j>` the
    /// start of the j-th.
    fn windows(&self, name: &str) -> String {
        format!("{PREFIX}-windows:{}:{name}", self.window)
    }

    /// `rate-limit-clients:<window>:<start>:<name>`: `n` clients registered, `swept` how many
    /// of them were claimed by sweepers, `<i>` the i-th client.
    fn clients(&self, start: u64, name: &str) -> String {
        format!("{PREFIX}-clients:{}:{start}:{name}", self.window)
    }

    fn add(&self, key: &str, delta: i64) -> Result<i64, store::Error> {
        atomics::increment(self.bucket, key, delta)
    }

    /// A counter's value; absent is 0.
    fn number(&self, key: &str) -> Result<i64, store::Error> {
        self.add(key, 0)
    }

    fn text(&self, key: &str) -> Result<Option<String>, store::Error> {
        Ok(self
            .bucket
            .get(key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Notes `client`'s counter of the window at `start`; the window's first client also
    /// notes the window.
    fn register(&self, start: u64, client: &str) -> Result<(), store::Error> {
        let i = self.add(&self.clients(start, "n"), 1)?;
        self.bucket
            .set(&self.clients(start, &i.to_string()), client.as_bytes())?;
        if i == 1 {
            let j = self.add(&self.windows("n"), 1)?;
            self.bucket
                .set(&self.windows(&j.to_string()), start.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// Deletes up to `SWEEP_PER_FIRST_REQUEST` counters of the oldest window that is over
    /// (neither the current window, at `now_start`, nor the one before it).
    fn sweep(&self, now_start: u64) -> Result<(), store::Error> {
        let mut steps = 0;
        while steps < SWEEP_PER_FIRST_REQUEST {
            let next = self.number(&self.windows("done"))? + 1;
            let Some(start) = self
                .text(&self.windows(&next.to_string()))?
                .and_then(|s| s.parse::<u64>().ok())
            else {
                return Ok(());
            };
            if start + self.window >= now_start {
                return Ok(());
            }
            let claimed = self.add(&self.clients(start, "swept"), 1)?;
            let registered = self.number(&self.clients(start, "n"))?;
            if registered == 0 {
                // Retired meanwhile by another sweeper (a window has at least one client):
                // drop the claim this one just made, and the count its read re-created
                // (reading is an increment by 0), and stop.
                self.bucket.delete(&self.clients(start, "swept"))?;
                self.bucket.delete(&self.clients(start, "n"))?;
                return Ok(());
            }
            if claimed <= registered {
                let entry = self.clients(start, &claimed.to_string());
                if let Some(client) = self.text(&entry)? {
                    self.bucket.delete(&key(self.window, start, &client))?;
                }
                self.bucket.delete(&entry)?;
                steps += 1;
            } else if claimed == registered + 1 {
                // This sweeper took the window past its last entry: it retires the window,
                // its entry first, so that no other sweeper starts on it again.
                self.bucket.delete(&self.windows(&next.to_string()))?;
                self.bucket.delete(&self.clients(start, "n"))?;
                self.bucket.delete(&self.clients(start, "swept"))?;
                self.add(&self.windows("done"), 1)?;
            } else {
                // Another sweeper is retiring it.
                return Ok(());
            }
        }
        Ok(())
    }
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
