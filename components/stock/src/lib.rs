//! The `stock` HTTP component: what the order service calls. Deduct (single and batch),
//! restock, and each product's stock ledger.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The SDK of this build, by the name the entry point's expansion uses: spin-sdk 7 (WASI 0.3)
// by default, spin-sdk 5 (WASI 0.2) with the `wasip2` feature.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod dto;
mod routes;

inventory::http_component!("stock", routes::ROUTES);
