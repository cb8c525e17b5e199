//! Every SQL statement earns its place (host-only: the count is the host's metric). The host
//! counts the statements each component runs (`inventory_host_sqlite_statements_total`);
//! this pins the count of the guarded read and of every write route, with one receiver of
//! events configured, so a change that adds a statement has to change `PINNED` and say why
//! in its commit.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::{manifest, spawn_app_with, TestApp, TestResponse};
use crate::metrics::scrape_host;
use crate::receiver::Receiver;
use crate::stock::post_keyed;

/// (what, component, statements): each request's own statements, in its component, from
/// the clock read that opens the database to the commit. Before the store took stock on one
/// path (commit "store: one path for taking stock"), they were 2, 8, 8, 9, 12, 25, 12, 19,
/// 18, 14, 9 and 8. Stock per location (migration 0006) added, to every write of stock, the
/// read of the product's levels that chooses where units come from (the allocation is made
/// in Rust, from that read, inside the write transaction), a new product's first level and a
/// deleted one's levels. Migration 0007 then made one statement of a taking's (a restock's,
/// a release's) three writes, the levels, the ledger's rows and the products
/// (`INSERT INTO stock_writes`, whose trigger does them), and moved the sweep of expired
/// idempotency keys into a trigger of the key's insert: a deduct went from 12 to 9 (10
/// before locations).
const PINNED: &[(&str, &str, u64)] = &[
    ("GET /product/{id}", "products", 2),
    ("POST /product", "products", 8),
    ("PATCH /product/{id} (name)", "products", 7),
    ("PUT /product/{id} (stock set)", "products", 10),
    ("POST /product/{id}/deduct", "stock", 9),
    ("POST /stock/deduct (3 lines)", "stock", 9),
    ("POST /product/{id}/restock", "stock", 9),
    ("POST /reservations (1 line)", "reservations", 12),
    (
        "POST /reservations/{id}/commit (1 line)",
        "reservations",
        11,
    ),
    (
        "POST /reservations/{id}/release (1 line)",
        "reservations",
        10,
    ),
    ("PATCH /reservations/{id} (extend)", "reservations", 6),
    ("DELETE /product/{id}", "products", 8),
];

/// Waits until nothing runs: no instance busy (answering, or after its response), every
/// event delivered, no notifier active.
fn settle(app: &TestApp) {
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = scrape_host(app);
        // Reused (WASI 0.3) instances also run what a response leaves for after it.
        let busy = ["client", "chained"].iter().any(|source| {
            scrape.value("inventory_host_instances_in_use", &[("source", source)]) > 0.0
        }) || ["requests", "after_response"].iter().any(|phase| {
            scrape.value("inventory_host_reused_instances", &[("phase", phase)]) > 0.0
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (pending, active): (i64, i64) = db
            .query_row(
                "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending'), \
                 (SELECT count(*) FROM notifier_state WHERE active_until > ?1)",
                [now],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        if !busy && pending == 0 && active == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the app did not settle");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn statements(app: &TestApp, component: &str) -> u64 {
    scrape_host(app).value(
        "inventory_host_sqlite_statements_total",
        &[("component", component)],
    ) as u64
}

/// The statements `request` makes `component` run, once the app is settled before and after.
fn count(app: &TestApp, component: &str, request: impl FnOnce() -> TestResponse) -> u64 {
    settle(app);
    let before = statements(app, component);
    let response = request();
    assert!(
        (200..300).contains(&response.status),
        "{}: {}\n{}",
        response.status,
        String::from_utf8_lossy(&response.body),
        app.stderr()
    );
    settle(app);
    statements(app, component) - before
}

fn id(response: &TestResponse, member: &str) -> Value {
    response.json()[member].clone()
}

#[test]
fn on_the_host_each_route_runs_the_pinned_number_of_sql_statements() {
    let receiver = Receiver::start();
    let urls = format!("order_events_urls={}", receiver.url("/hooks"));
    let app = spawn_app_with(
        &manifest(),
        &["--metrics-listen", "127.0.0.1:0", "--variable", &urls],
    );
    // Warm: the schema migrated, three products to work on.
    let ids: Vec<i64> = (0..3)
        .map(|i| {
            let product =
                app.create_product(&json!({"name": format!("P{i}"), "price": 1, "stock": 100}));
            product["id"].as_i64().unwrap()
        })
        .collect();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let one = format!("/product/{a}");
    let mut measured: Vec<(&str, &str, u64)> = Vec::new();
    let mut measure = |what, component, request: &dyn Fn() -> TestResponse| {
        measured.push((what, component, count(&app, component, request)));
    };

    measure("GET /product/{id}", "products", &|| app.get(&one));
    measure("POST /product", "products", &|| {
        app.post_json("/product", &json!({"name": "New", "price": 1, "stock": 5}))
    });
    measure("PATCH /product/{id} (name)", "products", &|| {
        app.send_json("PATCH", &one, &json!({"name": "Renamed"}))
    });
    measure("PUT /product/{id} (stock set)", "products", &|| {
        let body = serde_json::to_vec(&json!({"stock": 90})).unwrap();
        app.request(
            "PUT",
            &one,
            &[("content-type", "application/json"), ("if-match", "\"2\"")],
            Some(&body),
        )
    });
    measure("POST /product/{id}/deduct", "stock", &|| {
        post_keyed(
            &app,
            &format!("{one}/deduct"),
            "s-1",
            &json!({"quantity": 1, "order_id": "o-1"}),
        )
    });
    measure("POST /stock/deduct (3 lines)", "stock", &|| {
        let lines: Vec<Value> = [a, b, c]
            .iter()
            .map(|id| json!({"product_id": id, "quantity": 1}))
            .collect();
        post_keyed(
            &app,
            "/stock/deduct",
            "s-2",
            &json!({"order_id": "o-2", "lines": lines}),
        )
    });
    measure("POST /product/{id}/restock", "stock", &|| {
        post_keyed(
            &app,
            &format!("{one}/restock"),
            "s-3",
            &json!({"quantity": 1}),
        )
    });
    let hold = |key: &str| json!({"order_id": format!("o-{key}"), "lines": [{"product_id": b, "quantity": 1}], "ttl_seconds": 600});
    let held = std::cell::RefCell::new(Vec::new());
    measure("POST /reservations (1 line)", "reservations", &|| {
        let response = post_keyed(&app, "/reservations", "h-1", &hold("h-1"));
        held.borrow_mut().push(id(&response, "id"));
        response
    });
    let first = held.borrow()[0].as_str().unwrap().to_owned();
    measure(
        "POST /reservations/{id}/commit (1 line)",
        "reservations",
        &|| app.request("POST", &format!("/reservations/{first}/commit"), &[], None),
    );
    let second = id(
        &post_keyed(&app, "/reservations", "h-2", &hold("h-2")),
        "id",
    );
    let second = second.as_str().unwrap().to_owned();
    measure(
        "POST /reservations/{id}/release (1 line)",
        "reservations",
        &|| {
            app.request(
                "POST",
                &format!("/reservations/{second}/release"),
                &[],
                None,
            )
        },
    );
    let third = id(
        &post_keyed(&app, "/reservations", "h-3", &hold("h-3")),
        "id",
    );
    let third = third.as_str().unwrap().to_owned();
    measure("PATCH /reservations/{id} (extend)", "reservations", &|| {
        app.send_json(
            "PATCH",
            &format!("/reservations/{third}"),
            &json!({"ttl_seconds": 900}),
        )
    });
    measure("DELETE /product/{id}", "products", &|| {
        app.request(
            "DELETE",
            &format!("/product/{c}"),
            &[("if-match", "*")],
            None,
        )
    });

    let table: String = measured
        .iter()
        .map(|(what, component, n)| format!("{what:45} {component:13} {n}\n"))
        .collect();
    // Printed for the record (`--nocapture`): the figures the README and notes cite.
    println!("{table}");
    assert_eq!(measured, PINNED, "\n{table}");
    assert!(
        receiver.deliveries().len() > 10,
        "events were written and delivered"
    );
}
