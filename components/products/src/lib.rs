//! The `products` HTTP component: the catalogue (`/product`, `/product/{id}`) and `/health`.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

mod conditional;
mod dto;
mod routes;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    inventory::serve(req, out, "products", routes::ROUTES).await
}
