//! The `events` HTTP component: what operators see and do about events to order services.
//! Pending and dead events, delivery on demand (a Kubernetes CronJob calls it where nothing
//! else would run retries), and redelivery of one event. Delivery itself is the private
//! `notifier` component's. And `GET /metrics`, the app's figures for Prometheus.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The WASI 0.2 build's entry point is spin-sdk 5's `#[http_component]`, which expands to
// paths under `spin_sdk`; the WASI 0.3 one needs no SDK of the component's own.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod dto;
mod metrics;
mod routes;

inventory::http_component!("events", routes::ROUTES);
