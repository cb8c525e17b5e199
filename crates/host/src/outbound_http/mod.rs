//! Outbound HTTP from components (`wasi:http/outgoing-handler`, with the `wasi:http/types` it
//! uses), as Spin's `factor-outbound-http` allows it: a request goes out only if the
//! component's `allowed_outbound_hosts` covers its scheme, host and port (`allowed_hosts.rs`);
//! otherwise its response future fails with `HttpRequestDenied` and a warning names the entry
//! that would allow it. A request to `<component>.spin.internal` (service chaining) is handed
//! to that component inside the process, whatever its route, private ones included.

pub mod allowed_hosts;

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks, WasiHttpView,
};

use crate::factor::{AppContext, Chain, ComponentContext, Factor, InstanceContext};
use allowed_hosts::{AllowedHosts, SERVICE_CHAINING_SUFFIX};

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

pub struct OutboundHttpFactor;

/// Where one component may send requests.
pub struct ComponentState {
    component: Arc<str>,
    /// `allowed_outbound_hosts`, templates rendered.
    allowed: Arc<AllowedHosts>,
}

/// One instance's HTTP context and its outbound policy.
pub struct InstanceState {
    pub ctx: WasiHttpCtx,
    pub hooks: OutboundHttp,
}

impl Factor for OutboundHttpFactor {
    type AppState = ();
    type ComponentState = ComponentState;
    type InstanceState = InstanceState;

    fn configure_app(_ctx: &AppContext<'_>, _previous: Option<&()>) -> Result<()> {
        Ok(())
    }

    /// `allowed_outbound_hosts`, each entry's templates rendered now: the host knows every
    /// variable's value at start (Spin resolves them on first use; the outcome is the same).
    fn configure_component(_app: &(), ctx: &ComponentContext<'_>) -> Result<ComponentState> {
        let what = || format!("`component.{}.allowed_outbound_hosts` is malformed", ctx.id);
        let entries = ctx
            .component
            .allowed_outbound_hosts
            .iter()
            .map(|entry| ctx.variables.render(entry))
            .collect::<Result<Vec<_>>>()
            .with_context(what)?;
        Ok(ComponentState {
            component: Arc::from(ctx.id),
            allowed: Arc::new(AllowedHosts::parse(&entries).with_context(what)?),
        })
    }

    fn instance(component: &ComponentState, ctx: &InstanceContext) -> InstanceState {
        InstanceState {
            ctx: WasiHttpCtx::new(),
            hooks: OutboundHttp {
                component: Arc::clone(&component.component),
                allowed: Arc::clone(&component.allowed),
                chain: Arc::clone(&ctx.chain),
            },
        }
    }
}

/// Links `wasi:http` for a store whose data is a `WasiHttpView` (which projects to this
/// state and to the WASI table the HTTP resources share).
pub fn add_to_linker<T: WasiHttpView + Send + 'static>(
    linker: &mut Linker<T>,
    _get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    // WASI 0.3's `wasi:http/client` sends through the same hooks (`WasiHttpHooks`).
    wasmtime_wasi_http::p3::add_to_linker(linker).map_err(anyhow::Error::from)
}

/// The outbound policy of one component instance.
pub struct OutboundHttp {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    chain: Arc<dyn Chain>,
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        if !self.allowed.allows(&scheme, &host, uri.port_u16()) {
            // As Spin words it, naming the entry that would allow the request.
            let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
            let pattern = format!("{scheme}://{authority}");
            // Spin's words (it names no component; this names it too).
            eprintln!(
                "Warning: A component (`{}`) tried to make an outbound network connection to \
                 disallowed destination '{pattern}'.\nTo allow this request, add \
                 'allowed_outbound_hosts = [\"{pattern}\"]' to the manifest component section.",
                self.component
            );
            // Through the response future, as on Spin: the guest's `handle` succeeds and
            // its response is the denial.
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Host names are case-insensitive: `NOTIFIER.spin.internal` is chained too, never
        // sent to DNS.
        let host = host.to_ascii_lowercase();
        if let Some(target) = host.strip_suffix(SERVICE_CHAINING_SUFFIX) {
            let response = self.chain.chain(target, request);
            return Box::new(async move {
                let response = response.await?;
                Ok((response, Box::new(async { Ok(()) }) as IoFuture))
            });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}
