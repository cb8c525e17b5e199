//! The edge on spin-sdk 5 (`wasi:http/incoming-handler@0.2.0`), for Spin hosts before WASI
//! 0.3 final: one instance per request. The response is sent whole first; what it leaves
//! for after it runs before the handler returns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use spin_executor::CancelOnDropToken;
use spin_sdk::http::{
    ErrorCode, Fields, IncomingResponse, Method as SdkMethod, OutgoingBody, OutgoingRequest,
    OutgoingResponse, Scheme as SdkScheme,
};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{FutureIncomingResponse, RequestOptions};
use wasi::clocks::monotonic_clock;

use super::{Answer, BodyError, Head, Post, Reply, Scheme, SendError};

pub use spin_sdk::http::{IncomingRequest, ResponseOutparam};

/// The request's body, unread until the pipeline asks.
pub struct Body(IncomingRequest);

impl Body {
    /// The whole body, or `TooLarge` once it passes `limit` bytes, having read on (and
    /// dropped what it read) to its end or to `drain` bytes in all (see `BodyError::TooLarge`).
    pub async fn read(self, limit: usize, drain: usize) -> Result<Vec<u8>, BodyError> {
        let mut body = Vec::new();
        let mut seen = 0;
        let mut stream = self.0.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| BodyError::Failed(format!("{err:?}")))?;
            seen += chunk.len();
            if seen > drain {
                return Err(BodyError::TooLarge);
            }
            if seen <= limit {
                body.extend_from_slice(&chunk);
            }
        }
        if seen > limit {
            return Err(BodyError::TooLarge);
        }
        Ok(body)
    }
}

/// Serves one request: `pipeline` answers it from its head and body; its reply is sent
/// whole, then its `after` runs.
pub async fn serve<F, Fut>(incoming: IncomingRequest, out: ResponseOutparam, pipeline: F)
where
    F: FnOnce(Head, Body) -> Fut,
    Fut: Future<Output = Reply>,
{
    let head = Head {
        method: method_name(&incoming.method()),
        path_with_query: incoming.path_with_query().unwrap_or_else(|| "/".to_owned()),
        headers: incoming.headers().entries(),
    };
    let reply = pipeline(head, Body(incoming)).await;
    let (response, status, body) = match Fields::from_list(&reply.headers) {
        Ok(fields) => (OutgoingResponse::new(fields), reply.status, reply.body),
        Err(err) => {
            eprintln!(
                "{}: a response header was refused ({err:?}); answering 500",
                reply.request_id
            );
            (OutgoingResponse::new(Fields::new()), 500, Vec::new())
        }
    };
    if response.set_status_code(status).is_err() {
        eprintln!("{}: the status {status} was refused", reply.request_id);
    }
    if let Err(err) = out.set_with_body(response, body).await {
        // The client went away; nothing else to tell it.
        eprintln!(
            "{}: the response body could not be sent: {err:?}",
            reply.request_id
        );
    }
    reply.after.await;
}

fn method_name(method: &SdkMethod) -> &'static str {
    match method {
        SdkMethod::Get => "GET",
        SdkMethod::Head => "HEAD",
        SdkMethod::Post => "POST",
        SdkMethod::Put => "PUT",
        SdkMethod::Patch => "PATCH",
        SdkMethod::Delete => "DELETE",
        SdkMethod::Options => "OPTIONS",
        _ => "OTHER",
    }
}

/// Sends `post` over `wasi:http/outgoing-handler` and reads the answer whole. The body is
/// written before the answer is awaited; if the request was refused (a denied host),
/// writing fails and the answer says why, so the answer is what counts.
pub async fn send(post: Post<'_>) -> Result<Answer, SendError> {
    let fields = Fields::from_list(&post.header_list())
        .map_err(|err| SendError::Failed(format!("a header: {err:?}")))?;
    let request = OutgoingRequest::new(fields);
    let scheme = match post.scheme {
        Scheme::Http => SdkScheme::Http,
        Scheme::Https => SdkScheme::Https,
    };
    request
        .set_method(&SdkMethod::Post)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(Some(post.authority)))
        .and(request.set_path_with_query(Some(post.path_with_query)))
        .map_err(|()| SendError::Failed("the URL is not usable".to_owned()))?;
    let outgoing_body = request
        .body()
        .map_err(|()| SendError::Failed("the request body is not writable".to_owned()))?;
    let options = post.timeout_nanos().map(|nanos| {
        let options = RequestOptions::new();
        // Each is an option the host may not support; the caller's own timeout still holds.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let pending = outgoing_handler::handle(request, options).map_err(describe)?;
    if let Ok(stream) = outgoing_body.write() {
        for chunk in post.body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing_body, None);
    let response = answer(&pending).await?;
    let status = response.status();
    let body = response
        .into_body()
        .await
        .map_err(|err| SendError::Failed(format!("the answer's body: {err:?}")))?;
    Ok(Answer { status, body })
}

/// Waits for the answer to a request, letting the executor run other futures meanwhile.
async fn answer(pending: &FutureIncomingResponse) -> Result<IncomingResponse, SendError> {
    let mut registration: Option<CancelOnDropToken> = None;
    let result = std::future::poll_fn(|cx| match pending.get() {
        Some(result) => Poll::Ready(result),
        None => {
            registration = Some(
                spin_executor::push_waker_and_get_token(pending.subscribe(), cx.waker().clone())
                    .into(),
            );
            Poll::Pending
        }
    })
    .await;
    drop(registration);
    match result {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(describe(code)),
        Err(()) => Err(SendError::Failed("the answer was already taken".to_owned())),
    }
}

fn describe(code: ErrorCode) -> SendError {
    match code {
        ErrorCode::HttpRequestDenied => SendError::Denied,
        ErrorCode::ConnectionRefused => SendError::Refused,
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => SendError::TimedOut,
        other => SendError::Failed(format!("{other:?}")),
    }
}

/// Resolves after `duration`: a timer on the WASI monotonic clock that the SDK's executor
/// wakes, so other futures (deliveries in flight, say) go on meanwhile.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    Sleep {
        deadline: monotonic_clock::now().saturating_add(nanos),
        registration: None,
    }
}

struct Sleep {
    deadline: u64,
    /// The clock's pollable, registered with the executor; dropping it unregisters.
    registration: Option<CancelOnDropToken>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if monotonic_clock::now() >= self.deadline {
            self.registration = None;
            return Poll::Ready(());
        }
        let pollable = monotonic_clock::subscribe_instant(self.deadline);
        self.registration =
            Some(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    }
}

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    wasi::random::random::get_random_bytes(u64::try_from(len).unwrap_or(u64::MAX))
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    wasi::random::random::get_random_u64()
}

#[doc(hidden)]
#[macro_export]
macro_rules! __entry_point {
    ($pipeline:expr) => {
        #[spin_sdk::http_component]
        async fn handle(
            request: $crate::edge::IncomingRequest,
            out: $crate::edge::ResponseOutparam,
        ) {
            $crate::edge::serve(request, out, $pipeline).await
        }
    };
}
