//! The `reservations` HTTP component: checkout holds for the order service. A hold takes
//! units out of `available` while a customer pays; it ends by commit (the units are
//! deducted), release, or expiry (nobody came back). Its own component: holds are a
//! resource of their own (`/reservations`) with their own lifecycle, beside the direct
//! stock changes of `stock`.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

mod dto;
mod routes;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    inventory::serve(req, out, "reservations", routes::ROUTES).await
}
