//! Orders, checked out with the inventory's holds: placed by holding their lines (all or
//! nothing), paid by committing the hold, cancelled by releasing it (or, once paid, by
//! restocking); an order nobody pays lets its hold expire.

use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::sqlite::Value as Sql;

use crate::db::{text, Db};
use crate::{error, inventory, json, status, Incoming, Reply};

const MAX_LINES: usize = 100;
const MAX_QUANTITY: i64 = 1_000_000;
/// How long the inventory holds an order's stock for its payment, unless the order says.
const DEFAULT_HOLD_SECONDS: i64 = 900;
const MAX_HOLD_SECONDS: i64 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    lines: Vec<Line>,
    #[serde(default)]
    hold_seconds: Option<i64>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Line {
    product_id: i64,
    quantity: i64,
}

/// An order: `pending` (its hold not yet made), `awaiting_payment`, `paid`, `rejected`,
/// `expired` (its hold ran out unpaid) or `cancelled`.
pub(crate) struct Order {
    id: String,
    status: String,
    lines: Vec<Line>,
    hold_seconds: i64,
    reservation_id: Option<String>,
    detail: Value,
}

impl Order {
    fn view(&self) -> Value {
        json!({"id": self.id, "status": self.status, "lines": self.lines,
               "reservation_id": self.reservation_id, "detail": self.detail})
    }
}

/// `POST /orders`: a new order; its stock is held at once.
pub async fn place_order(req: &Incoming) -> Reply {
    let new: NewOrder = match serde_json::from_slice(&req.body) {
        Ok(new) => new,
        Err(e) => {
            return error(
                status::BAD_REQUEST,
                format!("the body must be {{\"lines\": [...]}}: {e}"),
            )
        }
    };
    let hold_seconds = new.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS);
    if !valid(&new.lines) || !(1..=MAX_HOLD_SECONDS).contains(&hold_seconds) {
        return error(
            status::UNPROCESSABLE_CONTENT,
            "1 to 100 lines, each a different product_id >= 1 and a quantity 1 to 1000000, \
             and hold_seconds 1 to 86400",
        );
    }
    let order = Order {
        id: format!("ord-{}", hex(&random_bytes(8))),
        status: "pending".into(),
        lines: new.lines,
        hold_seconds,
        reservation_id: None,
        detail: Value::Null,
    };
    let db = match Db::open().await {
        Ok(db) => db,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    if let Err(e) = save(&db, &order, true).await {
        return error(status::SERVICE_UNAVAILABLE, e);
    }
    place(&db, order).await
}

fn valid(lines: &[Line]) -> bool {
    let mut products: Vec<i64> = lines.iter().map(|l| l.product_id).collect();
    products.sort_unstable();
    products.dedup();
    (1..=MAX_LINES).contains(&lines.len())
        && products.len() == lines.len()
        && lines
            .iter()
            .all(|l| l.product_id >= 1 && (1..=MAX_QUANTITY).contains(&l.quantity))
}

/// `POST /orders/{id}/place`: tries a pending order's hold again. The order id is its
/// idempotency key, so if the first try did reach the inventory, this replays its answer.
pub async fn retry_order(id: &str) -> Reply {
    with_order(id, |db, order| async move {
        match order.status.as_str() {
            "pending" => place(&db, order).await,
            _ => json(status::OK, &order.view()),
        }
    })
    .await
}

/// Holds every line at the inventory (`POST /reservations`), all or nothing: each line
/// whole from the first location (by priority) that has it (`split: never`), so a line
/// ships from one place; if some line has no such location, split where needed.
async fn place(db: &Db, mut order: Order) -> Reply {
    // Each attempt has its own idempotency key, so a retry of the order replays both.
    let mut answer = match hold(&order, "never", &order.id).await {
        Ok(answer) => answer,
        Err(reply) => return reply,
    };
    let short = answer.status == status::CONFLICT
        && answer.body.get("type").and_then(Value::as_str)
            == Some("https://inventory.example/problems/insufficient-stock");
    if short {
        answer = match hold(&order, "allowed", &format!("{}/split", order.id)).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
    }
    let answered = match answer.status {
        status::CREATED => {
            order.status = "awaiting_payment".into();
            order.reservation_id = answer
                .body
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            status::CREATED
        }
        // No such product, not enough available, or a request the inventory refuses: the
        // order cannot be placed as it is, and retrying would not change that.
        status::BAD_REQUEST
        | status::NOT_FOUND
        | status::CONFLICT
        | status::UNPROCESSABLE_CONTENT => {
            order.status = "rejected".into();
            status::CONFLICT
        }
        other => return unexpected(other, &answer.body),
    };
    order.detail = answer.body;
    finish(db, &order, answered).await
}

/// One attempt at the order's hold, with `split`, under the idempotency `key`. An answer
/// that never came is the order's 502: it stays pending, to be retried.
async fn hold(order: &Order, split: &str, key: &str) -> Result<inventory::Answer, Reply> {
    let body = json!({"order_id": order.id, "lines": order.lines,
                      "ttl_seconds": order.hold_seconds, "split": split});
    inventory::post("/reservations", key, &body)
        .await
        .map_err(|e| {
            error(
                status::BAD_GATEWAY,
                format!("{e}; retry with POST /orders/{}/place", order.id),
            )
        })
}

/// `POST /orders/{id}/pay`: the customer paid; the hold is committed, the sale made. Paying
/// twice commits once (the inventory answers a second commit as the first).
pub async fn pay_order(id: &str) -> Reply {
    with_order(id, |db, mut order| async move {
        match order.status.as_str() {
            "awaiting_payment" | "paid" => {}
            other => {
                return error(
                    status::CONFLICT,
                    format!("the order is {other}: it cannot be paid"),
                )
            }
        }
        let Some(hold) = order.reservation_id.clone() else {
            return error(status::CONFLICT, "the order holds no stock");
        };
        let path = format!("/reservations/{hold}/commit");
        let answer = match inventory::post(&path, &format!("{}-pay", order.id), &Value::Null).await
        {
            Ok(answer) => answer,
            Err(e) => return error(status::BAD_GATEWAY, format!("{e}; retry the payment")),
        };
        let answered = match answer.status {
            status::OK => {
                order.status = "paid".into();
                status::OK
            }
            // Too late: the hold expired (or was released) before the payment came.
            status::CONFLICT if answer.body.get("reservation_status").is_some() => {
                order.status = "expired".into();
                status::CONFLICT
            }
            other => return unexpected(other, &answer.body),
        };
        order.detail = answer.body;
        finish(&db, &order, answered).await
    })
    .await
}

/// `POST /orders/{id}/cancel`: an unpaid order's hold is released; a paid order's stock
/// is given back, a restock per line.
pub async fn cancel_order(id: &str) -> Reply {
    with_order(id, |db, mut order| async move {
        let outcome = match order.status.as_str() {
            "cancelled" => return json(status::OK, &order.view()),
            "awaiting_payment" | "expired" => release(&order).await,
            "paid" => restock(&order).await,
            other => {
                return error(
                    status::CONFLICT,
                    format!("the order is {other}: it cannot be cancelled"),
                )
            }
        };
        if let Err(response) = outcome {
            return response;
        }
        order.status = "cancelled".into();
        finish(&db, &order, status::OK).await
    })
    .await
}

/// Gives an unpaid order's held stock back (an expired hold's release changes nothing).
async fn release(order: &Order) -> Result<(), Reply> {
    let Some(hold) = &order.reservation_id else {
        return Ok(());
    };
    let path = format!("/reservations/{hold}/release");
    match inventory::post(&path, &format!("{}-cancel", order.id), &Value::Null).await {
        Ok(answer) if answer.status == status::OK => Ok(()),
        Ok(answer) => Err(unexpected(answer.status, &answer.body)),
        Err(e) => Err(error(status::BAD_GATEWAY, format!("{e}; retry the cancel"))),
    }
}

/// Gives a paid order's stock back where it was sold from: a restock per line and location
/// (the commit's answer says where each line's units came from).
async fn restock(order: &Order) -> Result<(), Reply> {
    let sold = order.detail.get("lines").and_then(Value::as_array);
    let mut restocks: Vec<(i64, i64, Option<String>)> = Vec::new();
    for line in &order.lines {
        let allocations = sold
            .and_then(|lines| lines.iter().find(|l| l["product_id"] == line.product_id))
            .and_then(|l| l["allocations"].as_array());
        match allocations {
            Some(allocations) => restocks.extend(allocations.iter().filter_map(|a| {
                let location = a["location_id"].as_str()?.to_owned();
                Some((line.product_id, a["quantity"].as_i64()?, Some(location)))
            })),
            // An answer from before locations: the units went to `default`.
            None => restocks.push((line.product_id, line.quantity, None)),
        }
    }
    for (product_id, quantity, location) in restocks {
        let mut body =
            json!({"quantity": quantity, "order_id": order.id, "reason": "order-cancelled"});
        // One key per line and location, so a cancel retried after a partial failure
        // restocks each once.
        let mut key = format!("{}-cancel-{product_id}", order.id);
        if let (Some(location), Some(fields)) = (location, body.as_object_mut()) {
            key = format!("{key}-{location}");
            fields.insert("location_id".into(), json!(location));
        }
        let path = format!("/product/{product_id}/restock");
        let mut answer = inventory::post(&path, &key, &body).await;
        // 422 for a location: it no longer takes stock (closed): the units go to `default`.
        if matches!(&answer, Ok(a) if a.status == status::UNPROCESSABLE_CONTENT)
            && body.get("location_id").is_some()
        {
            if let Some(fields) = body.as_object_mut() {
                fields.remove("location_id");
            }
            answer = inventory::post(&path, &format!("{key}-default"), &body).await;
        }
        match answer {
            // 404: the product is gone, and its stock with it: nothing to give back.
            Ok(answer) if answer.status == status::OK || answer.status == status::NOT_FOUND => {}
            Ok(answer) => return Err(unexpected(answer.status, &answer.body)),
            Err(e) => return Err(error(status::BAD_GATEWAY, format!("{e}; retry the cancel"))),
        }
    }
    Ok(())
}

/// `GET /orders/{id}`.
pub async fn get_order(id: &str) -> Reply {
    let db = match Db::open().await {
        Ok(db) => db,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    match load(&db, id).await {
        Ok(Some(order)) => json(status::OK, &order.view()),
        Ok(None) => error(status::NOT_FOUND, "no such order"),
        Err(e) => error(status::SERVICE_UNAVAILABLE, e),
    }
}

/// An order whose hold expired unpaid (the inventory's `reservation.expired`): `expired`,
/// if it was still awaiting payment. Whether it was.
pub(crate) async fn expire(db: &Db, order_id: &str) -> Result<bool, String> {
    let rows = db
        .query(
            "UPDATE orders SET status = 'expired', \
             updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') \
             WHERE id = ? AND status = 'awaiting_payment' RETURNING id",
            vec![text(order_id)],
        )
        .await
        .map_err(|e| format!("expiring the order: {e}"))?;
    Ok(!rows.is_empty())
}

/// Runs `then` on the order of the path's `id`.
async fn with_order<F, Fut>(id: &str, then: F) -> Reply
where
    F: FnOnce(Db, Order) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let db = match Db::open().await {
        Ok(db) => db,
        Err(e) => return error(status::SERVICE_UNAVAILABLE, e),
    };
    match load(&db, id).await {
        Ok(Some(order)) => then(db, order).await,
        Ok(None) => error(status::NOT_FOUND, "no such order"),
        Err(e) => error(status::SERVICE_UNAVAILABLE, e),
    }
}

/// Saves the order and answers with it.
async fn finish(db: &Db, order: &Order, answered: u16) -> Reply {
    if let Err(e) = save(db, order, false).await {
        return error(status::SERVICE_UNAVAILABLE, e);
    }
    json(answered, &order.view())
}

fn unexpected(answered: u16, body: &Value) -> Reply {
    error(
        status::BAD_GATEWAY,
        format!("the inventory answered {answered}: {body}"),
    )
}

async fn save(db: &Db, order: &Order, new: bool) -> Result<(), String> {
    let lines = serde_json::to_string(&order.lines).map_err(|e| e.to_string())?;
    let detail = order.detail.to_string();
    let sql = if new {
        "INSERT INTO orders (status, lines, hold_seconds, reservation_id, detail, id) \
         VALUES (?, ?, ?, ?, ?, ?)"
    } else {
        "UPDATE orders SET status = ?, lines = ?, hold_seconds = ?, reservation_id = ?, \
         detail = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?"
    };
    db.exec(
        sql,
        vec![
            text(&order.status),
            text(&lines),
            Sql::Integer(order.hold_seconds),
            order.reservation_id.as_deref().map_or(Sql::Null, text),
            text(&detail),
            text(&order.id),
        ],
    )
    .await
    .map_err(|e| format!("saving the order: {e}"))
}

async fn load(db: &Db, id: &str) -> Result<Option<Order>, String> {
    let rows = db
        .query(
            "SELECT id, status, lines, hold_seconds, reservation_id, detail FROM orders \
             WHERE id = ?",
            vec![text(id)],
        )
        .await
        .map_err(|e| format!("reading the order: {e}"))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let field = |name: &str| row.text(name).unwrap_or_default().to_owned();
    Ok(Some(Order {
        id: field("id"),
        status: field("status"),
        lines: serde_json::from_str(&field("lines")).unwrap_or_default(),
        hold_seconds: row.int("hold_seconds").unwrap_or(DEFAULT_HOLD_SECONDS),
        reservation_id: row.text("reservation_id").map(str::to_owned),
        detail: serde_json::from_str(&field("detail")).unwrap_or(Value::Null),
    }))
}

/// `len` random bytes (WASI 0.3 may hand them over in several reads).
fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let wanted = (len - bytes.len()) as u64;
        bytes.extend(spin_sdk::wasip3::random::random::get_random_bytes(wanted));
    }
    bytes.truncate(len);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
