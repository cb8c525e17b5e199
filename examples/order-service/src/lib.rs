//! An example order service, a Spin app of its own beside the inventory service:
//!
//! - `POST /orders {"lines": [{"product_id", "quantity"}]}` places an order: one all-or-nothing
//!   `POST /stock/deduct` at the inventory with a service token, the order id as the
//!   `Idempotency-Key` (so `POST /orders/{id}/place` can retry it safely);
//! - `POST /orders/{id}/cancel` gives the stock back, a restock per line;
//! - `POST /inventory-events` receives the inventory's events, verified with the
//!   `standardwebhooks` crate, dropping duplicates (by `webhook-id`) and stale ones (by
//!   `data.version`); `GET /inventory` shows the stock it has learnt that way.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

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
    router.post_async("/orders/:id/cancel", orders::cancel_order);
    router.post("/inventory-events", events::receive_event);
    router.get("/inventory", events::list_inventory);
    router.handle_async(req).await
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
