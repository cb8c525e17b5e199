//! Outbound HTTP from components (`wasi:http/outgoing-handler`), as Spin allows it: a request
//! goes out only if the component's `allowed_outbound_hosts` covers its scheme, host and port
//! (`allowed_hosts.rs`); otherwise it fails with `HttpRequestDenied` and a warning names the
//! entry that would allow it. A request to `<component>.spin.internal` (service chaining) is
//! handed to that component inside the process, whatever its route, private ones included.

mod allowed_hosts;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use allowed_hosts::{AllowedHosts, SERVICE_CHAINING_SUFFIX};

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;
pub type ChainFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, Error>> + Send>>;

/// Runs a chained request in another component of the app (the HTTP trigger does).
pub trait Chain: Send + Sync {
    fn chain(&self, component: &str, request: http::Request<WasiBody>) -> ChainFuture;
}

/// The outbound policy of one component instance.
pub struct OutboundHttp {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    chain: Arc<dyn Chain>,
}

impl OutboundHttp {
    pub fn new(component: Arc<str>, allowed: Arc<AllowedHosts>, chain: Arc<dyn Chain>) -> Self {
        Self {
            component,
            allowed,
            chain,
        }
    }
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
            eprintln!(
                "Warning: component `{}` tried to make an outbound network connection to \
                 disallowed destination '{pattern}'. To allow this request, add \
                 'allowed_outbound_hosts = [\"{pattern}\"]' to the manifest component section.",
                self.component
            );
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
