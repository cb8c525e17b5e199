//! The `stock` HTTP component: what the order service calls. Deduct (single and batch),
//! restock, and each product's stock ledger.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

mod dto;
mod routes;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    inventory::serve(req, out, "stock", routes::ROUTES).await
}
