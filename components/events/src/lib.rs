//! The `events` HTTP component: what operators see and do about events to order services.
//! Pending and dead events, delivery on demand (a Kubernetes CronJob calls it where nothing
//! else would run retries), and redelivery of one event. Delivery itself is the private
//! `notifier` component's. And `GET /metrics`, the app's figures for Prometheus.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The SDK of this build, by the name the entry point's expansion uses: spin-sdk 7 (WASI 0.3)
// by default, spin-sdk 5 (WASI 0.2) with the `wasip2` feature.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod dto;
mod metrics;
mod routes;

inventory::http_component!("events", routes::ROUTES);
