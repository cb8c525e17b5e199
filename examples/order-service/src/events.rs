//! The inventory's events (Standard Webhooks 1.0), verified with the `standardwebhooks` crate:
//! a bad or missing signature, or a timestamp more than 5 minutes off, is refused (401), so
//! the inventory retries it; a duplicate (`webhook-id` seen before) or a stale event (an
//! older `data.version` than one applied) is acknowledged and dropped. A product's events
//! tell its stock; `reservation.expired` tells that an order's hold ran out unpaid.

use serde_json::{json, Value};
use spin_sdk::http::{Params, Request, Response};
use spin_sdk::sqlite::{Connection, Value as Sql};
use standardwebhooks::Webhook;

use crate::db::{self, text};
use crate::{error, json, orders, status};

/// What an event is about.
enum Subject<'a> {
    /// A product's event: its stock, at `version`.
    Product {
        product_id: i64,
        version: i64,
        data: &'a Value,
    },
    /// A hold's event, for the order `order_id`.
    Hold { order_id: &'a str },
}

/// `POST /inventory-events`.
pub fn receive_event(req: Request, _params: Params) -> Response {
    if let Err(e) = verify(&req) {
        return error(
            status::UNAUTHORIZED,
            format!("the event's signature does not verify: {e}"),
        );
    }
    let Some(id) = req.header("webhook-id").and_then(|v| v.as_str()) else {
        return error(status::BAD_REQUEST, "no webhook-id");
    };
    let event: Value = match serde_json::from_slice(req.body()) {
        Ok(event) => event,
        Err(e) => return error(status::BAD_REQUEST, format!("the event is not JSON: {e}")),
    };
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let subject = if kind.starts_with("reservation.") {
        event
            .pointer("/data/order_id")
            .and_then(Value::as_str)
            .map(|order_id| Subject::Hold { order_id })
    } else {
        match (
            event.pointer("/data/product_id").and_then(Value::as_i64),
            event.pointer("/data/version").and_then(Value::as_i64),
            event.get("data"),
        ) {
            (Some(product_id), Some(version), Some(data)) => Some(Subject::Product {
                product_id,
                version,
                data,
            }),
            _ => None,
        }
    };
    let Some(subject) = subject else {
        return error(
            status::BAD_REQUEST,
            "an event has a type, and data.product_id and data.version (or, for a hold, \
             data.order_id)",
        );
    };
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    match apply(&conn, id, kind, &subject) {
        Ok(outcome) => {
            println!("{}", json!({"event": id, "type": kind, "outcome": outcome}));
            Response::builder().status(status::NO_CONTENT).build()
        }
        // Not acknowledged: the inventory delivers it again later.
        Err(e) => error(status::SERVICE_UNAVAILABLE, e),
    }
}

fn verify(req: &Request) -> Result<(), String> {
    let secret = spin_sdk::variables::get("inventory_events_secret")
        .map_err(|e| format!("the variable `inventory_events_secret`: {e}"))?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    // During a rotation the inventory signs with both secrets; either verifies.
    Webhook::new(secret.trim())
        .map_err(|e| e.to_string())?
        .verify(req.body(), &headers)
        .map_err(|e| e.to_string())
}

/// Records the event once: duplicates and stale versions are dropped, the rest applied to
/// what this service knows of the product, or of the order. One transaction.
fn apply(
    conn: &Connection,
    id: &str,
    kind: &str,
    subject: &Subject<'_>,
) -> Result<&'static str, String> {
    let run = |sql: &str, params: &[Sql]| {
        conn.execute(sql, params)
            .map_err(|e| format!("recording the event: {e}"))
    };
    run("BEGIN IMMEDIATE", &[])?;
    let result = (|| {
        let seen = run("SELECT 1 FROM seen_events WHERE id = ?", &[text(id)])?;
        if seen.rows().next().is_some() {
            return Ok("duplicate");
        }
        let outcome = match subject {
            Subject::Product {
                product_id,
                version,
                data,
            } => apply_to_product(conn, kind, *product_id, *version, data)?,
            Subject::Hold { order_id } if kind == "reservation.expired" => {
                if orders::expire(conn, order_id)? {
                    "applied"
                } else {
                    "stale"
                }
            }
            Subject::Hold { .. } => "noted",
        };
        run(
            "INSERT INTO seen_events (id, type, outcome) VALUES (?, ?, ?)",
            &[text(id), text(kind), text(outcome)],
        )?;
        // Ids are remembered a week, far longer than the inventory retries (72 hours); a
        // few older ones go with each event.
        run(
            "DELETE FROM seen_events WHERE id IN (SELECT id FROM seen_events \
             WHERE received_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days') LIMIT 10)",
            &[],
        )?;
        Ok(outcome)
    })();
    match result {
        Ok(outcome) => run("COMMIT", &[]).map(|_| outcome),
        Err(e) => {
            let _ = run("ROLLBACK", &[]);
            Err(e)
        }
    }
}

/// What a product's event says of its stock, unless an event of a later version was applied.
fn apply_to_product(
    conn: &Connection,
    kind: &str,
    product_id: i64,
    version: i64,
    data: &Value,
) -> Result<&'static str, String> {
    let run = |sql: &str, params: &[Sql]| {
        conn.execute(sql, params)
            .map_err(|e| format!("recording the event: {e}"))
    };
    {
        let known = run(
            "SELECT version FROM inventory WHERE product_id = ?",
            &[Sql::Integer(product_id)],
        )?;
        let known_version = known
            .rows()
            .next()
            .and_then(|row| row.get::<i64>("version"));
        // Events of one change share its version: only an older one is stale.
        let outcome = if known_version.is_some_and(|known| known > version) {
            "stale"
        } else {
            let stock = data
                .get("stock")
                .and_then(Value::as_i64)
                .map_or(Sql::Null, Sql::Integer);
            let sku = data
                .get("sku")
                .and_then(Value::as_str)
                .map_or(Sql::Null, text);
            run(
                "INSERT INTO inventory (product_id, sku, stock, version, deleted, last_event) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (product_id) DO UPDATE SET sku = coalesce(excluded.sku, sku), \
                 stock = coalesce(excluded.stock, stock), version = excluded.version, \
                 deleted = excluded.deleted, last_event = excluded.last_event",
                &[
                    Sql::Integer(product_id),
                    sku,
                    stock,
                    Sql::Integer(version),
                    Sql::Integer(i64::from(kind == "product.deleted")),
                    text(kind),
                ],
            )?;
            "applied"
        };
        Ok(outcome)
    }
}

/// `GET /inventory`: the stock of each product, as the events told it.
pub fn list_inventory(_req: Request, _params: Params) -> Response {
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    let result = match conn.execute(
        "SELECT product_id, sku, stock, version, deleted, last_event FROM inventory \
         ORDER BY product_id",
        &[],
    ) {
        Ok(result) => result,
        Err(e) => {
            return error(
                status::SERVICE_UNAVAILABLE,
                format!("reading the inventory: {e}"),
            )
        }
    };
    let items: Vec<Value> = result
        .rows()
        .map(|row| {
            json!({
                "product_id": row.get::<i64>("product_id"),
                "sku": row.get::<&str>("sku"),
                "stock": row.get::<i64>("stock"),
                "version": row.get::<i64>("version"),
                "deleted": row.get::<i64>("deleted") == Some(1),
                "last_event": row.get::<&str>("last_event"),
            })
        })
        .collect();
    json(status::OK, &json!({"items": items}))
}
