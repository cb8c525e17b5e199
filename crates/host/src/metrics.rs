//! The host's own metrics, for Prometheus: requests by component, kind, method and status
//! class, their latency, the SQL statements each component runs, instances in use, waits for an instance and the 503s of a full
//! host, open connections, reloads. Counted with atomics as requests go (one process-wide
//! set, as a process has one of each), written in the text format when scraped on
//! `--metrics-listen` (off by default: a separate listener an operator exposes to the
//! scraper only).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_text::{Exposition, Kind as Type};
use tokio::net::TcpListener;

/// Where a request came from: a client, or a component by service chaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Client,
    Chained,
}

impl Source {
    const ALL: [Self; 2] = [Self::Client, Self::Chained];

    fn label(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Chained => "chained",
        }
    }
}

/// The component label of a request no component served (no route, `/.well-known/spin/`):
/// not a valid component id, so it cannot be taken for one.
pub const NO_COMPONENT: &str = "-";

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The latency histogram's upper bounds, in seconds.
const BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Requests to one component from one source.
#[derive(Default)]
struct Served {
    requests: [[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()],
    buckets: [AtomicU64; BOUNDS.len() + 1],
    micros: AtomicU64,
}

/// Requests to one component, by source, and the SQL statements its instances ran.
#[derive(Default)]
struct Component {
    client: Served,
    chained: Served,
    statements: AtomicU64,
}

/// Counts the SQL statements of one component's instances (taken once per connection, so
/// counting a statement looks nothing up).
#[derive(Clone)]
pub struct StatementCounter(Arc<Component>);

impl StatementCounter {
    pub fn count(&self) {
        self.0.statements.fetch_add(1, Ordering::Relaxed);
    }
}

impl Component {
    fn from(&self, source: Source) -> &Served {
        match source {
            Source::Client => &self.client,
            Source::Chained => &self.chained,
        }
    }
}

/// Per source: instances in use, waits for one, and the 503s of a full host.
#[derive(Default)]
struct Instances {
    in_use: AtomicI64,
    max: AtomicU64,
    waits: AtomicU64,
    wait_micros: AtomicU64,
    overloaded: AtomicU64,
}

/// What a reused instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Answering requests.
    Requests,
    /// Every request answered; work their responses left for after them still runs.
    AfterResponse,
    /// Nothing to do.
    Idle,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Requests, Phase::AfterResponse, Phase::Idle];

    fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::AfterResponse => "after_response",
            Self::Idle => "idle",
        }
    }
}

/// Why an instance was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Retired {
    /// After its one request (a WASI 0.2 component's instance).
    Served = 1,
    /// No request came within its idle timeout.
    Idle,
    /// It took its most requests (`--max-instance-reuse-count`).
    ReuseLimit,
    /// Its memory grew past `--instance-memory-retire-mib`.
    Memory,
    /// A request on it ran past its deadline.
    Timeout,
    /// It trapped.
    Trap,
}

impl Retired {
    const ALL: [Self; 6] = [
        Self::Served,
        Self::Idle,
        Self::ReuseLimit,
        Self::Memory,
        Self::Timeout,
        Self::Trap,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::Idle => "idle",
            Self::ReuseLimit => "reuse_limit",
            Self::Memory => "memory",
            Self::Timeout => "timeout",
            Self::Trap => "trap",
        }
    }

    /// The reason numbered `n` (`as u8`); anything else is `Idle`.
    pub fn from_u8(n: u8) -> Self {
        Self::ALL
            .into_iter()
            .find(|why| *why as u8 == n)
            .unwrap_or(Self::Idle)
    }
}

/// Every metric of the process.
pub struct Metrics {
    started: f64,
    /// By component id: looked up by `&str`, so counting a request allocates nothing.
    components: RwLock<BTreeMap<String, Arc<Component>>>,
    client: Instances,
    chained: Instances,
    connections_open: AtomicI64,
    connections_max: AtomicU64,
    connections_accepted: AtomicU64,
    connections_evicted: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Instances made: of WASI 0.2 components (one per request), of WASI 0.3 ones (reused).
    made_single: AtomicU64,
    made_reused: AtomicU64,
    /// Requests an instance took after its first.
    reuses: AtomicU64,
    /// Reused instances now, by `Phase as usize`.
    phases: [AtomicI64; Phase::ALL.len()],
    /// Instances dropped, by `Retired as usize - 1`.
    retired: [AtomicU64; Retired::ALL.len()],
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        Self {
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            components: RwLock::default(),
            client: Instances::default(),
            chained: Instances::default(),
            connections_open: AtomicI64::new(0),
            connections_max: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_evicted: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            made_single: AtomicU64::new(0),
            made_reused: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
            phases: Default::default(),
            retired: Default::default(),
        }
    }

    /// A request answered: by `component` (or [`NO_COMPONENT`]), in `elapsed` to its
    /// response head.
    pub fn request(
        &self,
        component: &str,
        source: Source,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let component = self.component(component);
        let served = component.from(source);
        let method = METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1);
        let class = usize::from(status.as_u16() / 100)
            .saturating_sub(1)
            .min(STATUS_CLASSES.len() - 1);
        if let Some(count) = served.requests.get(method).and_then(|m| m.get(class)) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        if let Some(count) = served.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        served.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counter of the SQL statements `component`'s instances run.
    pub fn statements(&self, component: &str) -> StatementCounter {
        StatementCounter(self.component(component))
    }

    fn component(&self, id: &str) -> Arc<Component> {
        if let Some(component) = self
            .components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Arc::clone(component);
        }
        let mut all = self.components.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(all.entry(id.to_owned()).or_default())
    }

    /// How many instances `source`'s requests may run at once.
    pub fn instances_max(&self, source: Source, max: usize) {
        self.instance(source)
            .max
            .store(max as u64, Ordering::Relaxed);
    }

    /// An instance slot taken; it is given back when the returned guard drops.
    pub fn instance_taken(&'static self, source: Source) -> InstanceInUse {
        let instances = self.instance(source);
        instances.in_use.fetch_add(1, Ordering::Relaxed);
        InstanceInUse(instances)
    }

    /// A request found every instance busy and waited `waited`; `gave_up`: none freed in
    /// time, and it was answered 503.
    pub fn instance_wait(&self, source: Source, waited: Duration, gave_up: bool) {
        let instances = self.instance(source);
        instances.waits.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        instances.wait_micros.fetch_add(micros, Ordering::Relaxed);
        if gave_up {
            instances.overloaded.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn instance(&self, source: Source) -> &Instances {
        match source {
            Source::Client => &self.client,
            Source::Chained => &self.chained,
        }
    }

    pub fn connections_max(&self, max: usize) {
        self.connections_max.store(max as u64, Ordering::Relaxed);
    }

    /// A connection accepted; it counts as open until the returned guard drops.
    pub fn connection_opened(&'static self) -> ConnectionOpen {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionOpen(self)
    }

    /// An idle connection closed to make room for a new one.
    pub fn connection_evicted(&self) {
        self.connections_evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// An instance made: for reuse (a WASI 0.3 component's), or for one request.
    pub fn instance_made(&self, reused: bool) {
        let counter = if reused {
            &self.made_reused
        } else {
            &self.made_single
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An instance took a request after its first.
    pub fn instance_reused(&self) {
        self.reuses.fetch_add(1, Ordering::Relaxed);
    }

    /// A reused instance moved from `from` to `to` (`None`: made, or dropped).
    pub fn instance_phase(&self, from: Option<Phase>, to: Option<Phase>) {
        if let Some(gauge) = from.and_then(|p| self.phases.get(p as usize)) {
            gauge.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(gauge) = to.and_then(|p| self.phases.get(p as usize)) {
            gauge.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An instance dropped, and why.
    pub fn instance_retired(&self, why: Retired) {
        if let Some(counter) = self.retired.get(usize::from(why as u8).saturating_sub(1)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A reload of the app, swapped in (`ok`) or not (it did not load).
    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics, in the text format.
    pub fn render(&self) -> String {
        let mut e = Exposition::new();
        self.render_requests(&mut e);
        self.render_statements(&mut e);
        self.render_instances(&mut e);
        self.render_connections_and_reloads(&mut e);
        e.finish()
    }

    /// Requests and their latency, by component and source.
    fn render_requests(&self, e: &mut Exposition) {
        // Each component and source that has served a request.
        let components: Vec<(String, Arc<Component>)> = self
            .components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, component)| (id.clone(), Arc::clone(component)))
            .collect();
        let served: Vec<(&str, Source, &Served)> = components
            .iter()
            .flat_map(|(id, component)| {
                Source::ALL
                    .into_iter()
                    .map(move |source| (id.as_str(), source, component.from(source)))
            })
            .filter(|(_, _, served)| served.buckets.iter().any(|c| c.load(Ordering::Relaxed) > 0))
            .collect();

        e.family(
            "inventory_host_requests_total",
            Type::Counter,
            "Requests answered, by component (- when none served it), source (client, or \
             chained from a component), method and status class.",
        );
        for &(component, source, served) in &served {
            for (method, by_class) in METHODS.iter().zip(&served.requests) {
                for (class, count) in STATUS_CLASSES.iter().zip(by_class) {
                    let count = count.load(Ordering::Relaxed);
                    if count > 0 {
                        e.sample(
                            "inventory_host_requests_total",
                            &[
                                ("component", component),
                                ("source", source.label()),
                                ("method", method),
                                ("status", class),
                            ],
                            count,
                        );
                    }
                }
            }
        }

        e.family(
            "inventory_host_request_duration_seconds",
            Type::Histogram,
            "Time from a request's arrival to its response head, by component and source \
             (waiting for an instance included).",
        );
        for &(component, source, served) in &served {
            let counts: Vec<u64> = served
                .buckets
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
            let sum = served.micros.load(Ordering::Relaxed) as f64 / 1e6;
            e.histogram(
                "inventory_host_request_duration_seconds",
                &[("component", component), ("source", source.label())],
                &BOUNDS,
                &counts,
                sum,
            );
        }
    }

    /// The SQL statements each component's instances ran: each is a call into the host.
    fn render_statements(&self, e: &mut Exposition) {
        e.family(
            "inventory_host_sqlite_statements_total",
            Type::Counter,
            "SQL statements run by a component's instances (each a call into the host), by \
             component.",
        );
        let components = self.components.read().unwrap_or_else(|e| e.into_inner());
        for (id, component) in components.iter() {
            let count = component.statements.load(Ordering::Relaxed);
            if count > 0 {
                e.sample(
                    "inventory_host_sqlite_statements_total",
                    &[("component", id)],
                    count,
                );
            }
        }
    }

    /// Instances in use, waits for one, and the 503s of a full host, by source.
    fn render_instances(&self, e: &mut Exposition) {
        let per_source =
            |e: &mut Exposition,
             name: &str,
             kind: Type,
             help: &str,
             value: &dyn Fn(&Instances) -> metrics_text::Value| {
                e.family(name, kind, help);
                for source in Source::ALL {
                    e.sample(
                        name,
                        &[("source", source.label())],
                        value(self.instance(source)),
                    );
                }
            };
        per_source(
            e,
            "inventory_host_instances_in_use",
            Type::Gauge,
            "Component instances running now.",
            &|i| i.in_use.load(Ordering::Relaxed).into(),
        );
        per_source(
            e,
            "inventory_host_instances_max",
            Type::Gauge,
            "Instances that may run at once (--max-instances); more requests wait.",
            &|i| i.max.load(Ordering::Relaxed).into(),
        );
        per_source(
            e,
            "inventory_host_instance_waits_total",
            Type::Counter,
            "Requests that found every instance busy and waited for one.",
            &|i| i.waits.load(Ordering::Relaxed).into(),
        );
        per_source(
            e,
            "inventory_host_instance_wait_seconds_total",
            Type::Counter,
            "Time requests spent waiting for an instance.",
            &|i| (i.wait_micros.load(Ordering::Relaxed) as f64 / 1e6).into(),
        );
        e.family(
            "inventory_host_instances_made_total",
            Type::Counter,
            "Instances made, by component kind: `wasip2` components get one per request, \
             `wasip3` ones are reused across requests.",
        );
        for (kind, made) in [("wasip2", &self.made_single), ("wasip3", &self.made_reused)] {
            e.sample(
                "inventory_host_instances_made_total",
                &[("kind", kind)],
                made.load(Ordering::Relaxed),
            );
        }
        e.family(
            "inventory_host_instance_reuses_total",
            Type::Counter,
            "Requests served by an instance that had served one before.",
        );
        e.sample(
            "inventory_host_instance_reuses_total",
            &[],
            self.reuses.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_reused_instances",
            Type::Gauge,
            "Reused (WASI 0.3) instances now, by phase: requests (answering), after_response \
             (running what their responses left for after them), idle.",
        );
        for (phase, gauge) in Phase::ALL.iter().zip(&self.phases) {
            e.sample(
                "inventory_host_reused_instances",
                &[("phase", phase.label())],
                gauge.load(Ordering::Relaxed),
            );
        }
        e.family(
            "inventory_host_instances_retired_total",
            Type::Counter,
            "Instances dropped, by why: served (its one request), idle, reuse_limit, memory, \
             timeout (a request ran past its deadline), trap.",
        );
        for (why, count) in Retired::ALL.iter().zip(&self.retired) {
            e.sample(
                "inventory_host_instances_retired_total",
                &[("reason", why.label())],
                count.load(Ordering::Relaxed),
            );
        }
        per_source(
            e,
            "inventory_host_overloaded_total",
            Type::Counter,
            "Requests answered 503 by the host: no instance freed within --queue-timeout.",
            &|i| i.overloaded.load(Ordering::Relaxed).into(),
        );
    }

    /// Connections, reloads, and when the host started.
    fn render_connections_and_reloads(&self, e: &mut Exposition) {
        e.family(
            "inventory_host_connections_open",
            Type::Gauge,
            "Client connections open now.",
        )
        .sample(
            "inventory_host_connections_open",
            &[],
            self.connections_open.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_connections_max",
            Type::Gauge,
            "Connections that may be open at once (--max-connections).",
        )
        .sample(
            "inventory_host_connections_max",
            &[],
            self.connections_max.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_connections_accepted_total",
            Type::Counter,
            "Client connections accepted.",
        )
        .sample(
            "inventory_host_connections_accepted_total",
            &[],
            self.connections_accepted.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_connections_evicted_total",
            Type::Counter,
            "Idle connections closed to make room for new ones at the cap.",
        )
        .sample(
            "inventory_host_connections_evicted_total",
            &[],
            self.connections_evicted.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_reloads_total",
            Type::Counter,
            "Reloads of the app (watch): swapped in (ok), or not loaded (failed, the \
             previous version kept serving).",
        )
        .sample(
            "inventory_host_reloads_total",
            &[("result", "ok")],
            self.reloads_ok.load(Ordering::Relaxed),
        )
        .sample(
            "inventory_host_reloads_total",
            &[("result", "failed")],
            self.reloads_failed.load(Ordering::Relaxed),
        );
        e.family(
            "inventory_host_start_time_seconds",
            Type::Gauge,
            "When the host started, in Unix seconds.",
        )
        .sample("inventory_host_start_time_seconds", &[], self.started);
    }
}

/// An instance in use, until dropped.
pub struct InstanceInUse(&'static Instances);

impl Drop for InstanceInUse {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open connection, until dropped.
pub struct ConnectionOpen(&'static Metrics);

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a scraper may take to send its request head.
const SCRAPE_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(SCRAPE_HEADER_TIMEOUT);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let conn = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(scrape(&req)) }),
        );
        tokio::spawn(conn);
    }
}

fn scrape(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, get().render()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if status == StatusCode::OK {
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static(metrics_text::CONTENT_TYPE),
        );
    }
    response
}

/// Binds the metrics listener, before the app's: a wrong address stops the host at once.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_by_component_method_and_status_class_with_its_latency() {
        let metrics = Metrics::new();
        metrics.request(
            "stock",
            Source::Client,
            &Method::POST,
            StatusCode::CONFLICT,
            Duration::from_millis(3),
        );
        metrics.request(
            NO_COMPONENT,
            Source::Client,
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            Duration::from_secs(60),
        );
        let text = metrics.render();
        assert!(text.contains(
            "inventory_host_requests_total{component=\"stock\",source=\"client\",method=\"POST\",status=\"4xx\"} 1\n"
        ));
        assert!(text.contains(
            "inventory_host_requests_total{component=\"-\",source=\"client\",method=\"other\",status=\"4xx\"} 1\n"
        ));
        assert!(text.contains(
            "inventory_host_request_duration_seconds_bucket{component=\"stock\",source=\"client\",le=\"0.0025\"} 0\n"
        ));
        assert!(text.contains(
            "inventory_host_request_duration_seconds_bucket{component=\"stock\",source=\"client\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "inventory_host_request_duration_seconds_bucket{component=\"-\",source=\"client\",le=\"30\"} 0\n"
        ));
        assert!(text.contains(
            "inventory_host_request_duration_seconds_bucket{component=\"-\",source=\"client\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains(
            "inventory_host_request_duration_seconds_sum{component=\"stock\",source=\"client\"} 0.003\n"
        ));
    }
}
