//! `examples/order-service` against the inventory app, both on one runtime, side by side: an
//! order holds stock, its payment commits the hold, a cancel releases it (or gives the stock
//! back), an unpaid order's hold expires, and the order service follows the stock
//! through the inventory's events, verified with the `standardwebhooks` crate.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::{
    cli_token, manifest, on_every_target, repo_root, Target, TestApp, TestResponse, HOST,
};

/// The inventory's dev `events_secret`, which the example's default matches.
const DEV_EVENTS_SECRET: &str = "whsec_ZGV2LW9ubHktaW5zZWN1cmUtZXZlbnRzLXNlY3JldCE=";

fn order_service_manifest() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let manifest = repo_root().join("examples/order-service/spin.toml");
    BUILT.get_or_init(|| {
        let output = Command::new(HOST)
            .args(["build", "-f"])
            .arg(&manifest)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    manifest
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the order service has learnt of `product_id` from events, once `done` holds.
fn known_stock(orders: &TestApp, product_id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let inventory = orders.get("/inventory").json();
        let item = inventory["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["product_id"] == product_id)
            .cloned()
            .unwrap_or(Value::Null);
        if done(&item) {
            return item;
        }
        assert!(
            Instant::now() < deadline,
            "the order service knows {inventory}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two apps that name each other, on `target`: the inventory's port is picked first. Another
/// test may take that port before the inventory binds it: then both start again on another.
fn both_apps(target: Target) -> (TestApp, TestApp) {
    let service_token = cli_token(
        &manifest(),
        &["--sub", "order-service", "--scope", "stock:deduct"],
    )
    .unwrap();
    let token = format!("inventory_token={service_token}");
    let mut failures = Vec::new();
    for _ in 0..5 {
        let inventory_port = free_port();
        let inventory_url = format!("inventory_url=http://127.0.0.1:{inventory_port}");
        let orders = target.spawn_app_from(
            &order_service_manifest(),
            &["--variable", &inventory_url, "--variable", &token],
        );
        let receiver = format!("order_events_urls=http://{}/inventory-events", orders.addr);
        let listen = format!("127.0.0.1:{inventory_port}");
        match target.try_spawn_app_with(&["--listen", &listen, "--variable", &receiver]) {
            Ok(inventory) => return (inventory, orders),
            Err(stderr) if stderr.contains("in use") => failures.push(stderr),
            Err(stderr) => panic!("{:?} did not start:\n{stderr}", target.runtime),
        }
    }
    panic!("no free port held still for the inventory: {failures:#?}");
}

/// The inventory's quantities of a product: `(stock, reserved, available)`.
fn quantities(inventory: &TestApp, id: i64) -> (i64, i64, i64) {
    let p = inventory.get(&format!("/product/{id}")).json();
    let get = |name: &str| p[name].as_i64().unwrap();
    (get("stock"), get("reserved"), get("available"))
}

fn post(app: &TestApp, path: &str) -> TestResponse {
    app.request("POST", path, &[], None)
}

fn the_order_service_checks_out_with_holds_and_follows_the_stock_by_events(target: Target) {
    let (inventory, orders) = both_apps(target);
    let product =
        inventory.create_product(&json!({"name": "Mug", "price": 4, "stock": 10, "sku": "MUG"}));
    let id = product["id"].as_i64().unwrap();
    known_stock(&orders, id, |item| item["stock"] == 10);

    // Placing an order holds its stock while the customer pays.
    let placed = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 3}]}),
    );
    assert_eq!(
        placed.status,
        201,
        "{}",
        String::from_utf8_lossy(&placed.body)
    );
    let order = placed.json();
    assert_eq!(order["status"], "awaiting_payment");
    assert!(order["reservation_id"]
        .as_str()
        .unwrap()
        .starts_with("res_"));
    assert_eq!(quantities(&inventory, id), (10, 3, 7));
    // More than is available: refused whole, nothing held.
    let refused = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 8}]}),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["status"], "rejected");
    assert_eq!(refused.json()["detail"]["lines"][0]["available"], 7);

    // Paying commits the hold: the sale. Paying twice sells once.
    let order_id = order["id"].as_str().unwrap();
    let paid = post(&orders, &format!("/orders/{order_id}/pay"));
    assert_eq!(paid.status, 200, "{}", String::from_utf8_lossy(&paid.body));
    assert_eq!(paid.json()["status"], "paid");
    assert_eq!(paid.json()["detail"]["lines"][0]["stock"], 7);
    assert_eq!(
        post(&orders, &format!("/orders/{order_id}/pay")).status,
        200
    );
    assert_eq!(quantities(&inventory, id), (7, 0, 7));
    let known = known_stock(&orders, id, |item| item["stock"] == 7);
    assert_eq!(known["last_event"], "stock.deducted");

    // Cancelling a paid order gives its stock back.
    let cancelled = post(&orders, &format!("/orders/{order_id}/cancel"));
    assert_eq!(
        cancelled.status,
        200,
        "{}",
        String::from_utf8_lossy(&cancelled.body)
    );
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(quantities(&inventory, id), (10, 0, 10));
    known_stock(&orders, id, |item| {
        item["stock"] == 10 && item["last_event"] == "stock.restocked"
    });
    post(&orders, &format!("/orders/{order_id}/cancel"));
    assert_eq!(
        quantities(&inventory, id),
        (10, 0, 10),
        "cancelling again changes nothing"
    );

    // Cancelling an unpaid order releases its hold.
    let second = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 4}]}),
    );
    let second_id = second.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(quantities(&inventory, id), (10, 4, 6));
    assert_eq!(
        post(&orders, &format!("/orders/{second_id}/cancel")).status,
        200
    );
    assert_eq!(quantities(&inventory, id), (10, 0, 10));
    // Retrying a placed order's hold replays the inventory's first answer: nothing held.
    let retried = post(&orders, &format!("/orders/{second_id}/place"));
    assert_eq!(retried.json()["status"], "cancelled");
    assert_eq!(quantities(&inventory, id), (10, 0, 10));
}

fn an_order_left_unpaid_lets_its_hold_expire_and_a_late_payment_is_refused(target: Target) {
    let (inventory, orders) = both_apps(target);
    let product = inventory.create_product(&json!({"name": "Cup", "price": 2, "stock": 5}));
    let id = product["id"].as_i64().unwrap();
    let placed = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 5}], "hold_seconds": 1}),
    );
    assert_eq!(
        placed.status,
        201,
        "{}",
        String::from_utf8_lossy(&placed.body)
    );
    let order_id = placed.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(quantities(&inventory, id), (5, 5, 0));
    std::thread::sleep(Duration::from_millis(1_200));
    // The units are the inventory's again the instant the hold expires.
    assert_eq!(quantities(&inventory, id), (5, 0, 5));
    // The next request announced the expiry; the order service hears of it.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = orders.get(&format!("/orders/{order_id}")).json()["status"].clone();
        if status == "expired" || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, "expired");
    let late = post(&orders, &format!("/orders/{order_id}/pay"));
    assert_eq!(late.status, 409, "{}", String::from_utf8_lossy(&late.body));
    assert_eq!(quantities(&inventory, id), (5, 0, 5), "nothing sold");
}

fn the_order_service_drops_duplicate_stale_and_forged_events(target: Target) {
    let (_inventory, orders) = both_apps(target);
    let webhook = standardwebhooks::Webhook::new(DEV_EVENTS_SECRET).unwrap();
    let send = |id: &str, version: i64, secret: &standardwebhooks::Webhook| {
        let body = json!({"type": "stock.set", "timestamp": "2026-11-21T10:00:00Z",
                          "data": {"product_id": 4242, "sku": null, "stock": version * 10,
                                   "delta": 1, "version": version}})
        .to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = secret.sign(id, now, body.as_bytes()).unwrap();
        let now = now.to_string();
        orders.request(
            "POST",
            "/inventory-events",
            &[
                ("content-type", "application/json"),
                ("webhook-id", id),
                ("webhook-timestamp", &now),
                ("webhook-signature", &signature),
            ],
            Some(body.as_bytes()),
        )
    };
    assert_eq!(send("evt_a", 5, &webhook).status, 204);
    assert_eq!(send("evt_a", 5, &webhook).status, 204);
    assert_eq!(send("evt_b", 3, &webhook).status, 204);
    let known = known_stock(&orders, 4242, |item| !item.is_null());
    assert_eq!(
        (known["stock"].clone(), known["version"].clone()),
        (json!(50), json!(5))
    );
    // The host writes guests' output out in batches (every 10 ms): wait for the lines.
    let outcomes = || -> Vec<String> {
        orders
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["outcome"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while outcomes().len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(outcomes(), ["applied", "duplicate", "stale"]);
    let forger =
        standardwebhooks::Webhook::new("whsec_Zm9yZ2VkLWtleS1mb3JnZWQta2V5LWZvcmdlZC1rZXk=")
            .unwrap();
    assert_eq!(send("evt_c", 9, &forger).status, 401);
    assert_eq!(known_stock(&orders, 4242, |i| !i.is_null())["version"], 5);
}

fn the_order_service_takes_each_line_whole_from_one_location_when_one_has_it(target: Target) {
    let (inventory, orders) = both_apps(target);
    crate::locations::location(&inventory, "near", 10);
    // `near` (priority 10) has 2, `default` (100) has 5.
    let id = crate::locations::stocked(&inventory, &[("default", 5), ("near", 2)]);
    let allocations = |order: &Value| order["detail"]["lines"][0]["allocations"].clone();
    // 3: `near` cannot cover it, `default` can: all of it from `default`.
    let whole = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 3}]}),
    );
    assert_eq!(
        whole.status,
        201,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert_eq!(
        allocations(&whole.json()),
        json!([{"location_id": "default", "quantity": 3}])
    );
    // 4: no single location has it (2 and 2 left): split, by priority.
    let split = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 4}]}),
    );
    assert_eq!(
        split.status,
        201,
        "{}",
        String::from_utf8_lossy(&split.body)
    );
    let split = split.json();
    assert_eq!(
        allocations(&split),
        json!([{"location_id": "near", "quantity": 2}, {"location_id": "default", "quantity": 2}])
    );
    // Paid, then cancelled: each unit goes back where it was sold from.
    let order_id = split["id"].as_str().unwrap();
    let paid = post(&orders, &format!("/orders/{order_id}/pay"));
    assert_eq!(paid.status, 200, "{}", String::from_utf8_lossy(&paid.body));
    let cancelled = post(&orders, &format!("/orders/{order_id}/cancel"));
    assert_eq!(
        cancelled.status,
        200,
        "{}",
        String::from_utf8_lossy(&cancelled.body)
    );
    let product = inventory.get(&format!("/product/{id}")).json();
    let levels: Vec<(String, i64, i64)> = product["by_location"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location_id"].as_str().unwrap().to_owned(),
                l["stock"].as_i64().unwrap(),
                l["reserved"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        [("default".to_owned(), 5, 3), ("near".to_owned(), 2, 0)]
    );
}

on_every_target!(
    the_order_service_takes_each_line_whole_from_one_location_when_one_has_it,
    the_order_service_checks_out_with_holds_and_follows_the_stock_by_events,
    an_order_left_unpaid_lets_its_hold_expire_and_a_late_payment_is_refused,
    the_order_service_drops_duplicate_stale_and_forged_events,
);
