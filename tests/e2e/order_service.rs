//! `examples/order-service` against the inventory app, both on the host, side by side: an
//! order deducts stock and a cancel gives it back, and the order service follows the stock
//! through the inventory's events, verified with the `standardwebhooks` crate.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::{cli_token, manifest, repo_root, spawn_app_with, TestApp, HOST};

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

/// Two apps that name each other: the inventory's port is picked first.
fn both_apps() -> (TestApp, TestApp) {
    let inventory_port = free_port();
    let service_token = cli_token(
        &manifest(),
        &["--sub", "order-service", "--scope", "stock:deduct"],
    )
    .unwrap();
    let inventory_url = format!("inventory_url=http://127.0.0.1:{inventory_port}");
    let token = format!("inventory_token={service_token}");
    let orders = spawn_app_with(
        &order_service_manifest(),
        &["--variable", &inventory_url, "--variable", &token],
    );
    let receiver = format!("order_events_urls=http://{}/inventory-events", orders.addr);
    let listen = format!("127.0.0.1:{inventory_port}");
    let inventory = spawn_app_with(&manifest(), &["--listen", &listen, "--variable", &receiver]);
    (inventory, orders)
}

#[test]
fn the_order_service_places_and_cancels_an_order_and_follows_the_stock_by_events() {
    let (inventory, orders) = both_apps();
    let product =
        inventory.create_product(&json!({"name": "Mug", "price": 4, "stock": 10, "sku": "MUG"}));
    let id = product["id"].as_i64().unwrap();
    known_stock(&orders, id, |item| item["stock"] == 10);

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
    assert_eq!(order["status"], "placed");
    assert_eq!(order["detail"]["lines"][0]["stock"], 7);
    assert_eq!(inventory.get(&format!("/product/{id}")).json()["stock"], 7);
    let known = known_stock(&orders, id, |item| item["stock"] == 7);
    assert_eq!(known["version"], 2);
    assert_eq!(known["last_event"], "stock.deducted");

    // More than there is: refused whole, nothing taken.
    let refused = orders.post_json(
        "/orders",
        &json!({"lines": [{"product_id": id, "quantity": 8}]}),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["status"], "rejected");
    assert_eq!(refused.json()["detail"]["lines"][0]["available"], 7);

    let order_id = order["id"].as_str().unwrap();
    let cancelled = orders.request("POST", &format!("/orders/{order_id}/cancel"), &[], None);
    assert_eq!(
        cancelled.status,
        200,
        "{}",
        String::from_utf8_lossy(&cancelled.body)
    );
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(inventory.get(&format!("/product/{id}")).json()["stock"], 10);
    known_stock(&orders, id, |item| {
        item["stock"] == 10 && item["last_event"] == "stock.restocked"
    });
    // Cancelling again changes nothing.
    orders.request("POST", &format!("/orders/{order_id}/cancel"), &[], None);
    assert_eq!(inventory.get(&format!("/product/{id}")).json()["stock"], 10);
    // Retrying a placed order's deduct replays the inventory's first answer: nothing taken.
    let retried = orders.request("POST", &format!("/orders/{order_id}/place"), &[], None);
    assert_eq!(retried.json()["status"], "cancelled");
    assert_eq!(inventory.get(&format!("/product/{id}")).json()["stock"], 10);
}

#[test]
fn the_order_service_drops_duplicate_stale_and_forged_events() {
    let (_inventory, orders) = both_apps();
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
    let outcomes: Vec<String> = orders
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l["outcome"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(outcomes, ["applied", "duplicate", "stale"]);
    let forger =
        standardwebhooks::Webhook::new("whsec_Zm9yZ2VkLWtleS1mb3JnZWQta2V5LWZvcmdlZC1rZXk=")
            .unwrap();
    assert_eq!(send("evt_c", 9, &forger).status, 401);
    assert_eq!(known_stock(&orders, 4242, |i| !i.is_null())["version"], 5);
}
