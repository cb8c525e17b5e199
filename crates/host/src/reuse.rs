//! WASI 0.3 components (`wasi:http/handler@0.3.x`): one instance serves many requests, some
//! at once, as Spin 4 serves them (`crates/trigger-http`, on Wasmtime's `handler` module):
//! an instance takes up to `--max-instance-reuse-count` requests in all and
//! `--max-instance-concurrent-reuse-count` at once, and is dropped after
//! `--idle-instance-timeout` without one. Each limit may be a range (`1..8`, `500ms..2s`),
//! sampled once per instance.
//!
//! Beyond Spin, which stops only single-use instances that run past their deadline: a
//! request that runs past `--request-timeout` on a reused instance, or loops, is stopped
//! too. Its instance yields to the host at every epoch tick, so the host can drop it; the
//! instance's other requests in flight are answered 503 with `Retry-After`, and their
//! transactions roll back as their connections close. An instance whose memory grew past
//! `--instance-memory-retire-mib` takes no more requests once its current ones end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::WasiHttpView;

use crate::factor::Chain;
use crate::factors::{ComponentStates, InstanceState};
use crate::metrics::{self, Phase, Retired};

/// A limit given as one value or a half-open range `a..b`, sampled for each instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range<T> {
    Value(T),
    Between(T, T),
}

impl<T: Copy + PartialOrd + std::fmt::Debug> Range<T> {
    fn parse(text: &str, value: impl Fn(&str) -> Result<T>) -> Result<Self> {
        let Some((low, high)) = text.split_once("..") else {
            return Ok(Self::Value(value(text.trim())?));
        };
        let (low, high) = (value(low.trim())?, value(high.trim())?);
        if low >= high {
            bail!("the range {text:?} is empty: `a..b` takes a up to, not including, b");
        }
        Ok(Self::Between(low, high))
    }
}

impl Range<usize> {
    pub fn sample(&self) -> usize {
        match *self {
            Self::Value(v) => v,
            Self::Between(low, high) => low + (random() % (high - low) as u64) as usize,
        }
    }
}

impl Range<Duration> {
    pub fn sample(&self) -> Duration {
        match *self {
            Self::Value(v) => v,
            Self::Between(low, high) => {
                let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
                low + Duration::from_nanos(random() % span)
            }
        }
    }
}

/// Spin's syntax for a count: `128`, or `1..8`. A count of 0 is refused.
pub fn parse_count_range(text: &str) -> Result<Range<usize>> {
    Range::parse(text, |v| match v.parse::<usize>() {
        Ok(0) => Err(anyhow!("expected a count of at least 1; got {v:?}")),
        Ok(n) => Ok(n),
        Err(e) => Err(anyhow!("expected integer or range; got {v:?}; {e}")),
    })
}

/// Spin's syntax for a duration: an integer suffixed by `s`, `ms`, `us`, `μs` or `ns`
/// (bare: seconds), or a range of two (`500ms..2s`). Zero is refused.
pub fn parse_duration_range(text: &str) -> Result<Range<Duration>> {
    Range::parse(text, |v| {
        let duration = parse_duration(v)?;
        if duration.is_zero() {
            bail!("expected a duration greater than zero; got {v:?}");
        }
        Ok(duration)
    })
}

fn parse_duration(text: &str) -> Result<Duration> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad =
        || anyhow!("expected integer suffixed by `s`, `ms`, `us`, `μs`, or `ns`; got {text:?}");
    let n: u64 = number.parse().map_err(|_| bad())?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "us" | "μs" => Duration::from_micros(n),
        "ns" => Duration::from_nanos(n),
        _ => return Err(bad()),
    })
}

/// A random number for sampling limits (not for anything secret): std's hasher keys are
/// drawn from the OS.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// How reused instances live: the command line's limits.
#[derive(Debug, Clone)]
pub struct ReuseOptions {
    pub max_reuse: Range<usize>,
    pub max_concurrent: Range<usize>,
    pub request_timeout: Range<Duration>,
    pub idle_timeout: Range<Duration>,
    /// Linear memory past which an instance takes no more requests.
    pub retire_memory_bytes: usize,
}

/// Makes the instances of one WASI 0.3 component (`ProxyHandler`'s state).
pub struct Reuse {
    pub id: Arc<str>,
    pub engine: Engine,
    pub pre: ServicePre<InstanceState>,
    pub factors: Arc<ComponentStates>,
    pub dependency_count: usize,
    /// The trigger, for service chaining from the instances made.
    pub chain: Weak<dyn Chain>,
    pub options: Arc<ReuseOptions>,
}

impl HandlerState for Reuse {
    type StoreData = InstanceState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<InstanceState, Expiration, Worker>> {
        let options = &self.options;
        let request_timeout = options.request_timeout.sample();
        let fate = Arc::new(Fate::default());
        let mut store = crate::factors::new_store(
            &self.engine,
            &self.factors,
            self.dependency_count,
            self.chain.upgrade(),
            Arc::clone(&fate.memory),
        );
        // A reused instance is never trapped for time, which would fail every request on
        // it: it yields to the host at each epoch tick instead, so the host can stop it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let service = tokio::time::timeout(request_timeout, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|_| {
                wasmtime::format_err!("instantiating took longer than {request_timeout:?}")
            })??;
        metrics::get().instance_made(true);
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: <InstanceState as WasiHttpView>::http,
            expiration: Expiration {
                idle_timeout: options.idle_timeout.sample(),
                request_timeout,
                fate: Arc::clone(&fate),
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
                deadline: None,
                shown: None,
            },
            state: Worker {
                id: Arc::clone(&self.id),
                max_reuse: options.max_reuse.sample(),
                max_concurrent: options.max_concurrent.sample(),
                request_timeout,
                retire_memory_bytes: options.retire_memory_bytes,
                started: AtomicUsize::new(0),
                fate,
            },
        })
    }
}

/// What the worker, its expiration and its store's limiter share: why the instance ended.
#[derive(Default)]
struct Fate {
    /// A request ran past its deadline: the instance goes now.
    expired: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Why it stopped taking requests (`Retired` as a number; 0: it has not).
    retiring: AtomicU8,
    /// Linear memory grown, in bytes (the store's limiter counts it).
    memory: Arc<AtomicUsize>,
}

impl Fate {
    fn expire(&self) {
        self.expired.store(true, Ordering::Release);
        if let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    }

    fn retire(&self, why: Retired) -> ShouldAccept {
        let _ = self
            .retiring
            .compare_exchange(0, why as u8, Ordering::Relaxed, Ordering::Relaxed);
        ShouldAccept::Never
    }
}

/// One instance's limits, sampled when it was made.
pub struct Worker {
    id: Arc<str>,
    max_reuse: usize,
    max_concurrent: usize,
    request_timeout: Duration,
    retire_memory_bytes: usize,
    /// Requests it has begun.
    started: AtomicUsize,
    fate: Arc<Fate>,
}

impl WorkerState for Worker {
    type StoreData = InstanceState;
    /// Where the request learns the deadline of the instance that took it.
    type RequestData = Arc<OnceLock<Duration>>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_reuse {
            self.fate.retire(Retired::ReuseLimit)
        } else if self.fate.memory.load(Ordering::Relaxed) > self.retire_memory_bytes {
            self.fate.retire(Retired::Memory)
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    /// The request's deadline: when it passes, the whole instance is stopped (`Fate`).
    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, InstanceState>,
        deadline: Arc<OnceLock<Duration>>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let _ = deadline.set(self.request_timeout);
        if self.started.fetch_add(1, Ordering::Relaxed) > 0 {
            metrics::get().instance_reused();
        }
        let fate = Arc::clone(&self.fate);
        let timeout = self.request_timeout;
        Box::pin(async move {
            tokio::time::sleep(timeout).await;
            fate.expire();
        })
    }

    fn drop(&self, store: Store<InstanceState>, result: wasmtime::Result<()>) {
        let why = match &result {
            Err(_) if self.fate.expired.load(Ordering::Acquire) => Retired::Timeout,
            Err(_) => Retired::Trap,
            Ok(()) => Retired::from_u8(self.fate.retiring.load(Ordering::Relaxed)),
        };
        if let Err(err) = result {
            eprintln!(
                "component `{}`: an instance was stopped ({}): {err:?}",
                self.id,
                why.label()
            );
        }
        metrics::get().instance_retired(why);
        // Dropping the store closes its connections, rolling back what they left open.
        drop(store);
    }
}

/// When an instance goes: at once if a request expired; else after its idle timeout with
/// no request, or (should the in-loop deadline not fire) its request timeout after the
/// latest request it took.
pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    fate: Arc<Fate>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    deadline: Option<Instant>,
    /// The phase the metrics show for this instance.
    shown: Option<Phase>,
}

impl Drop for Expiration {
    fn drop(&mut self) {
        metrics::get().instance_phase(self.shown.take(), None);
    }
}

impl WorkerExpiration for Expiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let phase = match status {
            WorkerStatus::Requests => Phase::Requests,
            WorkerStatus::PostReturn => Phase::AfterResponse,
            WorkerStatus::Idle => Phase::Idle,
        };
        if this.shown != Some(phase) {
            metrics::get().instance_phase(this.shown, Some(phase));
            this.shown = Some(phase);
        }
        *this.fate.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if this.fate.expired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let timeout = match status {
            WorkerStatus::Idle => this.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.request_timeout,
        };
        let Some(deadline) = start.checked_add(timeout) else {
            return Poll::Pending;
        };
        if this.deadline != Some(deadline) {
            this.deadline = Some(deadline);
            this.sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) if status != WorkerStatus::Idle => {
                this.fate.expired.store(true, Ordering::Release);
                Poll::Ready(())
            }
            poll => poll,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_are_read_as_spin_reads_them() {
        assert_eq!(parse_count_range("128").unwrap(), Range::Value(128));
        assert_eq!(parse_count_range("1..8").unwrap(), Range::Between(1, 8));
        assert!(parse_count_range("0").is_err());
        assert!(parse_count_range("5..5").is_err());
        assert!(parse_count_range("x").is_err());
        let secs = Duration::from_secs;
        assert_eq!(parse_duration_range("30").unwrap(), Range::Value(secs(30)));
        assert_eq!(parse_duration_range("1s").unwrap(), Range::Value(secs(1)));
        assert_eq!(
            parse_duration_range("500ms..2s").unwrap(),
            Range::Between(Duration::from_millis(500), secs(2))
        );
        assert_eq!(
            parse_duration_range("1..8s").unwrap(),
            Range::Between(secs(1), secs(8))
        );
        assert_eq!(
            parse_duration_range("250us").unwrap(),
            Range::Value(Duration::from_micros(250))
        );
        for bad in ["1.5s", "1m", "0", "0ms", "2s..1s", ""] {
            assert!(parse_duration_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_range_samples_from_its_low_end_up_to_not_including_its_high_end() {
        let range = Range::Between(1usize, 4);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let n = range.sample();
            assert!((1..4).contains(&n), "{n}");
            seen[n] = true;
        }
        assert_eq!(seen, [false, true, true, true]);
        let durations = Range::Between(Duration::from_millis(500), Duration::from_secs(2));
        for _ in 0..100 {
            let d = durations.sample();
            assert!(d >= Duration::from_millis(500) && d < Duration::from_secs(2));
        }
    }
}
