//! Outbound HTTP from components. Spin denies every request whose origin the component's
//! `allowed_outbound_hosts` does not list; this host lists none yet, so it denies them all.

use std::future::Future;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The outbound policy of one component instance.
#[derive(Debug, Default)]
pub struct OutboundHttp;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
