//! An example order service, a Spin app of its own beside the inventory service, checking
//! out with the inventory's holds:
//!
//! - `POST /orders {"lines": [{"product_id", "quantity"}], "hold_seconds"?}` places an
//!   order: one all-or-nothing hold at the inventory (`POST /reservations`) with a service
//!   token, the order id as the `Idempotency-Key` (so `POST /orders/{id}/place` can retry
//!   it safely); the order awaits payment;
//! - `POST /orders/{id}/pay` commits the hold: the sale, the units deducted;
//! - `POST /orders/{id}/cancel` releases the hold (or, once paid, gives the stock back, a
//!   restock per line);
//! - an order left unpaid lets its hold expire: the inventory's `reservation.expired` event
//!   marks it `expired`, and a late payment is refused;
//! - `POST /inventory-events` receives the inventory's events, verified with the
//!   `standardwebhooks` crate, dropping duplicates (by `webhook-id`) and stale ones (by
//!   `data.version`); `GET /inventory` shows the stock it has learnt that way.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

extern crate spin_sdk_wasip2 as spin_sdk;

mod db;
mod events;
mod inventory;
mod orders;

use spin_sdk::http::{Request, Response, Router};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> Response {
    let mut router = Router::new();
    router.post_async("/orders", orders::place_order);
    router.get("/orders/:id", orders::get_order);
    router.post_async("/orders/:id/place", orders::retry_order);
    router.post_async("/orders/:id/pay", orders::pay_order);
    router.post_async("/orders/:id/cancel", orders::cancel_order);
    router.post("/inventory-events", events::receive_event);
    router.get("/inventory", events::list_inventory);
    router.handle_async(req).await
}

/// Status codes this service answers with, by name.
pub(crate) mod status {
    pub const OK: u16 = 200;
    pub const CREATED: u16 = 201;
    pub const NO_CONTENT: u16 = 204;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const NOT_FOUND: u16 = 404;
    pub const CONFLICT: u16 = 409;
    pub const UNPROCESSABLE_CONTENT: u16 = 422;
    pub const BAD_GATEWAY: u16 = 502;
    pub const SERVICE_UNAVAILABLE: u16 = 503;
}

/// A JSON response.
pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// An error response: `{"error": "..."}`.
pub(crate) fn error(status: u16, message: impl std::fmt::Display) -> Response {
    json(status, &serde_json::json!({"error": message.to_string()}))
}
