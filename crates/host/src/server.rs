//! The HTTP server: accept connections within the host's bounds and hand each request to
//! the trigger (`trigger.rs`), which routes it and runs it in a fresh instance.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::OwnedSemaphorePermit;

use crate::app::LiveApp;
use crate::connections::Connections;
use crate::trigger::{Trigger, TriggerOptions, EPOCH_TICK};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ServeOptions {
    pub trigger: TriggerOptions,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request head, or keep a connection idle.
    pub header_timeout: Duration,
}

/// A request head larger than this is answered 431 and its connection closed.
const MAX_HEADER_BYTES: usize = 32 * 1024;
/// File descriptors kept back from connections for databases, stores, and outbound requests.
const RESERVED_FDS: usize = 256;

/// The default connection cap: three quarters of the process's open-file limit, so the cap is
/// reached before `accept` starts failing with "Too many open files".
pub fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    (limit.saturating_sub(RESERVED_FDS) * 3 / 4).max(64)
}

/// The soft limit on open files (`RLIMIT_NOFILE`).
#[allow(unsafe_code)]
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by valid pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    live: Arc<LiveApp>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // Reloads keep the engine, so one ticker serves every version of the app.
    spawn_epoch_ticker(live.get().engine.clone());
    let trigger = Trigger::new(live, &options.trigger);
    let connections = Connections::new(options.max_connections);
    crate::metrics::get().connections_max(options.max_connections);
    let http = http_builder(&options);
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        // A slot for the next connection (see `connections`: at the cap an idle connection
        // makes room, else new ones wait in the listen backlog).
        let slot = tokio::select! {
            slot = connections.slot() => match slot {
                Some(slot) => slot,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tokio::time::sleep(accept_errors.failed(&err)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        accept_errors.succeeded();
        spawn_connection(&http, &trigger, &connections, slot, stream, client);
    }
    drop(listener);
    eprintln!("Shutting down: waiting for in-flight requests");
    if !connections.close_all(DRAIN_TIMEOUT).await {
        eprintln!("Some requests did not finish within {DRAIN_TIMEOUT:?}");
    }
    Ok(())
}

/// HTTP/1.1 with the host's bounds: the timer makes the header timeout work; it also bounds
/// an idle keep-alive connection, which is waiting for the head of its next request.
fn http_builder(options: &ServeOptions) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    http
}

/// Serves one accepted connection in a task of its own, each request by the trigger.
fn spawn_connection(
    http: &http1::Builder,
    trigger: &Arc<Trigger>,
    connections: &Arc<Connections>,
    slot: OwnedSemaphorePermit,
    stream: TcpStream,
    client: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let admitted = connections.admit(slot);
    let busy = Arc::clone(&admitted.busy);
    let trigger = Arc::clone(trigger);
    let service = hyper::service::service_fn(move |req| {
        let trigger = Arc::clone(&trigger);
        let serving = Serving::start(&busy);
        async move {
            let response = trigger.handle(req, client).await;
            drop(serving);
            response
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let connections = Arc::clone(connections);
    let open = crate::metrics::get().connection_opened();
    tokio::spawn(async move {
        let _open = open;
        if let Some(Err(err)) = admitted.serve(connections, conn).await {
            if !err.is_incomplete_message() && !err.is_timeout() {
                eprintln!("connection from {client}: {err}");
            }
        }
    });
}

/// A request being served on a connection: it keeps the connection from being evicted.
struct Serving(Arc<AtomicUsize>);

impl Serving {
    fn start(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(busy))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A run of failed `accept`s: backed off, 10 ms doubling to about a second, and logged once
/// when it starts and once when it ends, not once per connection.
#[derive(Default)]
struct AcceptErrors {
    streak: u32,
}

impl AcceptErrors {
    fn failed(&mut self, err: &std::io::Error) -> Duration {
        if self.streak == 0 {
            eprintln!("accepting connections fails ({err}); backing off until it works again");
        }
        self.streak = self.streak.saturating_add(1);
        Duration::from_millis(10 << self.streak.min(7))
    }

    fn succeeded(&mut self) {
        if self.streak > 0 {
            eprintln!(
                "accepting connections again, after {} failures",
                self.streak
            );
            self.streak = 0;
        }
    }
}

fn spawn_epoch_ticker(engine: wasmtime::Engine) {
    std::thread::spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        engine.increment_epoch();
    });
}
