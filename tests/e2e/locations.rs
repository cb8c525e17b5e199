//! Stock per location, end to end: locations and levels, takings that say where their units
//! come from and answer where they came from, transfers, and the rule that the number a view
//! shows is the number a taking can take. Every refusal leaves the domain tables as they were
//! (compared row by row in the app's SQLite file).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::{on_every_target, Target, TestApp, TestResponse};
use crate::stock::{ledger, post_keyed};

/// Creates a location; its JSON.
pub(crate) fn location(app: &TestApp, id: &str, priority: i64) -> Value {
    let created = app.post_json(
        "/locations",
        &json!({"id": id, "name": format!("Warehouse {id}"), "priority": priority}),
    );
    assert_eq!(created.status, 201, "{}", text_of(&created));
    created.json()
}

fn text_of(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// A product with `stock` at each location of `levels` (the first at creation, the rest
/// counted in with `If-None-Match: *`); its id.
pub(crate) fn stocked(app: &TestApp, levels: &[(&str, i64)]) -> i64 {
    let (first, rest) = levels.split_first().unwrap();
    let product = app.create_product(
        &json!({"name": "Mug", "price": 3, "stock": first.1, "location_id": first.0}),
    );
    let id = product["id"].as_i64().unwrap();
    for (at, stock) in rest {
        let counted = count(app, id, at, *stock, ("if-none-match", "*"));
        assert_eq!(counted.status, 201, "{}", text_of(&counted));
    }
    id
}

fn count(app: &TestApp, id: i64, at: &str, stock: i64, condition: (&str, &str)) -> TestResponse {
    let bytes = serde_json::to_vec(&json!({ "stock": stock })).unwrap();
    app.request(
        "PUT",
        &format!("/product/{id}/stock/{at}"),
        &[("content-type", "application/json"), condition],
        Some(&bytes),
    )
}

/// `(location, stock, reserved, available)` of each level in a product view.
fn by_location(product: &Value) -> Vec<(String, i64, i64, i64)> {
    product["by_location"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location_id"].as_str().unwrap().to_owned(),
                l["stock"].as_i64().unwrap(),
                l["reserved"].as_i64().unwrap(),
                l["available"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `(location, quantity)` of allocations.
fn allocations(value: &Value) -> Vec<(String, i64)> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("no allocations: {value}"))
        .iter()
        .map(|a| {
            (
                a["location_id"].as_str().unwrap().to_owned(),
                a["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn at(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect()
}

fn deduct(app: &TestApp, id: i64, key: &str, body: Value) -> TestResponse {
    let mut body = body;
    body["order_id"] = json!(format!("ord-{key}"));
    post_keyed(app, &format!("/product/{id}/deduct"), key, &body)
}

fn locations_are_created_listed_changed_and_deleted_by_their_rules(target: Target) {
    let app = target.spawn_app();
    let berlin = location(&app, "berlin-1", 10);
    assert_eq!(
        (berlin["active"].as_bool(), berlin["version"].as_i64()),
        (Some(true), Some(1))
    );
    app.post_json("/locations", &json!({"id": "berlin-1", "name": "Again"}))
        .assert_problem(409, "conflict");
    // Case-sensitive ids; the name is trimmed; priority defaults to 100.
    let other = app.post_json(
        "/locations",
        &json!({"id": "Berlin-1", "name": "  Other  "}),
    );
    assert_eq!(other.status, 201, "{}", text_of(&other));
    assert_eq!(other.header("location"), Some("/locations/Berlin-1"));
    assert_eq!(other.header("etag"), Some("\"1\""));
    assert_eq!(
        (
            other.json()["name"].as_str(),
            other.json()["priority"].as_i64()
        ),
        (Some("Other"), Some(100))
    );
    let page = app.get("/locations").json();
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["berlin-1", "Berlin-1", "default"],
        "by priority, then id"
    );
    assert_eq!(page["total"], 3);
    app.get("/locations/nowhere")
        .assert_problem(404, "not-found");
    app.get("/locations/a%20b")
        .assert_problem(400, "invalid-request");

    let patch = |id: &str, body: Value, if_match: Option<&str>| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let mut headers = vec![("content-type", "application/json")];
        if let Some(tag) = if_match {
            headers.push(("if-match", tag));
        }
        app.request("PATCH", &format!("/locations/{id}"), &headers, Some(&bytes))
    };
    patch("berlin-1", json!({"priority": 5}), Some("\"7\""))
        .assert_problem(412, "precondition-failed");
    let changed = patch(
        "berlin-1",
        json!({"priority": 5, "name": "Mitte"}),
        Some("\"1\""),
    );
    assert_eq!(changed.status, 200, "{}", text_of(&changed));
    assert_eq!(changed.json()["version"], 2);
    assert_eq!(changed.header("etag"), Some("\"2\""));
    patch("berlin-1", json!({}), None).assert_problem(422, "validation");
    // `default` may be renamed or re-prioritized, never deactivated or deleted.
    assert_eq!(patch("default", json!({"priority": 50}), None).status, 200);
    patch("default", json!({"active": false}), None).assert_problem(409, "conflict");
    app.request("DELETE", "/locations/default", &[], None)
        .assert_problem(409, "conflict");

    // A location with stock stays; emptied, it goes with its empty levels.
    let id = stocked(&app, &[("default", 1), ("berlin-1", 2)]);
    app.request("DELETE", "/locations/berlin-1", &[], None)
        .assert_problem(409, "conflict");
    let level = app.get(&format!("/product/{id}/stock/berlin-1"));
    let tag = level.header("etag").unwrap().to_owned();
    assert_eq!(
        count(&app, id, "berlin-1", 0, ("if-match", &tag)).status,
        200
    );
    let deleted = app.request("DELETE", "/locations/berlin-1", &[], None);
    assert_eq!(deleted.status, 204, "{}", text_of(&deleted));
    app.get("/locations/berlin-1")
        .assert_problem(404, "not-found");
    let levels = app.get(&format!("/product/{id}/stock")).json();
    assert_eq!(levels["items"].as_array().unwrap().len(), 1, "{levels}");
}

fn takings_take_where_the_request_says_and_answer_where_from(target: Target) {
    let app = target.spawn_app();
    location(&app, "berlin", 10);
    location(&app, "hamburg", 20);
    // default (priority 100) 10, berlin 3, hamburg 5.
    let id = stocked(&app, &[("default", 10), ("berlin", 3), ("hamburg", 5)]);
    let product = app.get(&format!("/product/{id}")).json();
    assert_eq!(product["stock"], 18);
    assert_eq!(
        by_location(&product),
        [
            ("berlin".to_owned(), 3, 0, 3),
            ("default".to_owned(), 10, 0, 10),
            ("hamburg".to_owned(), 5, 0, 5)
        ]
    );

    // By priority, split: Berlin, then Hamburg.
    let taken = deduct(&app, id, "p1", json!({"quantity": 4}));
    assert_eq!(taken.status, 200, "{}", text_of(&taken));
    assert_eq!(
        allocations(&taken.json()["allocations"]),
        at(&[("berlin", 3), ("hamburg", 1)])
    );
    assert_eq!(taken.json()["stock"], 14);
    // Most available first: default (10).
    let taken = deduct(
        &app,
        id,
        "p2",
        json!({"quantity": 2, "strategy": "most_available"}),
    );
    assert_eq!(
        allocations(&taken.json()["allocations"]),
        at(&[("default", 2)])
    );
    // One named location, no fallback: Hamburg has 4.
    let short = deduct(
        &app,
        id,
        "p3",
        json!({"quantity": 5, "location_id": "hamburg"}),
    );
    let problem = short.assert_problem(409, "insufficient-stock");
    assert_eq!(problem["available"], 4);
    assert_eq!(
        problem["by_location"],
        json!([{"location_id": "hamburg", "available": 4}])
    );
    // A list, in its order.
    let taken = deduct(
        &app,
        id,
        "p4",
        json!({"quantity": 6, "locations": ["hamburg", "default"]}),
    );
    assert_eq!(
        allocations(&taken.json()["allocations"]),
        at(&[("hamburg", 4), ("default", 2)])
    );
    // Never split: whole from the first that covers it, else the largest single candidate.
    let whole = deduct(&app, id, "p5", json!({"quantity": 5, "split": "never"}));
    assert_eq!(
        allocations(&whole.json()["allocations"]),
        at(&[("default", 5)])
    );
    let problem = deduct(&app, id, "p6", json!({"quantity": 2, "split": "never"}))
        .assert_problem(409, "insufficient-stock");
    assert_eq!(problem["available"], 1, "{problem}");
    // Both or neither; a location that does not exist, or no level there.
    deduct(
        &app,
        id,
        "p7",
        json!({"quantity": 1, "location_id": "berlin", "locations": ["berlin"]}),
    )
    .assert_problem(422, "validation");
    let problem = deduct(
        &app,
        id,
        "p8",
        json!({"quantity": 1, "location_id": "paris"}),
    )
    .assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "location_id");

    // A hold fixes its allocations; a restock names where the units go.
    let restocked = post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "r1",
        &json!({"quantity": 6, "location_id": "berlin"}),
    );
    assert_eq!(restocked.status, 200, "{}", text_of(&restocked));
    assert_eq!(
        allocations(&restocked.json()["allocations"]),
        at(&[("berlin", 6)])
    );
    post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "r2",
        &json!({"quantity": 1, "locations": ["berlin"]}),
    )
    .assert_problem(422, "validation");
    let held = post_keyed(
        &app,
        "/reservations",
        "h1",
        &json!({"order_id": "ord-h1", "lines": [
            {"product_id": id, "quantity": 4, "location_id": "berlin"},
            {"product_id": id, "quantity": 2}
        ]}),
    );
    assert_eq!(held.status, 201, "{}", text_of(&held));
    let hold = held.json();
    // Lines naming one product add up, their allocations merged per location.
    assert_eq!(hold["lines"][0]["quantity"], 6);
    assert_eq!(
        allocations(&hold["lines"][0]["allocations"]),
        at(&[("berlin", 6)])
    );
    let product = app.get(&format!("/product/{id}")).json();
    assert_eq!(
        by_location(&product),
        [
            ("berlin".to_owned(), 6, 6, 0),
            ("default".to_owned(), 1, 0, 1),
            ("hamburg".to_owned(), 0, 0, 0)
        ]
    );
    // The commit takes exactly those, never re-routed; a partial one gives the rest back
    // where it was.
    let hold_id = hold["id"].as_str().unwrap();
    let committed = app.post_json(
        &format!("/reservations/{hold_id}/commit"),
        &json!({"lines": [{"product_id": id, "quantity": 5}]}),
    );
    assert_eq!(committed.status, 200, "{}", text_of(&committed));
    assert_eq!(
        allocations(&committed.json()["lines"][0]["allocations"]),
        at(&[("berlin", 5)])
    );
    let product = app.get(&format!("/product/{id}")).json();
    assert_eq!(
        by_location(&product),
        [
            ("berlin".to_owned(), 1, 0, 1),
            ("default".to_owned(), 1, 0, 1),
            ("hamburg".to_owned(), 0, 0, 0)
        ]
    );
    // Per location, the ledger sums to the level.
    for level in by_location(&product) {
        let rows = app
            .get(&format!(
                "/product/{id}/movements?location_id={}&limit=100",
                level.0
            ))
            .json();
        let sum: i64 = rows["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["delta"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, level.1, "{}: {rows}", level.0);
    }
}

/// Holds a product's `quantity` with `split: allowed`, at `locations` (all when empty), and
/// releases it if it was held: whether it was.
fn can_hold(app: &TestApp, id: i64, quantity: i64, locations: &[&str], key: &str) -> bool {
    let mut line = json!({"product_id": id, "quantity": quantity});
    if !locations.is_empty() {
        line["locations"] = json!(locations);
    }
    let held = post_keyed(
        app,
        "/reservations",
        key,
        &json!({"order_id": "probe", "lines": [line]}),
    );
    match held.status {
        201 => {
            let hold_id = held.json()["id"].as_str().unwrap().to_owned();
            let released = app.request(
                "POST",
                &format!("/reservations/{hold_id}/release"),
                &[],
                None,
            );
            assert_eq!(released.status, 200, "{}", text_of(&released));
            true
        }
        409 => false,
        other => panic!("a probe hold answered {other}: {}", text_of(&held)),
    }
}

fn what_a_view_shows_is_what_a_split_hold_can_take(target: Target) {
    let app = target.spawn_app();
    location(&app, "a", 10);
    location(&app, "b", 20);
    // A small deterministic generator: every run sees the same states.
    let mut seed: u64 = 0x5eed;
    let mut next = |n: i64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        i64::try_from((seed >> 33) % u64::try_from(n).unwrap()).unwrap()
    };
    for round in 0..3 {
        let id = stocked(
            &app,
            &[("a", next(6)), ("b", next(6)), ("default", next(4))],
        );
        // Some units held, some at one location counted below its holds.
        let key = format!("s{round}");
        let held = post_keyed(
            &app,
            "/reservations",
            &key,
            &json!({"order_id": "state", "lines": [{"product_id": id, "quantity": 1}]}),
        );
        assert!(matches!(held.status, 201 | 409), "{}", text_of(&held));
        if held.status == 201 && next(2) == 0 {
            let at = held.json()["lines"][0]["allocations"][0]["location_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let level = app.get(&format!("/product/{id}/stock/{at}"));
            let tag = level.header("etag").unwrap().to_owned();
            assert_eq!(count(&app, id, &at, 0, ("if-match", &tag)).status, 200);
        }
        for (i, scope) in [
            &[][..],
            &["a"][..],
            &["b"][..],
            &["a", "b"][..],
            &["b", "default"][..],
        ]
        .iter()
        .enumerate()
        {
            let path = match scope.len() {
                0 => format!("/product/{id}"),
                _ => format!("/product/{id}?locations={}", scope.join(",")),
            };
            let shown = app.get(&path).json()["available"].as_i64().unwrap();
            let probe = format!("{round}-{i}");
            if shown > 0 {
                assert!(
                    can_hold(&app, id, shown, scope, &format!("{probe}-fits")),
                    "{path} shows {shown}, and a hold of it failed"
                );
            }
            assert!(
                !can_hold(&app, id, shown + 1, scope, &format!("{probe}-over")),
                "{path} shows {shown}, and a hold of one more succeeded"
            );
        }
    }
}

fn transfers_move_unheld_units_between_levels(target: Target) {
    let app = target.spawn_app();
    location(&app, "a", 10);
    location(&app, "b", 20);
    let id = stocked(&app, &[("a", 8), ("default", 1)]);
    // 3 of A's 8 held: 5 may move.
    let held = post_keyed(
        &app,
        "/reservations",
        "t-h",
        &json!({"order_id": "o", "lines": [{"product_id": id, "quantity": 3, "location_id": "a"}]}),
    );
    assert_eq!(held.status, 201, "{}", text_of(&held));
    let transfer = |key: &str, body: Value| post_keyed(&app, "/transfers", key, &body);
    let problem = transfer(
        "t1",
        json!({"product_id": id, "from": "a", "to": "b", "quantity": 6}),
    )
    .assert_problem(409, "insufficient-stock");
    assert_eq!(problem["available"], 5);
    let moved = transfer(
        "t2",
        json!({"product_id": id, "from": "a", "to": "b", "quantity": 5, "reason": "rebalance"}),
    );
    assert_eq!(moved.status, 201, "{}", text_of(&moved));
    let created = moved.json();
    let transfer_id = created["id"].as_str().unwrap();
    assert!(transfer_id.starts_with("trf_"), "{created}");
    assert_eq!(
        moved.header("location"),
        Some(format!("/transfers/{transfer_id}").as_str())
    );
    assert_eq!(
        created["levels"],
        json!([{"location_id": "a", "stock": 3, "reserved": 3, "available": 0},
               {"location_id": "b", "stock": 5, "reserved": 0, "available": 5}])
    );
    let read = app.get(&format!("/transfers/{transfer_id}")).json();
    assert_eq!(
        (
            read["from"].as_str(),
            read["to"].as_str(),
            read["quantity"].as_i64()
        ),
        (Some("a"), Some("b"), Some(5))
    );
    // Two ledger rows with its id and its reason; the total did not change.
    let rows: Vec<Value> = ledger(&app, id)
        .into_iter()
        .filter(|r| r["transfer_id"] == transfer_id)
        .collect();
    let rows: Vec<(&str, i64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["location_id"].as_str().unwrap(),
                r["delta"].as_i64().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("b", 5, "rebalance"), ("a", -5, "rebalance")]);
    assert_eq!(app.get(&format!("/product/{id}")).json()["stock"], 9);
    // Refused: the same location, an unknown product, an inactive destination.
    transfer(
        "t3",
        json!({"product_id": id, "from": "b", "to": "b", "quantity": 1}),
    )
    .assert_problem(422, "validation");
    transfer(
        "t4",
        json!({"product_id": 999_999, "from": "b", "to": "a", "quantity": 1}),
    )
    .assert_problem(404, "not-found");
    let version = |app: &TestApp| app.get(&format!("/product/{id}")).json()["version"].clone();
    let before = version(&app);
    let off = app.send_json("PATCH", "/locations/a", &json!({"active": false}));
    assert_eq!(off.status, 200, "{}", text_of(&off));
    // Its products' totals changed: each has a new version.
    assert_ne!(version(&app), before);
    transfer(
        "t5",
        json!({"product_id": id, "from": "b", "to": "a", "quantity": 1}),
    )
    .assert_problem(422, "validation");
    // An inactive `from` may be emptied (once its hold ends): the product's totals grow by
    // what comes out of it.
    assert_eq!(app.get(&format!("/product/{id}")).json()["stock"], 6);
    let hold_id = held.json()["id"].as_str().unwrap().to_owned();
    let released = app.request(
        "POST",
        &format!("/reservations/{hold_id}/release"),
        &[],
        None,
    );
    assert_eq!(released.status, 200, "{}", text_of(&released));
    let emptied = transfer(
        "t6",
        json!({"product_id": id, "from": "a", "to": "default", "quantity": 3}),
    );
    assert_eq!(emptied.status, 201, "{}", text_of(&emptied));
    assert_eq!(app.get(&format!("/product/{id}")).json()["stock"], 9);
    app.get("/transfers/trf_nope")
        .assert_problem(404, "not-found");
}

fn level_counts_are_compare_and_set(target: Target) {
    let app = target.spawn_app();
    location(&app, "a", 10);
    let id = stocked(&app, &[("default", 4)]);
    let path = format!("/product/{id}/stock/a");
    let bytes = serde_json::to_vec(&json!({"stock": 2})).unwrap();
    app.request(
        "PUT",
        &path,
        &[("content-type", "application/json")],
        Some(&bytes),
    )
    .assert_problem(428, "precondition-required");
    count(&app, id, "a", 2, ("if-match", "*")).assert_problem(428, "precondition-required");
    count(&app, id, "a", 2, ("if-match", "\"1\"")).assert_problem(412, "precondition-failed");
    let created = count(&app, id, "a", 2, ("if-none-match", "*"));
    assert_eq!(created.status, 201, "{}", text_of(&created));
    assert_eq!(created.header("location"), Some(path.as_str()));
    assert_eq!(
        created.json(),
        json!({"location_id": "a", "active": true, "stock": 2, "reserved": 0, "available": 2,
               "version": 1})
    );
    count(&app, id, "a", 3, ("if-none-match", "*")).assert_problem(412, "precondition-failed");
    let read = app.get(&path);
    assert_eq!(read.header("etag"), Some("\"1\""));
    let counted = count(&app, id, "a", 7, ("if-match", "\"1\""));
    assert_eq!(counted.status, 200, "{}", text_of(&counted));
    assert_eq!(counted.json()["version"], 2);
    count(&app, id, "a", 1, ("if-match", "\"1\"")).assert_problem(412, "precondition-failed");
    count(&app, id, "nowhere", 1, ("if-none-match", "*")).assert_problem(404, "not-found");
    let product = app.get(&format!("/product/{id}"));
    assert_eq!(product.json()["stock"], 11);
    // Two levels: no one stock to set through the product.
    let tag = product.header("etag").unwrap().to_owned();
    let bytes = serde_json::to_vec(&json!({"stock": 1})).unwrap();
    app.request(
        "PUT",
        &format!("/product/{id}"),
        &[("content-type", "application/json"), ("if-match", &tag)],
        Some(&bytes),
    )
    .assert_problem(409, "location-required");
    // Before any `If-Match` is looked at: without one it is still the location that is
    // missing, not the version.
    app.request(
        "PATCH",
        &format!("/product/{id}"),
        &[("content-type", "application/json")],
        Some(&bytes),
    )
    .assert_problem(409, "location-required");
    // A level is deleted only empty.
    app.request("DELETE", &path, &[], None)
        .assert_problem(409, "conflict");
    assert_eq!(count(&app, id, "a", 0, ("if-match", "\"2\"")).status, 200);
    assert_eq!(app.request("DELETE", &path, &[], None).status, 204);
    app.get(&path).assert_problem(404, "not-found");
    // One level again: the product's `stock` sets it.
    let product = app.get(&format!("/product/{id}"));
    let tag = product.header("etag").unwrap().to_owned();
    let set = app.request(
        "PUT",
        &format!("/product/{id}"),
        &[("content-type", "application/json"), ("if-match", &tag)],
        Some(&bytes),
    );
    assert_eq!(set.status, 200, "{}", text_of(&set));
    assert_eq!(by_location(&set.json()), [("default".to_owned(), 1, 0, 1)]);
}

/// Every row of the domain tables, by table.
fn dump(dir: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let db = rusqlite::Connection::open(dir.join("sqlite_db.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut out = BTreeMap::new();
    for table in [
        "products",
        "locations",
        "stock_levels",
        "hold_allocations",
        "reservations",
        "stock_ledger",
        "transfers",
        "outbox",
    ] {
        let rows = crate::migrations::table_rows(&db, &format!("SELECT * FROM {table}"));
        out.insert(table, rows);
    }
    out
}

fn every_refusal_of_the_contract_changes_nothing(target: Target) {
    let app = target.spawn_app();
    location(&app, "a", 10);
    location(&app, "closed", 20);
    let id = stocked(&app, &[("a", 3), ("default", 2), ("closed", 1)]);
    let other = stocked(&app, &[("default", 1)]);
    let held = post_keyed(
        &app,
        "/reservations",
        "setup-h",
        &json!({"order_id": "o", "lines": [{"product_id": id, "quantity": 1, "location_id": "a"}]}),
    );
    assert_eq!(held.status, 201, "{}", text_of(&held));
    let hold_id = held.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.send_json("PATCH", "/locations/closed", &json!({"active": false}))
            .status,
        200
    );
    let before = dump(app.state_dir.path());
    let keyed = |key: &str, path: &str, body: Value| post_keyed(&app, path, key, &body);
    let deduct_path = format!("/product/{id}/deduct");
    let cases: Vec<(TestResponse, u16, &str)> = vec![
        // More than available; split never with no single cover; a named location without a
        // level; a hold over what is there.
        (
            keyed("x1", &deduct_path, json!({"quantity": 5, "order_id": "o"})),
            409,
            "insufficient-stock",
        ),
        (
            keyed(
                "x2",
                &deduct_path,
                json!({"quantity": 3, "order_id": "o", "split": "never"}),
            ),
            409,
            "insufficient-stock",
        ),
        (
            keyed(
                "x3",
                &format!("/product/{other}/deduct"),
                json!({"quantity": 1, "order_id": "o", "location_id": "a"}),
            ),
            409,
            "insufficient-stock",
        ),
        (
            keyed(
                "x4",
                "/reservations",
                json!({"order_id": "o", "lines": [{"product_id": id, "quantity": 3, "locations": ["a"]}]}),
            ),
            409,
            "insufficient-stock",
        ),
        (
            keyed(
                "x5",
                "/stock/deduct",
                json!({"order_id": "o", "lines": [{"product_id": other, "quantity": 1}, {"product_id": id, "quantity": 9}]}),
            ),
            409,
            "insufficient-stock",
        ),
        (
            keyed(
                "x6",
                "/transfers",
                json!({"product_id": id, "from": "a", "to": "default", "quantity": 3}),
            ),
            409,
            "insufficient-stock",
        ),
        // Both location fields; an unknown or inactive location; from == to; location
        // fields on a restock.
        (
            keyed(
                "x7",
                &deduct_path,
                json!({"quantity": 1, "order_id": "o", "location_id": "a", "locations": ["a"]}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x8",
                &deduct_path,
                json!({"quantity": 1, "order_id": "o", "location_id": "closed"}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x9",
                "/stock/deduct",
                json!({"order_id": "o", "lines": [{"product_id": id, "quantity": 1, "locations": ["a", "nowhere"]}]}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x10",
                "/transfers",
                json!({"product_id": id, "from": "a", "to": "a", "quantity": 1}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x11",
                "/transfers",
                json!({"product_id": id, "from": "a", "to": "closed", "quantity": 1}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x12",
                &format!("/product/{id}/restock"),
                json!({"quantity": 1, "strategy": "priority"}),
            ),
            422,
            "validation",
        ),
        (
            keyed(
                "x13",
                &format!("/product/{id}/restock"),
                json!({"quantity": 1, "location_id": "closed"}),
            ),
            422,
            "validation",
        ),
        // Commit of more than held.
        (
            app.post_json(
                &format!("/reservations/{hold_id}/commit"),
                &json!({"lines": [{"product_id": id, "quantity": 2}]}),
            ),
            422,
            "validation",
        ),
        // The product's one stock, where it has several levels.
        (
            app.request(
                "PUT",
                &format!("/product/{id}"),
                &[("content-type", "application/json"), ("if-match", "\"1\"")],
                Some(br#"{"stock": 1}"#),
            ),
            409,
            "location-required",
        ),
        // A location or level with stock or holds; `default`.
        (
            app.request("DELETE", "/locations/a", &[], None),
            409,
            "conflict",
        ),
        (
            app.request("DELETE", "/locations/default", &[], None),
            409,
            "conflict",
        ),
        (
            app.send_json("PATCH", "/locations/default", &json!({"active": false})),
            409,
            "conflict",
        ),
        (
            app.request("DELETE", &format!("/product/{id}/stock/a"), &[], None),
            409,
            "conflict",
        ),
        (
            app.post_json("/locations", &json!({"id": "a", "name": "again"})),
            409,
            "conflict",
        ),
    ];
    for (i, (response, status, slug)) in cases.into_iter().enumerate() {
        assert_eq!(response.status, status, "case {i}: {}", text_of(&response));
        response.assert_problem(status, slug);
    }
    // The same key with another body.
    keyed("x1", &deduct_path, json!({"quantity": 1, "order_id": "o"}))
        .assert_problem(422, "idempotency-conflict");
    assert_eq!(dump(app.state_dir.path()), before);
}

/// Every taking, restock and release moves each level it changes on by one version, and its
/// product by one, however many levels it changed; a restock at a location with no level
/// makes it at version 1; each level whose stock moved has its ledger row.
fn every_stock_write_moves_each_level_and_its_product_on_once(target: Target) {
    let app = target.spawn_app();
    location(&app, "annex", 50);
    let id = stocked(&app, &[("default", 10)]);
    let level = |at: &str| {
        let read = app.get(&format!("/product/{id}/stock/{at}"));
        assert_eq!(read.status, 200, "{}", text_of(&read));
        let level = read.json();
        (
            level["stock"].as_i64().unwrap(),
            level["reserved"].as_i64().unwrap(),
            level["version"].as_i64().unwrap(),
        )
    };
    let version = || {
        app.get(&format!("/product/{id}")).json()["version"]
            .as_i64()
            .unwrap()
    };
    let newest = |n: usize| -> Vec<(String, i64, i64)> {
        ledger(&app, id)
            .iter()
            .take(n)
            .map(|e| {
                let at = e["location_id"].as_str().unwrap().to_owned();
                (
                    at,
                    e["delta"].as_i64().unwrap(),
                    e["stock_after"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    app.get(&format!("/product/{id}/stock/annex"))
        .assert_problem(404, "not-found");
    let (v0, default_v0) = (version(), level("default").2);

    let restocked = post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "w1",
        &json!({"quantity": 4, "location_id": "annex"}),
    );
    assert_eq!(restocked.status, 200, "{}", text_of(&restocked));
    assert_eq!(level("annex"), (4, 0, 1));
    assert_eq!(version(), v0 + 1);
    assert_eq!(newest(1), [("annex".to_owned(), 4, 4)]);

    let deducted = deduct(
        &app,
        id,
        "w2",
        json!({"quantity": 3, "location_id": "annex"}),
    );
    assert_eq!(deducted.status, 200, "{}", text_of(&deducted));
    assert_eq!(level("annex"), (1, 0, 2));
    assert_eq!(version(), v0 + 2);
    assert_eq!(newest(1), [("annex".to_owned(), -3, 1)]);

    // A hold and its release move the level's version, not its stock: no ledger row.
    let ledger_rows = ledger(&app, id).len();
    let held = post_keyed(
        &app,
        "/reservations",
        "w3",
        &json!({"order_id": "ord-w3", "lines": [
            {"product_id": id, "quantity": 1, "location_id": "annex"}]}),
    );
    assert_eq!(held.status, 201, "{}", text_of(&held));
    assert_eq!(level("annex"), (1, 1, 3));
    assert_eq!(version(), v0 + 3);
    let released = app.request(
        "POST",
        &format!(
            "/reservations/{}/release",
            held.json()["id"].as_str().unwrap()
        ),
        &[],
        None,
    );
    assert_eq!(released.status, 200, "{}", text_of(&released));
    assert_eq!(level("annex"), (1, 0, 4));
    assert_eq!(version(), v0 + 4);
    assert_eq!(ledger(&app, id).len(), ledger_rows);

    // Split over two levels: each level on by one, the product by one, a row each.
    let split = deduct(&app, id, "w4", json!({"quantity": 6}));
    assert_eq!(split.status, 200, "{}", text_of(&split));
    assert_eq!(
        allocations(&split.json()["allocations"]),
        at(&[("annex", 1), ("default", 5)])
    );
    assert_eq!(level("annex"), (0, 0, 5));
    assert_eq!(level("default"), (5, 0, default_v0 + 1));
    assert_eq!(version(), v0 + 5);
    let mut rows = newest(2);
    rows.sort();
    assert_eq!(
        rows,
        [("annex".to_owned(), -1, 0), ("default".to_owned(), -5, 5)]
    );
    assert_eq!(app.get(&format!("/product/{id}")).json()["stock"], 5);
}

on_every_target!(
    locations_are_created_listed_changed_and_deleted_by_their_rules,
    takings_take_where_the_request_says_and_answer_where_from,
    what_a_view_shows_is_what_a_split_hold_can_take,
    transfers_move_unheld_units_between_levels,
    level_counts_are_compare_and_set,
    every_refusal_of_the_contract_changes_nothing,
    every_stock_write_moves_each_level_and_its_product_on_once,
);

/// A small deterministic generator, one per client.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % n as u64).unwrap()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the clients saw answered 200/201: units that left each level, by (product,
/// location), and the transfers' units in and out.
#[derive(Default)]
struct Seen {
    taken: BTreeMap<(i64, String), i64>,
    moved: BTreeMap<(i64, String), i64>,
    never_split_answers: usize,
}

impl Seen {
    fn take(&mut self, product: i64, taken: &Value) {
        for (location, quantity) in allocations(taken) {
            *self.taken.entry((product, location)).or_default() += quantity;
        }
    }

    fn merge(&mut self, other: Seen) {
        for (key, units) in other.taken {
            *self.taken.entry(key).or_default() += units;
        }
        for (key, units) in other.moved {
            *self.moved.entry(key).or_default() += units;
        }
        self.never_split_answers += other.never_split_answers;
    }
}

/// A line's `location_id` or `locations`, or neither, at random.
fn source(dice: &mut Dice, line: &mut Value) {
    match dice.below(4) {
        0 => line["location_id"] = json!(dice.pick(&["north", "default"])),
        1 => line["locations"] = json!(["north", "default"]),
        2 => line["locations"] = json!(["default", "north"]),
        _ => {}
    }
}

/// `strategy` and `split` at random; whether it is `never`.
fn rules(dice: &mut Dice, body: &mut Value) -> bool {
    if dice.below(2) == 0 {
        body["strategy"] = json!("most_available");
    }
    let never = dice.below(3) == 0;
    if never {
        body["split"] = json!("never");
    }
    never
}

/// One client's share of the workload: deducts, batches, holds, commits, releases,
/// transfers and stock counts, with random locations, strategies and splits.
fn client(app: &TestApp, index: usize, products: &[i64], rounds: usize) -> Seen {
    let mut dice = Dice(0x9e37_79b9 + index as u64 * 7919);
    let mut seen = Seen::default();
    let mut holds: Vec<String> = Vec::new();
    for round in 0..rounds {
        let key = format!("c{index}-{round}");
        let product = *dice.pick(products);
        match dice.below(7) {
            0 => {
                let mut body = json!({"quantity": 1 + dice.below(4), "order_id": key});
                source(&mut dice, &mut body);
                let never = rules(&mut dice, &mut body);
                let answer = post_keyed(app, &format!("/product/{product}/deduct"), &key, &body);
                match answer.status {
                    200 => {
                        let taken = &answer.json()["allocations"];
                        if never {
                            assert_eq!(allocations(taken).len(), 1, "split never: {taken}");
                            seen.never_split_answers += 1;
                        }
                        seen.take(product, taken);
                    }
                    409 | 422 => {}
                    other => panic!("deduct {other}: {}", text_of(&answer)),
                }
            }
            1 => {
                let other = *dice.pick(products);
                let mut lines = vec![
                    json!({"product_id": product, "quantity": 1 + dice.below(3)}),
                    json!({"product_id": other, "quantity": 1 + dice.below(3)}),
                ];
                for line in &mut lines {
                    source(&mut dice, line);
                }
                let mut body = json!({"order_id": key, "lines": lines});
                let never = rules(&mut dice, &mut body);
                let answer = post_keyed(app, "/stock/deduct", &key, &body);
                match answer.status {
                    200 => {
                        for line in answer.json()["lines"].as_array().unwrap() {
                            let id = line["product_id"].as_i64().unwrap();
                            // Two lines of one product merge; each line alone is whole.
                            if never && product != other {
                                let taken = allocations(&line["allocations"]);
                                assert_eq!(taken.len(), 1, "split never: {line}");
                                seen.never_split_answers += 1;
                            }
                            seen.take(id, &line["allocations"]);
                        }
                    }
                    409 | 422 => {}
                    other => panic!("batch {other}: {}", text_of(&answer)),
                }
            }
            2 => {
                let mut line = json!({"product_id": product, "quantity": 1 + dice.below(4)});
                source(&mut dice, &mut line);
                let mut body = json!({"order_id": key, "lines": [line]});
                let never = rules(&mut dice, &mut body);
                let answer = post_keyed(app, "/reservations", &key, &body);
                match answer.status {
                    201 => {
                        let hold = answer.json();
                        if never {
                            let held = allocations(&hold["lines"][0]["allocations"]);
                            assert_eq!(held.len(), 1, "split never: {hold}");
                            seen.never_split_answers += 1;
                        }
                        holds.push(hold["id"].as_str().unwrap().to_owned());
                    }
                    409 | 422 => {}
                    other => panic!("hold {other}: {}", text_of(&answer)),
                }
            }
            3 | 4 if !holds.is_empty() => {
                let hold = holds.swap_remove(dice.below(holds.len()));
                if dice.below(3) == 0 {
                    let released =
                        app.request("POST", &format!("/reservations/{hold}/release"), &[], None);
                    assert_eq!(released.status, 200, "{}", text_of(&released));
                } else {
                    let committed =
                        app.request("POST", &format!("/reservations/{hold}/commit"), &[], None);
                    match committed.status {
                        200 => {
                            for line in committed.json()["lines"].as_array().unwrap() {
                                let id = line["product_id"].as_i64().unwrap();
                                seen.take(id, &line["allocations"]);
                            }
                        }
                        // A stock count set the level below what was held.
                        409 => {}
                        other => panic!("commit {other}: {}", text_of(&committed)),
                    }
                }
            }
            5 => {
                let (from, to) = *dice.pick(&[("north", "default"), ("default", "north")]);
                let quantity = 1 + dice.below(5);
                let body = json!({"product_id": product, "from": from, "to": to,
                                  "quantity": quantity});
                let answer = post_keyed(app, "/transfers", &key, &body);
                match answer.status {
                    201 => {
                        let units = i64::try_from(quantity).unwrap();
                        *seen.moved.entry((product, from.to_owned())).or_default() -= units;
                        *seen.moved.entry((product, to.to_owned())).or_default() += units;
                    }
                    409 => {}
                    other => panic!("transfer {other}: {}", text_of(&answer)),
                }
            }
            _ => {
                let at = *dice.pick(&["north", "default"]);
                let path = format!("/product/{product}/stock/{at}");
                let level = app.get(&path);
                assert_eq!(level.status, 200, "{}", text_of(&level));
                let tag = level.header("etag").unwrap().to_owned();
                let stock = 20 + dice.below(60);
                let counted = count(
                    app,
                    product,
                    at,
                    i64::try_from(stock).unwrap(),
                    ("if-match", &tag),
                );
                assert!(matches!(counted.status, 200 | 412), "{}", text_of(&counted));
            }
        }
    }
    seen
}

/// 32 clients, two locations, three products, a few thousand requests of every kind that
/// moves stock, with random location choices; then every level, ledger row, answer and event
/// agrees. (Host-only: the run is long, and the rules are the app's, the same on every
/// runtime, where the API tests above run.)
#[test]
fn a_mixed_concurrent_workload_over_two_locations_keeps_every_number_in_agreement() {
    let receiver = crate::receiver::Receiver::start();
    let urls = format!("order_events_urls={}", receiver.url("/hooks"));
    // Every client is the test's subject: the rate limit would count them as one.
    let app = Target::host().spawn_app_with(&[
        "--variable",
        &urls,
        "--variable",
        "rate_limit_requests=100000000",
    ]);
    location(&app, "north", 10);
    let products: Vec<i64> = (0..3)
        .map(|_| stocked(&app, &[("default", 60), ("north", 60)]))
        .collect();
    let rounds = 80;
    let seen = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..32)
            .map(|i| {
                let (app, products) = (&app, &products);
                scope.spawn(move || client(app, i, products, rounds))
            })
            .collect();
        let mut seen = Seen::default();
        for client in clients {
            seen.merge(client.join().unwrap());
        }
        seen
    });
    assert!(
        seen.never_split_answers > 20,
        "{}",
        seen.never_split_answers
    );

    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let query = |sql: &str| -> Vec<(i64, String, i64)> {
        let mut statement = db.prepare(sql).unwrap();
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    for &id in &products {
        let product = app.get(&format!("/product/{id}")).json();
        let levels = app.get(&format!("/product/{id}/stock")).json();
        let mut total = 0;
        for level in levels["items"].as_array().unwrap() {
            let at = level["location_id"].as_str().unwrap().to_owned();
            let stock = level["stock"].as_i64().unwrap();
            assert!(
                stock >= 0 && level["available"].as_i64().unwrap() >= 0,
                "{level}"
            );
            total += stock;
            // Per location, the ledger sums to the level.
            let sum: i64 = ledger(&app, id)
                .iter()
                .filter(|row| row["location_id"] == at.as_str())
                .map(|row| row["delta"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, stock, "product {id} at {at}");
            // What left the level by sales is what the answers said left it.
            let sold = query(&format!(
                "SELECT product_id, location_id, -coalesce(sum(delta), 0) FROM stock_ledger \
                 WHERE product_id = {id} AND location_id = '{at}' AND reason = 'deducted'"
            ));
            let answered = seen.taken.get(&(id, at.clone())).copied().unwrap_or(0);
            assert_eq!(sold[0].2, answered, "sold at {at} of product {id}");
            let moved = query(&format!(
                "SELECT product_id, location_id, coalesce(sum(delta), 0) FROM stock_ledger \
                 WHERE product_id = {id} AND location_id = '{at}' AND transfer_id IS NOT NULL"
            ));
            let answered = seen.moved.get(&(id, at.clone())).copied().unwrap_or(0);
            assert_eq!(moved[0].2, answered, "moved at {at} of product {id}");
        }
        // Both locations are active: the product's stock is the sum of its levels.
        assert_eq!(product["stock"].as_i64().unwrap(), total, "{product}");
    }

    // Every event's levels are ledger rows: each row (but a product's first) is told once.
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM stock_ledger WHERE reason <> 'created'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let events: usize = db
        .query_row("SELECT count(DISTINCT event_id) FROM outbox", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(|n| usize::try_from(n).unwrap())
        .unwrap();
    let delivered = receiver.wait_for_events(events, Duration::from_secs(240));
    let mut told: BTreeMap<(i64, String, i64, i64), i64> = BTreeMap::new();
    let mut seen_ids = std::collections::HashSet::new();
    for delivery in &delivered {
        if !seen_ids.insert(delivery.id().to_owned()) {
            continue;
        }
        let event = delivery.json();
        let kind = event["type"].as_str().unwrap();
        if !matches!(
            kind,
            "stock.deducted" | "stock.restocked" | "stock.set" | "stock.transferred"
        ) {
            continue;
        }
        let data = &event["data"];
        let id = data["product_id"].as_i64().unwrap();
        let mut sum = 0;
        for level in data["levels"].as_array().unwrap() {
            let delta = level["delta"].as_i64().unwrap();
            sum += level["stock"].as_i64().unwrap();
            if delta != 0 {
                let key = (
                    id,
                    level["location_id"].as_str().unwrap().to_owned(),
                    delta,
                    level["stock"].as_i64().unwrap(),
                );
                *told.entry(key).or_default() += 1;
            }
        }
        assert!(sum <= data["stock"].as_i64().unwrap(), "{event}");
    }
    let mut recorded: BTreeMap<(i64, String, i64, i64), i64> = BTreeMap::new();
    let mut statement = db
        .prepare("SELECT product_id, location_id, delta, stock_after FROM stock_ledger WHERE reason <> 'created'")
        .unwrap();
    for row in statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
    {
        *recorded.entry(row.unwrap()).or_default() += 1;
    }
    assert_eq!(recorded.values().sum::<i64>(), rows);
    assert_eq!(
        told, recorded,
        "the events' levels and the ledger's rows differ"
    );
}
