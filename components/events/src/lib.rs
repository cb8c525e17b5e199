//! The `events` HTTP component: what operators see and do about events to order services.
//! Pending and dead events, delivery on demand (a Kubernetes CronJob calls it where nothing
//! else would run retries), and redelivery of one event. Delivery itself is the private
//! `notifier` component's. And `GET /metrics`, the app's figures for Prometheus.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

mod dto;
mod metrics;
mod routes;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    inventory::serve(req, out, "events", routes::ROUTES).await
}
