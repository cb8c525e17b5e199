//! Outbound HTTP (`wasi:http/outgoing-handler@0.2.0`) as a component sees it: it posts
//! `Hello, world!` to the URL of its `url` header and streams the answer back, status and
//! headers included. A destination the manifest does not allow is refused through the
//! response future (`ErrorCode::HttpRequestDenied`), never connected to.

// `export!` expands to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

use conformance_helper::respond;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wasi::io::streams::StreamError;

const BODY: &[u8] = b"Hello, world!";

struct App;

impl wasi::exports::http::incoming_handler::Guest for App {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let Some(url) = url_header(&request) else {
            return respond(out, 400, b"missing header: url");
        };
        match post(&url) {
            Ok(response) => relay(response, out),
            Err(text) => respond(out, 500, text.as_bytes()),
        }
    }
}

wasi::http::proxy::export!(App);

/// A URL split as the request needs it.
struct Url {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

fn url_header(request: &IncomingRequest) -> Option<Url> {
    let value = request
        .headers()
        .get(&"url".to_owned())
        .into_iter()
        .next()?;
    let text = String::from_utf8(value).ok()?;
    let (scheme, rest) = text.split_once("://")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    Some(Url {
        scheme,
        authority: authority.to_owned(),
        path_with_query: path.to_owned(),
    })
}

/// Posts `BODY` to `url` and waits for the answer's head.
fn post(url: &Url) -> Result<IncomingResponse, String> {
    let headers = Fields::new();
    headers
        .append(
            &"content-length".to_owned(),
            &BODY.len().to_string().into_bytes(),
        )
        .map_err(|e| format!("fields.append: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("{what} refused"));
    set(request.set_method(&Method::Post), "method")?;
    set(
        request.set_path_with_query(Some(&url.path_with_query)),
        "path",
    )?;
    set(request.set_scheme(Some(&url.scheme)), "scheme")?;
    set(request.set_authority(Some(&url.authority)), "authority")?;
    let body = request
        .body()
        .map_err(|()| "the request body was taken".to_owned())?;
    {
        let stream = body
            .write()
            .map_err(|()| "the request stream was taken".to_owned())?;
        stream
            .blocking_write_and_flush(BODY)
            .map_err(|e| format!("writing the request: {e:?}"))?;
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("finishing the request: {e:?}"))?;
    let future = outgoing_handler::handle(request, None)
        .map_err(|e| format!("outgoing-handler/handle: {e:?}"))?;
    loop {
        match future.get() {
            None => future.subscribe().block(),
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(format!("incoming-response#get: {code:?}")),
            Some(Err(())) => return Err("incoming-response#get: taken twice".to_owned()),
        }
    }
}

/// Sends the upstream's answer on: its status and headers at once, its body as it comes.
fn relay(upstream: IncomingResponse, out: ResponseOutparam) {
    let response = OutgoingResponse::new(upstream.headers().clone());
    let _ = response.set_status_code(upstream.status());
    let (Ok(incoming), Ok(outgoing)) = (upstream.consume(), response.body()) else {
        return respond(out, 500, b"the bodies were taken");
    };
    let (Ok(source), Ok(sink)) = (incoming.stream(), outgoing.write()) else {
        return respond(out, 500, b"the streams were taken");
    };
    ResponseOutparam::set(out, Ok(response));
    loop {
        match source.blocking_read(1024) {
            Ok(chunk) => {
                if sink.blocking_write_and_flush(&chunk).is_err() {
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                eprintln!("reading the upstream body: {}", err.to_debug_string());
                break;
            }
        }
    }
    drop(sink);
    let _ = OutgoingBody::finish(outgoing, None);
}
