//! Orders: placed by deducting their lines at the inventory, all or nothing; cancelled by
//! restocking them.

use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{Params, Request, Response};
use spin_sdk::sqlite::Connection;

use crate::db::{self, text};
use crate::{error, inventory, json};

const MAX_LINES: usize = 100;
const MAX_QUANTITY: i64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    lines: Vec<Line>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Line {
    product_id: i64,
    quantity: i64,
}

struct Order {
    id: String,
    status: String,
    lines: Vec<Line>,
    detail: Value,
}

impl Order {
    fn view(&self) -> Value {
        json!({"id": self.id, "status": self.status, "lines": self.lines, "detail": self.detail})
    }
}

/// `POST /orders`: a new order, placed at once.
pub async fn place_order(req: Request, _params: Params) -> Response {
    let new: NewOrder = match serde_json::from_slice(req.body()) {
        Ok(new) => new,
        Err(e) => return error(400, format!("the body must be {{\"lines\": [...]}}: {e}")),
    };
    let mut products: Vec<i64> = new.lines.iter().map(|l| l.product_id).collect();
    products.sort_unstable();
    products.dedup();
    let valid = (1..=MAX_LINES).contains(&new.lines.len())
        && products.len() == new.lines.len()
        && new
            .lines
            .iter()
            .all(|l| l.product_id >= 1 && (1..=MAX_QUANTITY).contains(&l.quantity));
    if !valid {
        return error(
            422,
            "1 to 100 lines, each a different product_id >= 1 and a quantity 1 to 1000000",
        );
    }
    let id = format!("ord-{}", hex(&wasi::random::random::get_random_bytes(8)));
    let order = Order {
        id,
        status: "pending".into(),
        lines: new.lines,
        detail: Value::Null,
    };
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(503, e),
    };
    if let Err(e) = save(&conn, &order, true) {
        return error(503, e);
    }
    place(&conn, order).await
}

/// `POST /orders/{id}/place`: tries a pending order's deduct again. The order id is its
/// idempotency key, so if the first try did reach the inventory, this replays its answer.
pub async fn retry_order(_req: Request, params: Params) -> Response {
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(503, e),
    };
    match load(&conn, params.get("id").unwrap_or_default()) {
        Ok(Some(order)) if order.status == "pending" => place(&conn, order).await,
        Ok(Some(order)) => json(200, &order.view()),
        Ok(None) => error(404, "no such order"),
        Err(e) => error(503, e),
    }
}

/// Deducts every line at the inventory (`POST /stock/deduct`), all or nothing.
async fn place(conn: &Connection, mut order: Order) -> Response {
    let body = json!({"order_id": order.id, "lines": order.lines});
    let answer = match inventory::post("/stock/deduct", &order.id, &body).await {
        Ok(answer) => answer,
        // Unknown whether it applied: the order stays pending, to be retried.
        Err(e) => {
            return error(
                502,
                format!("{e}; retry with POST /orders/{}/place", order.id),
            )
        }
    };
    let status = match answer.status {
        200 => {
            order.status = "placed".into();
            201
        }
        // No such product, not enough stock, or a request the inventory refuses: the
        // order cannot be placed as it is, and retrying would not change that.
        400 | 404 | 409 | 422 => {
            order.status = "rejected".into();
            409
        }
        other => {
            return error(
                502,
                format!("the inventory answered {other}: {}", answer.body),
            )
        }
    };
    order.detail = answer.body;
    if let Err(e) = save(conn, &order, false) {
        return error(503, e);
    }
    json(status, &order.view())
}

/// `POST /orders/{id}/cancel`: gives a placed order's stock back, a restock per line.
pub async fn cancel_order(_req: Request, params: Params) -> Response {
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(503, e),
    };
    let mut order = match load(&conn, params.get("id").unwrap_or_default()) {
        Ok(Some(order)) => order,
        Ok(None) => return error(404, "no such order"),
        Err(e) => return error(503, e),
    };
    match order.status.as_str() {
        "placed" => {}
        "cancelled" => return json(200, &order.view()),
        other => return error(409, format!("a {other} order cannot be cancelled")),
    }
    for line in &order.lines {
        let body =
            json!({"quantity": line.quantity, "order_id": order.id, "reason": "order-cancelled"});
        // One key per line, so a cancel retried after a partial failure restocks each once.
        let key = format!("{}-cancel-{}", order.id, line.product_id);
        let path = format!("/product/{}/restock", line.product_id);
        match inventory::post(&path, &key, &body).await {
            // 404: the product is gone, and its stock with it: nothing to give back.
            Ok(answer) if answer.status == 200 || answer.status == 404 => {}
            Ok(answer) => {
                return error(
                    502,
                    format!("restocking {path}: {} {}", answer.status, answer.body),
                )
            }
            Err(e) => return error(502, format!("{e}; retry the cancel")),
        }
    }
    order.status = "cancelled".into();
    if let Err(e) = save(&conn, &order, false) {
        return error(503, e);
    }
    json(200, &order.view())
}

/// `GET /orders/{id}`.
pub fn get_order(_req: Request, params: Params) -> Response {
    let conn = match db::open() {
        Ok(conn) => conn,
        Err(e) => return error(503, e),
    };
    match load(&conn, params.get("id").unwrap_or_default()) {
        Ok(Some(order)) => json(200, &order.view()),
        Ok(None) => error(404, "no such order"),
        Err(e) => error(503, e),
    }
}

fn save(conn: &Connection, order: &Order, new: bool) -> Result<(), String> {
    let lines = serde_json::to_string(&order.lines).map_err(|e| e.to_string())?;
    let detail = order.detail.to_string();
    let sql = if new {
        "INSERT INTO orders (status, lines, detail, id) VALUES (?, ?, ?, ?)"
    } else {
        "UPDATE orders SET status = ?, lines = ?, detail = ?, \
         updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?"
    };
    conn.execute(
        sql,
        &[
            text(&order.status),
            text(&lines),
            text(&detail),
            text(&order.id),
        ],
    )
    .map(drop)
    .map_err(|e| format!("saving the order: {e}"))
}

fn load(conn: &Connection, id: &str) -> Result<Option<Order>, String> {
    let result = conn
        .execute(
            "SELECT id, status, lines, detail FROM orders WHERE id = ?",
            &[text(id)],
        )
        .map_err(|e| format!("reading the order: {e}"))?;
    let Some(row) = result.rows().next() else {
        return Ok(None);
    };
    let field = |name: &str| row.get::<&str>(name).unwrap_or_default().to_owned();
    Ok(Some(Order {
        id: field("id"),
        status: field("status"),
        lines: serde_json::from_str(&field("lines")).unwrap_or_default(),
        detail: serde_json::from_str(&field("detail")).unwrap_or(Value::Null),
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
