//! The inventory's events (Standard Webhooks 1.0), verified with the `standardwebhooks` crate:
//! a bad or missing signature, or a timestamp more than 5 minutes off, is refused (401), so
//! the inventory retries it; a duplicate (`webhook-id` seen before) or a stale event (an
//! older `data.version` than one applied) is acknowledged and dropped. A product's events
//! tell its stock; `reservation.expired` tells that an order's hold ran out unpaid.

use serde_json::{json, Value};
use spin_sdk::sqlite::Value as Sql;
use standardwebhooks::Webhook;

use crate::db::{text, Db};
use crate::{error, inventory, json, orders, reply, status, Incoming, Reply};

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
pub async fn receive_event(req: &Incoming) -> Reply {
    if let Err(e) = verify(req).await {
        return error(
            status::UNAUTHORIZED,
            format!("the event's signature does not verify: {e}"),
        );
    }
    let Some(id) = req.headers.get("webhook-id").and_then(|v| v.to_str().ok()) else {
        return error(status::BAD_REQUEST, "no webhook-id");
    };
    let event: Value = match serde_json::from_slice(&req.body) {
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
    let db = match Db::open().await {
        Ok(db) => db,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    match apply(&db, id, kind, &subject).await {
        Ok(outcome) => {
            println!("{}", json!({"event": id, "type": kind, "outcome": outcome}));
            reply(status::NO_CONTENT, None, String::new())
        }
        // Not acknowledged: the inventory delivers it again later.
        Err(e) => error(status::SERVICE_UNAVAILABLE, e),
    }
}

async fn verify(req: &Incoming) -> Result<(), String> {
    let secret = inventory::variable("inventory_events_secret").await?;
    // During a rotation the inventory signs with both secrets; either verifies.
    Webhook::new(secret.trim())
        .map_err(|e| e.to_string())?
        .verify(&req.body, &req.headers)
        .map_err(|e| e.to_string())
}

/// Records the event once: duplicates and stale versions are dropped, the rest applied to
/// what this service knows of the product, or of the order. One transaction.
async fn apply(
    db: &Db,
    id: &str,
    kind: &str,
    subject: &Subject<'_>,
) -> Result<&'static str, String> {
    run(db, "BEGIN IMMEDIATE", vec![]).await?;
    match record(db, id, kind, subject).await {
        Ok(outcome) => run(db, "COMMIT", vec![]).await.map(|_| outcome),
        Err(e) => {
            let _ = run(db, "ROLLBACK", vec![]).await;
            Err(e)
        }
    }
}

/// One statement of recording an event; its rows.
async fn run(db: &Db, sql: &str, params: Vec<Sql>) -> Result<Vec<crate::db::Row>, String> {
    db.query(sql, params)
        .await
        .map_err(|e| format!("recording the event: {e}"))
}

/// The statements of `apply`'s transaction.
async fn record(
    db: &Db,
    id: &str,
    kind: &str,
    subject: &Subject<'_>,
) -> Result<&'static str, String> {
    let seen = run(db, "SELECT 1 FROM seen_events WHERE id = ?", vec![text(id)]).await?;
    if !seen.is_empty() {
        return Ok("duplicate");
    }
    let outcome = match subject {
        Subject::Product {
            product_id,
            version,
            data,
        } => apply_to_product(db, kind, *product_id, *version, data).await?,
        Subject::Hold { order_id } if kind == "reservation.expired" => {
            if orders::expire(db, order_id).await? {
                "applied"
            } else {
                "stale"
            }
        }
        Subject::Hold { .. } => "noted",
    };
    run(
        db,
        "INSERT INTO seen_events (id, type, outcome) VALUES (?, ?, ?)",
        vec![text(id), text(kind), text(outcome)],
    )
    .await?;
    // Ids are remembered a week, far longer than the inventory retries (72 hours); a few
    // older ones go with each event.
    run(
        db,
        "DELETE FROM seen_events WHERE id IN (SELECT id FROM seen_events \
         WHERE received_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days') LIMIT 10)",
        vec![],
    )
    .await?;
    Ok(outcome)
}

/// What a product's event says of its stock, unless an event of a later version was applied.
async fn apply_to_product(
    db: &Db,
    kind: &str,
    product_id: i64,
    version: i64,
    data: &Value,
) -> Result<&'static str, String> {
    {
        let known = run(
            db,
            "SELECT version FROM inventory WHERE product_id = ?",
            vec![Sql::Integer(product_id)],
        )
        .await?;
        let known_version = known.first().and_then(|row| row.int("version"));
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
                db,
                "INSERT INTO inventory (product_id, sku, stock, version, deleted, last_event) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (product_id) DO UPDATE SET sku = coalesce(excluded.sku, sku), \
                 stock = coalesce(excluded.stock, stock), version = excluded.version, \
                 deleted = excluded.deleted, last_event = excluded.last_event",
                vec![
                    Sql::Integer(product_id),
                    sku,
                    stock,
                    Sql::Integer(version),
                    Sql::Integer(i64::from(kind == "product.deleted")),
                    text(kind),
                ],
            )
            .await?;
            "applied"
        };
        Ok(outcome)
    }
}

/// `GET /inventory`: the stock of each product, as the events told it.
pub async fn list_inventory() -> Reply {
    let db = match Db::open().await {
        Ok(db) => db,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    let rows = match db
        .query(
            "SELECT product_id, sku, stock, version, deleted, last_event FROM inventory \
             ORDER BY product_id",
            vec![],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            return error(
                status::SERVICE_UNAVAILABLE,
                format!("reading the inventory: {e}"),
            )
        }
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "product_id": row.int("product_id"),
                "sku": row.text("sku"),
                "stock": row.int("stock"),
                "version": row.int("version"),
                "deleted": row.int("deleted") == Some(1),
                "last_event": row.text("last_event"),
            })
        })
        .collect();
    json(status::OK, &json!({"items": items}))
}
