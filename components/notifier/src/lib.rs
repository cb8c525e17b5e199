//! The `notifier` component: on a private route, reached only by Spin service chaining
//! (`http://notifier.spin.internal`) from the app's own components. It delivers the outbox's
//! events to every URL of `order_events_urls`, signed as Standard Webhooks 1.0 with
//! `events_secret`.
//!
//! - `POST /notify`: answers 202 at once, then, as the one active notifier, delivers what is
//!   due; while a receiver fails it retries with backoff inside this invocation for a bounded
//!   time, then leaves the rows due for the next change or `POST /events/deliver`.
//! - `POST /deliver`: one pass over what is due now; answers with the counts.

// `#[http_component]` expands to the SDK's handle conversions, which are `unsafe`.
#![allow(unsafe_code)]

mod clock;
mod deliver;
mod webhook;

use inventory::web::context::Ctx;
use inventory::web::http::{header, Method, Req, Resp};
use inventory::web::pipeline::{method_of, send};
use inventory::web::{log, problem::ApiError};
use serde_json::json;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

const COMPONENT: &str = "notifier";

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let method = method_of(&incoming.method());
    let path = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let req = Req::new(method, &path, incoming.headers().entries());
    let ctx = Ctx::new(&req, COMPONENT);
    let (resp, then_deliver) = match (req.method, req.path.as_str()) {
        (Method::Post, "/notify") => (Resp::json(202, &json!({"status": "accepted"})), true),
        (Method::Post, "/deliver") => (deliver_now().await, false),
        (_, "/notify" | "/deliver") => {
            (error(ApiError::MethodNotAllowed(vec!["POST"]), &ctx), false)
        }
        _ => (
            error(
                ApiError::NotFound(format!("no resource at {}", req.path)),
                &ctx,
            ),
            false,
        ),
    };
    let status = resp.status;
    send(
        resp.with_header(header::REQUEST_ID, &ctx.request_id),
        out,
        &ctx.request_id,
    )
    .await;
    log::access(&log::AccessEntry {
        ctx: &ctx,
        method: method.as_str(),
        path: &req.path,
        status,
        error: None,
    });
    if then_deliver {
        if let Err(err) = deliver::until_idle().await {
            eprintln!("{}: delivery stopped: {err}", ctx.request_id);
        }
    }
}

/// `POST /deliver`: one pass, with its counts.
async fn deliver_now() -> Resp {
    match deliver::once().await {
        Ok(counts) => Resp::json(200, &counts.to_json()),
        Err(err) => Resp::json(500, &json!({"error": format!("delivery failed: {err}")})),
    }
}

fn error(err: ApiError, ctx: &Ctx) -> Resp {
    err.into_response(&ctx.request_id)
}
