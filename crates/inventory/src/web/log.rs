//! The access log: one JSON line per request on stdout. Never a token, a secret or a body.

use serde_json::{json, Map, Value};

use crate::web::context::Ctx;

pub struct AccessEntry<'a> {
    pub ctx: &'a Ctx,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Why the request failed, when the response does not say (a 500's cause).
    pub error: Option<&'a str>,
}

pub fn access(entry: &AccessEntry<'_>) {
    let ctx = entry.ctx;
    let mut line = Map::new();
    line.insert("ts".into(), json!(crate::time::now_rfc3339()));
    line.insert("request_id".into(), json!(ctx.request_id));
    line.insert("ip".into(), json!(ctx.client_ip()));
    line.insert("method".into(), json!(entry.method));
    line.insert("path".into(), json!(entry.path));
    line.insert("status".into(), json!(entry.status));
    let micros = ctx.started.elapsed().as_micros();
    line.insert(
        "duration_ms".into(),
        json!(format!("{}.{:03}", micros / 1000, micros % 1000)
            .parse::<serde_json::Number>()
            .ok()),
    );
    if let Some(sub) = &ctx.sub {
        line.insert("sub".into(), json!(sub));
    }
    line.insert("component".into(), json!(ctx.component));
    if let Some(error) = entry.error {
        line.insert("error".into(), json!(error));
    }
    println!("{}", Value::Object(line));
}
