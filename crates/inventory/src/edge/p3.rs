//! The edge on spin-sdk 7 (`wasi:http/handler@0.3.0`). A request's task lives on after its
//! response is returned: the body is written, then what the response leaves for after it
//! runs, in a task of its own (`spawn`), while the instance takes other requests.

use std::future::Future;
use std::time::Duration;

use spin_sdk::wasip3::http::types::{
    ErrorCode, Fields, Method as WasiMethod, RequestOptions, Scheme as WasiScheme,
};
use spin_sdk::wasip3::wit_bindgen::{FutureReader, StreamReader, StreamResult};
use spin_sdk::wasip3::{http::client, random::random, wit_future, wit_stream};

use super::{Answer, BodyError, Head, Post, Reply, Scheme, SendError};

pub use spin_sdk::wasip3;
pub use spin_sdk::wasip3::http::types::{Request, Response};

/// How much of a body one read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// The request's body, unread until the pipeline asks.
pub struct Body(Request);

impl Body {
    /// The whole body, or `TooLarge` once it passes `limit` bytes, having read on (and
    /// dropped what it read) to its end or to `drain` bytes in all (see `BodyError::TooLarge`).
    pub async fn read(self, limit: usize, drain: usize) -> Result<Vec<u8>, BodyError> {
        let (result, reader) = wit_future::new(|| Ok(()));
        let (stream, trailers) = Request::consume_body(self.0, reader);
        let body = read_stream(stream, trailers, limit, drain).await;
        drop(result);
        body
    }
}

/// Reads `stream` to its end, then its trailers' future, which says whether it ended whole.
async fn read_stream(
    mut stream: StreamReader<u8>,
    trailers: FutureReader<Result<Option<Fields>, ErrorCode>>,
    limit: usize,
    drain: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    let mut seen = 0;
    loop {
        let (result, chunk) = stream.read(Vec::with_capacity(READ_CHUNK)).await;
        match result {
            StreamResult::Complete(_) => {
                seen += chunk.len();
                if seen > drain {
                    return Err(BodyError::TooLarge);
                }
                if seen <= limit {
                    body.extend_from_slice(&chunk);
                }
            }
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    let ended = trailers.await;
    if seen > limit {
        return Err(BodyError::TooLarge);
    }
    match ended {
        Ok(_) => Ok(body),
        Err(code) => Err(BodyError::Failed(format!("{code:?}"))),
    }
}

/// Serves one request: `pipeline` answers it from its head and body; its reply is returned
/// to the host, and its body written and its `after` run in a task of the request's own
/// that outlives this call.
pub async fn serve<F, Fut>(request: Request, pipeline: F) -> Response
where
    F: FnOnce(Head, Body) -> Fut,
    Fut: Future<Output = Reply>,
{
    let head = Head {
        method: method_name(&request.get_method()),
        path_with_query: request
            .get_path_with_query()
            .unwrap_or_else(|| "/".to_owned()),
        headers: request.get_headers().copy_all(),
    };
    let reply = pipeline(head, Body(request)).await;
    let (status, fields, body) = match Fields::from_list(&reply.headers) {
        Ok(fields) => (reply.status, fields, reply.body),
        Err(err) => {
            eprintln!(
                "{}: a response header was refused ({err:?}); answering 500",
                reply.request_id
            );
            (500, Fields::new(), Vec::new())
        }
    };
    let (mut body_writer, body_reader) = wit_stream::new();
    let (trailers_writer, trailers_reader) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(fields, Some(body_reader), trailers_reader);
    if response.set_status_code(status).is_err() {
        eprintln!("{}: the status {status} was refused", reply.request_id);
    }
    let (request_id, after) = (reply.request_id, reply.after);
    spin_sdk::wasip3::spawn(async move {
        let unsent = body_writer.write_all(body).await;
        drop(body_writer);
        if !unsent.is_empty() {
            // The client went away; nothing else to tell it.
            eprintln!("{request_id}: the response body could not be sent whole");
        }
        let _ = trailers_writer.write(Ok(None)).await;
        after.await;
    });
    response
}

fn method_name(method: &WasiMethod) -> &'static str {
    match method {
        WasiMethod::Get => "GET",
        WasiMethod::Head => "HEAD",
        WasiMethod::Post => "POST",
        WasiMethod::Put => "PUT",
        WasiMethod::Patch => "PATCH",
        WasiMethod::Delete => "DELETE",
        WasiMethod::Options => "OPTIONS",
        _ => "OTHER",
    }
}

/// Sends `post` and reads the answer whole.
pub async fn send(post: Post<'_>) -> Result<Answer, SendError> {
    let fields = Fields::from_list(&post.header_list())
        .map_err(|err| SendError::Failed(format!("a header: {err:?}")))?;
    let options = post.timeout_nanos().map(|nanos| {
        let options = RequestOptions::new();
        // Each is an option the host may not support; the caller's own timeout still holds.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let (mut body_writer, body_reader) = wit_stream::new();
    let (trailers_writer, trailers_reader) = wit_future::new(|| Ok(None));
    let (request, _sent) = Request::new(fields, Some(body_reader), trailers_reader, options);
    let scheme = match post.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    request
        .set_method(&WasiMethod::Post)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(Some(post.authority)))
        .and(request.set_path_with_query(Some(post.path_with_query)))
        .map_err(|()| SendError::Failed("the URL is not usable".to_owned()))?;
    let body = post.body.to_vec();
    let write = async move {
        // Refused requests drop the body's reader: the write ends, and the answer says why.
        let _ = body_writer.write_all(body).await;
        drop(body_writer);
        let _ = trailers_writer.write(Ok(None)).await;
    };
    let (answer, ()) = futures::join!(client::send(request), write);
    let response = answer.map_err(describe)?;
    let status = response.get_status_code();
    let (result, reader) = wit_future::new(|| Ok(()));
    let (stream, trailers) = Response::consume_body(response, reader);
    let body = read_stream(stream, trailers, usize::MAX, usize::MAX)
        .await
        .map_err(|err| SendError::Failed(format!("the answer's body: {err:?}")))?;
    drop(result);
    Ok(Answer { status, body })
}

fn describe(code: ErrorCode) -> SendError {
    match code {
        ErrorCode::HttpRequestDenied => SendError::Denied,
        ErrorCode::ConnectionRefused => SendError::Refused,
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => SendError::TimedOut,
        other => SendError::Failed(format!("{other:?}")),
    }
}

/// Resolves after `duration`; other requests of the instance go on meanwhile.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> {
    spin_sdk::time::sleep(duration)
}

/// `len` random bytes (WASI may hand them over in several reads).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let wanted = u64::try_from(len - bytes.len()).unwrap_or(u64::MAX);
        bytes.extend(random::get_random_bytes(wanted));
    }
    bytes.truncate(len);
    bytes
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    random::get_random_u64()
}

#[doc(hidden)]
#[macro_export]
macro_rules! __entry_point {
    ($pipeline:expr) => {
        /// The component's export of `wasi:http/handler@0.3.0`.
        struct InventoryHttpEntry;

        $crate::edge::wasip3::http::service::export!(InventoryHttpEntry);

        impl $crate::edge::wasip3::exports::http::handler::Guest for InventoryHttpEntry {
            async fn handle(
                request: $crate::edge::Request,
            ) -> ::std::result::Result<
                $crate::edge::Response,
                $crate::edge::wasip3::http::types::ErrorCode,
            > {
                ::std::result::Result::Ok($crate::edge::serve(request, $pipeline).await)
            }
        }
    };
}
