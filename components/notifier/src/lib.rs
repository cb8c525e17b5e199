//! The `notifier` component: on a private route, reached only by Spin service chaining
//! (`http://notifier.spin.internal`) from the app's own components. It delivers the outbox's
//! events to every URL of `order_events_urls`, signed as Standard Webhooks 1.0 with
//! `events_secret`.
//!
//! - `POST /notify`: answers 202 at once, then, as the one active notifier, delivers what is
//!   due; while a receiver fails it retries with backoff inside this invocation for a bounded
//!   time, then leaves the rows due for the next change or `POST /events/deliver`.
//! - `POST /deliver`: one pass over what is due now; answers with the counts.

// The entry point expands to the SDK's export glue, which is `unsafe`.
#![allow(unsafe_code)]

// The WASI 0.2 build's entry point is spin-sdk 5's `#[http_component]`, which expands to
// paths under `spin_sdk`; the WASI 0.3 one needs no SDK of the component's own.
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

mod deliver;
mod webhook;

use futures::future::LocalBoxFuture;
use inventory::web::http::{status, Method};
use inventory::web::notify::{DELIVER_PATH, NOTIFY_PATH};
use inventory::{Access, ApiError, Call, Handler, Resp, Route};
use serde_json::json;

const ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: NOTIFY_PATH,
        access: Access::Open,
        handler: Handler::Sync(notify),
    },
    Route {
        method: Method::Post,
        path: DELIVER_PATH,
        access: Access::Open,
        handler: Handler::Async(deliver_now),
    },
];

inventory::http_component!(private "notifier", ROUTES);

/// `POST /notify`: accepted; delivery runs after the response, until nothing is due.
fn notify(call: &Call<'_>) -> Result<Resp, ApiError> {
    let request_id = call.ctx.request_id.clone();
    Ok(
        Resp::json(status::ACCEPTED, &json!({"status": "accepted"})).then(async move {
            if let Err(err) = deliver::until_idle(&request_id).await {
                eprintln!("{request_id}: delivery stopped: {err}");
            }
        }),
    )
}

/// `POST /deliver`: one pass, with its counts.
fn deliver_now<'c>(_call: &'c Call<'c>) -> LocalBoxFuture<'c, Result<Resp, ApiError>> {
    Box::pin(async {
        let counts = deliver::once().await.map_err(|err| match err {
            // A database that is busy, or whose schema is behind, is a 503 as everywhere.
            deliver::DeliverError::Store(err) => ApiError::from(err),
            err => ApiError::Internal(format!("delivery failed: {err}")),
        })?;
        Ok(Resp::json(status::OK, &counts.to_json()))
    })
}
