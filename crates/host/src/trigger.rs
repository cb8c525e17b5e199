//! The HTTP trigger, as Spin's `trigger-http`: route a request, add the `spin-*` headers,
//! wait (boundedly) for a slot, run the component (a WASI 0.2 one in a fresh instance, a
//! WASI 0.3 one on a reused instance, `reuse`), and run service-chained requests
//! (`http://<component>.spin.internal`) the same way.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::handler::{
    ExpirationError, InstantiationError, ProxyHandler, TrapOrPanicError,
};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{Error as ChainError, WasiBody, WasiHttpView};

use crate::app::{App, Handler, LiveApp, LoadedComponent};
use crate::factor::{Chain, ChainFuture};
use crate::metrics::{self, InstanceInUse, Retired, Source, NO_COMPONENT};
use crate::reuse::{Range, Reuse, ReuseOptions};
use crate::routes::RouteMatch;

/// How often the epoch advances; the unit of the per-request deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How requests get instances.
pub struct TriggerOptions {
    /// Requests that may run at once (each a fresh instance of a WASI 0.2 component).
    pub max_instances: u32,
    /// How reused instances (of WASI 0.3 components) live; its request timeout is every
    /// request's, sampled per request for WASI 0.2 components.
    pub reuse: Arc<ReuseOptions>,
    /// How long a request may wait for an instance before it is answered 503.
    pub queue_timeout: Duration,
}

/// The app being served, and what every request shares.
pub struct Trigger {
    live: Arc<LiveApp>,
    /// Instance slots for requests from clients...
    permits: Arc<Semaphore>,
    /// ...and, apart, for chained requests, so a caller never waits on its own kind.
    chain_permits: Arc<Semaphore>,
    request_timeout: Range<Duration>,
    reuse: Arc<ReuseOptions>,
    queue_timeout: Duration,
    /// Itself, for the outbound hooks of the instances it makes (service chaining).
    me: Weak<Trigger>,
}

/// Paths Spin answers itself, before routing.
const WELL_KNOWN: &str = "/.well-known/spin/";
/// The client address a chained request carries, as on Spin.
const CHAINED_CLIENT_ADDR: &str = "0.0.0.0:0";

impl Trigger {
    pub fn new(live: Arc<LiveApp>, options: &TriggerOptions) -> Arc<Self> {
        for source in [Source::Client, Source::Chained] {
            metrics::get().instances_max(source, options.max_instances as usize);
        }
        Arc::new_cyclic(|me| Self {
            live,
            permits: Arc::new(Semaphore::new(options.max_instances as usize)),
            chain_permits: Arc::new(Semaphore::new(options.max_instances as usize)),
            request_timeout: options.reuse.request_timeout,
            reuse: Arc::clone(&options.reuse),
            queue_timeout: options.queue_timeout,
            me: me.clone(),
        })
    }

    fn well_known(&self, path: &str) -> Response<HyperOutgoingBody> {
        match path {
            "health" => bytes_response(
                StatusCode::OK,
                Some("text/plain"),
                Bytes::from_static(b"OK"),
            ),
            "info" => {
                let app = self.live.get();
                let info = serde_json::json!({ "name": app.name, "version": app.version });
                let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
                bytes_response(StatusCode::OK, Some("application/json"), Bytes::from(body))
            }
            _ => host_response(StatusCode::NOT_FOUND),
        }
    }

    /// A request from a client: route it, then run the component in a fresh instance.
    /// `Err`: refused without an answer, the connection closed, as Spin refuses it.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, NoAuthority> {
        let started = Instant::now();
        let method = req.method().clone();
        let app = self.live.get();
        let (component, response) = self.route_and_run(&app, req, client).await?;
        metrics::get().request(
            component.unwrap_or(NO_COMPONENT),
            Source::Client,
            &method,
            response.status(),
            started.elapsed(),
        );
        Ok(response)
    }

    /// The response, and the id of the component that served it, if one did.
    async fn route_and_run<'a>(
        &self,
        app: &'a App,
        mut req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<(Option<&'a str>, Response<HyperOutgoingBody>), NoAuthority> {
        strip_chaining_host(&mut req);
        let path = req.uri().path().to_owned();
        if let Some(reserved) = path.strip_prefix(WELL_KNOWN) {
            return Ok((None, self.well_known(reserved)));
        }
        let Some(matched) = app.router.route(&path) else {
            return Ok((None, host_response(StatusCode::NOT_FOUND)));
        };
        let host = authority(&req).ok_or(NoAuthority)?;
        let component_index = matched.route.component;
        let component = app.components.get(component_index).map(|c| c.id.as_str());
        set_spin_headers(&mut req, &host, &matched, client);
        // A request waits for a free instance, but not forever.
        let Some(slot) = self.wait_for_slot(&self.permits, Source::Client).await else {
            return Ok((component, overloaded()));
        };
        let response = self.run_or_500(app, component_index, req, slot).await;
        Ok((component, response))
    }

    /// A free instance slot, or `None` if none frees within the queue timeout.
    async fn wait_for_slot(&self, slots: &Arc<Semaphore>, source: Source) -> Option<Slot> {
        let metrics = metrics::get();
        let permit = match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let started = Instant::now();
                let acquired =
                    tokio::time::timeout(self.queue_timeout, Arc::clone(slots).acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok);
                metrics.instance_wait(source, started.elapsed(), acquired.is_none());
                acquired?
            }
        };
        Some(Slot {
            _permit: permit,
            _in_use: metrics.instance_taken(source),
        })
    }

    /// Runs a component; a failure is logged with the request id and answered with a 500.
    async fn run_or_500<B>(
        &self,
        app: &App,
        component_index: usize,
        req: Request<B>,
        slot: Slot,
    ) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<ChainError>,
    {
        let Some(component) = app.components.get(component_index) else {
            return host_response(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let path = req.uri().path().to_owned();
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match self.run(app, component, req, slot).await {
            Ok(response) => response,
            Err(err) => {
                eprintln!(
                    "component `{}` failed on {path} (request id {}): {err:#}",
                    component.id,
                    request_id.as_deref().unwrap_or("-")
                );
                if err.is::<InstanceLost>() {
                    retry_later()
                } else {
                    host_response(StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        }
    }

    async fn run<B>(
        &self,
        app: &App,
        component: &LoadedComponent,
        req: Request<B>,
        slot: Slot,
    ) -> Result<Response<HyperOutgoingBody>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<ChainError>,
    {
        let pre = match &component.handler {
            Handler::Single(pre) => pre,
            Handler::Reused { pre, instances } => {
                let instances = instances.get_or_init(|| {
                    ProxyHandler::new(Reuse {
                        id: component.id.as_str().into(),
                        engine: app.engine.clone(),
                        pre: pre.clone(),
                        factors: Arc::clone(&component.factors),
                        dependency_count: component.dependency_count,
                        chain: self.me.clone(),
                        options: Arc::clone(&self.reuse),
                    })
                });
                return run_reused(instances, req, slot).await;
            }
        };
        let timeout = self.request_timeout.sample();
        let mut store = crate::factors::new_store(
            &app.engine,
            &component.factors,
            component.dependency_count,
            self.me.upgrade().map(|me| me as Arc<dyn Chain>),
            Arc::default(),
        );
        // A guest that never waits still yields its thread to the host's other tasks at
        // every epoch tick, and the timeout below stops it. (A trap at the deadline alone
        // held the thread until then: CI saw a looping request keep the metrics listener
        // from answering for the whole 30 s of its timeout.)
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let (sender, receiver) = oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = pre.clone();
        let task = tokio::spawn(async move {
            // The slot is held until the task ends: body streaming, and whatever the
            // component does after its response (the notifier delivers then), included.
            let _slot = slot;
            metrics::get().instance_made(false);
            let _retired = RetireOnDrop;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            match tokio::time::timeout(timeout, run).await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("the request took longer than {timeout:?}")),
            }
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(anyhow::anyhow!(
                "the component answered with an error: {code:?}"
            )),
            // The component ended without setting a response: its own error says why.
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow::anyhow!(
                    "the component returned without sending a response"
                )),
                Ok(Err(err)) => Err(err),
                Err(join) => Err(anyhow::anyhow!("the request task failed: {join}")),
            },
        }
    }
}

/// Counts a single-use instance dropped, however its task ends.
struct RetireOnDrop;

impl Drop for RetireOnDrop {
    fn drop(&mut self) {
        metrics::get().instance_retired(Retired::Served);
    }
}

/// Runs a request on a reused instance of a WASI 0.3 component. Its failures are answered
/// here: a request past its deadline 500, as on a fresh instance; one whose instance was
/// stopped under it before its own deadline (another request on it trapped or ran past
/// its deadline), or could not be made, 503 with `Retry-After`, as a host with no instance
/// free. (A request that traps shares its instance's fate: with others in flight, nothing
/// tells which one trapped.)
async fn run_reused<B>(
    instances: &ProxyHandler<Reuse>,
    req: Request<B>,
    slot: Slot,
) -> Result<Response<HyperOutgoingBody>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<ChainError>,
{
    let req = with_absolute_uri(req).map(|body| body.map_err(Into::into).boxed_unsync());
    let started = Instant::now();
    let deadline = Arc::new(std::sync::OnceLock::new());
    let result = instances.handle(Arc::clone(&deadline), req).await;
    drop(slot);
    let past_deadline = deadline
        .get()
        .is_some_and(|deadline| started.elapsed() >= *deadline);
    match result {
        Ok(response) => Ok(response),
        Err(err)
            if err.is::<ExpirationError>() || (past_deadline && err.is::<TrapOrPanicError>()) =>
        {
            Err(anyhow::anyhow!("the request took longer than its deadline"))
        }
        Err(err) if err.is::<TrapOrPanicError>() => Err(anyhow::Error::new(InstanceLost(
            "the instance serving it trapped or was stopped".into(),
        ))),
        Err(err) if err.is::<InstantiationError<Arc<std::sync::OnceLock<Duration>>>>() => {
            Err(anyhow::Error::new(InstanceLost(format!("{err:#}"))))
        }
        Err(err) => Err(anyhow::anyhow!("{err:#}")),
    }
}

/// A request whose instance was lost under it, through no fault it can be shown to have:
/// answered 503 with `Retry-After`.
#[derive(Debug)]
struct InstanceLost(String);

impl std::fmt::Display for InstanceLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InstanceLost {}

/// A WASI 0.3 guest reads the request's authority from its URI (`Host` is not passed):
/// the URI is made absolute from `Host`, as Spin makes it.
fn with_absolute_uri<B>(mut req: Request<B>) -> Request<B> {
    if req.uri().authority().is_none() {
        if let Some(host) = authority(&req) {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            if let Ok(uri) = http::Uri::builder()
                .scheme("http")
                .authority(host)
                .path_and_query(path)
                .build()
            {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// An instance slot: one of the bounded instances, held until the request's task ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _in_use: InstanceInUse,
}

/// Service chaining: `http://<component>.spin.internal/<path>` runs that component, in this
/// process, whatever its route (private ones too), as Spin does. Chained requests have
/// instance slots of their own, so a host full of callers cannot deadlock on their chains;
/// one that finds none free within the queue timeout is answered 503.
impl Chain for Trigger {
    fn chain(&self, target: &str, mut request: Request<WasiBody>) -> ChainFuture {
        let me = self.me.upgrade();
        let target = target.to_owned();
        Box::pin(async move {
            let Some(me) = me else {
                return Err(ChainError::InternalError(Some(
                    "the host is stopping".into(),
                )));
            };
            let app = me.live.get();
            let Some(index) = app.components.iter().position(|c| c.id == target) else {
                eprintln!("service chaining: the app has no component `{target}`");
                return Err(ChainError::DestinationNotFound);
            };
            set_chained_headers(&mut request);
            let started = Instant::now();
            let method = request.method().clone();
            let response = match me.wait_for_slot(&me.chain_permits, Source::Chained).await {
                Some(slot) => me.run_or_500(&app, index, request, slot).await,
                None => overloaded(),
            };
            metrics::get().request(
                &target,
                Source::Chained,
                &method,
                response.status(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}

/// Adds the `spin-*` headers Spin sets. As Spin does, a client's own `spin-*` headers are
/// kept and Spin's values come after them: a guest that trusts these reads the last value.
/// A routed request Spin refuses by closing the connection: it names no authority (no
/// `Host`, or one naming a service-chaining target, which only the app's own components
/// may reach).
#[derive(Debug)]
pub struct NoAuthority;

impl std::fmt::Display for NoAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no 'Host' header present in request")
    }
}

impl std::error::Error for NoAuthority {}

/// A client's `Host` naming `<component>.spin.internal` is dropped, as Spin drops it.
fn strip_chaining_host<B>(req: &mut Request<B>) {
    let chaining = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| host.rsplit_once(':').map_or(host, |(name, _)| name))
        .is_some_and(|name| {
            name.to_ascii_lowercase()
                .ends_with(crate::outbound_http::allowed_hosts::SERVICE_CHAINING_SUFFIX)
        });
    if chaining {
        req.headers_mut().remove(HOST);
    }
}

/// The request's authority: its `Host`, or the URI's.
fn authority<B>(req: &Request<B>) -> Option<String> {
    match req.headers().get(HOST) {
        Some(host) => host.to_str().ok().map(str::to_owned),
        None => req.uri().authority().map(|a| a.as_str().to_owned()),
    }
}

fn set_spin_headers(
    req: &mut Request<Incoming>,
    host: &str,
    matched: &RouteMatch<'_>,
    client: SocketAddr,
) {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let headers = req.headers_mut();
    let mut set = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    };
    let route = matched.route;
    set("spin-full-url", &format!("http://{host}{path_and_query}"));
    set("spin-path-info", &matched.path_info);
    set("spin-matched-route", route.based());
    set(
        "spin-component-route",
        route.raw().strip_suffix("/...").unwrap_or(route.raw()),
    );
    set("spin-raw-component-route", route.raw());
    set("spin-base-path", "/");
    set("spin-client-addr", &client.to_string());
    for (name, value) in &matched.params {
        set(
            &format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            ),
            value,
        );
    }
}

/// The `spin-*` headers of a chained request, as Spin sets them for its synthetic route
/// match: the whole path is the path info, and the client is `0.0.0.0:0`.
fn set_chained_headers(req: &mut Request<WasiBody>) {
    let full_url = req.uri().to_string();
    let path = req.uri().path().to_owned();
    let headers = req.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &path);
    set("spin-matched-route", "/...");
    set("spin-component-route", "");
    set("spin-raw-component-route", "/...");
    set("spin-base-path", "/");
    set("spin-client-addr", CHAINED_CLIENT_ADDR);
}

/// How long an overloaded host asks clients to wait before trying again.
const RETRY_AFTER_SECONDS: &str = "1";

/// 503 when no instance frees in time: the host's own answer, a plain problem+json with no
/// type of the app's (RFC 9457 `about:blank`: the status says it all), and `Retry-After`.
fn overloaded() -> Response<HyperOutgoingBody> {
    unavailable("every instance is busy; retry later")
}

/// 503 when the instance serving a request was lost under it (`InstanceLost`): whatever
/// the request began rolled back, and it may be sent again.
fn retry_later() -> Response<HyperOutgoingBody> {
    unavailable(
        "the instance serving this request was stopped before it answered (another request \
         on it failed); what it had not committed was rolled back; retry later",
    )
}

fn unavailable(detail: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        "detail": detail,
    });
    let mut response = bytes_response(
        StatusCode::SERVICE_UNAVAILABLE,
        Some("application/problem+json"),
        Bytes::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}

/// A response the host makes itself (no route, or the component failed): an empty body
/// with the status, as Spin sends.
fn host_response(status: StatusCode) -> Response<HyperOutgoingBody> {
    bytes_response(status, None, Bytes::new())
}

fn bytes_response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Response<HyperOutgoingBody> {
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}
