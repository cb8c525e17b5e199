//! The `products` HTTP component: the catalogue (`/product`, `/product/{id}`), locations
//! (`/locations`) and each product's stock levels (`/product/{id}/stock`), and `/health`.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The WASI 0.2 build's entry point is spin-sdk 5's `#[http_component]`, which expands to
// paths under `spin_sdk`; the WASI 0.3 one needs no SDK of the component's own.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod conditional;
mod dto;
mod locations;
mod routes;

inventory::http_component!("products", routes::ROUTES);
