//! The `reservations` HTTP component: checkout holds for the order service. A hold takes
//! units out of `available` while a customer pays; it ends by commit (the units are
//! deducted), release, or expiry (nobody came back). Its own component: holds are a
//! resource of their own (`/reservations`) with their own lifecycle, beside the direct
//! stock changes of `stock`.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The SDK of this build, by the name the entry point's expansion uses: spin-sdk 7 (WASI 0.3)
// by default, spin-sdk 5 (WASI 0.2) with the `wasip2` feature.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod dto;
mod routes;

inventory::http_component!("reservations", routes::ROUTES);
