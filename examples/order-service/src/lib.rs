//! An example order service, a Spin app of its own beside the inventory service, checking
//! out with the inventory's holds:
//!
//! - `POST /orders {"lines": [{"product_id", "quantity"}], "hold_seconds"?}` places an
//!   order: one all-or-nothing hold at the inventory (`POST /reservations`) with a service
//!   token, the order id as the `Idempotency-Key` (so `POST /orders/{id}/place` can retry
//!   it safely), each line whole from the first location by priority that has it
//!   (`split: never`), else split; the order awaits payment;
//! - `POST /orders/{id}/pay` commits the hold: the sale, the units deducted;
//! - `POST /orders/{id}/cancel` releases the hold (or, once paid, gives the stock back
//!   where it was sold from, a restock per line and location);
//! - an order left unpaid lets its hold expire: the inventory's `reservation.expired` event
//!   marks it `expired`, and a late payment is refused;
//! - `POST /inventory-events` receives the inventory's events, verified with the
//!   `standardwebhooks` crate, dropping duplicates (by `webhook-id`) and stale ones (by
//!   `data.version`); `GET /inventory` shows the stock it has learnt that way.
//!
//! A spin-sdk 7 component (`wasi:http/handler@0.3.0`): Spin 4.1 and later reuse its
//! instances across requests, so nothing of a request is kept beyond it.

// `#[http_service]` expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

mod db;
mod events;
mod inventory;
mod orders;

use http_body_util::BodyExt;
use spin_sdk::http::{HeaderMap, Method, Request};
use spin_sdk::http_service;

/// What this service answers with.
pub(crate) type Reply = http::Response<String>;

/// The largest request body read.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// A request's headers and whole body.
pub(crate) struct Incoming {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[http_service]
async fn handle(req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let incoming = Incoming {
        headers: parts.headers,
        body,
    };
    let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["orders"]) => orders::place_order(&incoming).await,
        (&Method::GET, ["orders", id]) => orders::get_order(id).await,
        (&Method::POST, ["orders", id, "place"]) => orders::retry_order(id).await,
        (&Method::POST, ["orders", id, "pay"]) => orders::pay_order(id).await,
        (&Method::POST, ["orders", id, "cancel"]) => orders::cancel_order(id).await,
        (&Method::POST, ["inventory-events"]) => events::receive_event(&incoming).await,
        (&Method::GET, ["inventory"]) => events::list_inventory().await,
        (
            _,
            ["orders"]
            | ["orders", _]
            | ["orders", _, "place" | "pay" | "cancel"]
            | ["inventory-events"]
            | ["inventory"],
        ) => error(status::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(status::NOT_FOUND, "not found"),
    }
}

/// The request body, whole, up to `MAX_BODY_BYTES`.
async fn read_body(
    mut body: impl http_body::Body<Data = bytes::Bytes> + Unpin,
) -> Result<Vec<u8>, Reply> {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| error(status::BAD_REQUEST, "the body could not be read"))?;
        if let Some(data) = frame.data_ref() {
            if read.len() + data.len() > MAX_BODY_BYTES {
                return Err(error(status::PAYLOAD_TOO_LARGE, "the body is too large"));
            }
            read.extend_from_slice(data);
        }
    }
    Ok(read)
}

/// Status codes this service answers with, by name.
pub(crate) mod status {
    pub const OK: u16 = 200;
    pub const CREATED: u16 = 201;
    pub const NO_CONTENT: u16 = 204;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const NOT_FOUND: u16 = 404;
    pub const METHOD_NOT_ALLOWED: u16 = 405;
    pub const CONFLICT: u16 = 409;
    pub const PAYLOAD_TOO_LARGE: u16 = 413;
    pub const UNPROCESSABLE_CONTENT: u16 = 422;
    pub const BAD_GATEWAY: u16 = 502;
    pub const SERVICE_UNAVAILABLE: u16 = 503;
}

/// A response with `status` and `body` (`content-type` when it has one).
pub(crate) fn reply(status: u16, content_type: Option<&str>, body: String) -> Reply {
    let mut response = http::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(value) = content_type.and_then(|v| http::HeaderValue::from_str(v).ok()) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// A JSON response.
pub(crate) fn json(status: u16, body: &serde_json::Value) -> Reply {
    reply(status, Some("application/json"), body.to_string())
}

/// An error response: `{"error": "..."}`.
pub(crate) fn error(status: u16, message: impl std::fmt::Display) -> Reply {
    json(status, &serde_json::json!({"error": message.to_string()}))
}
