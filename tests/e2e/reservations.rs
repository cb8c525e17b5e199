//! Checkout holds end to end: a hold takes units out of `available` until it is committed,
//! released, or it expires (the instant it expires, with no request in between); commits
//! and releases are safe to retry; nothing ever sells a unit twice.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::{on_every_target, Target, TestApp, TestResponse};
use crate::stock::{assert_ledger_sums, deduct, ledger, post_keyed, product};

/// Holds `lines` (`[(product, quantity)]`) for `ttl` seconds under `key`.
pub(crate) fn hold(app: &TestApp, key: &str, lines: &[(i64, i64)], ttl: i64) -> TestResponse {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}))
        .collect();
    post_keyed(
        app,
        "/reservations",
        key,
        &json!({"order_id": format!("ord-{key}"), "lines": lines, "ttl_seconds": ttl}),
    )
}

/// A hold that must succeed: its id.
pub(crate) fn held(app: &TestApp, key: &str, lines: &[(i64, i64)], ttl: i64) -> String {
    let response = hold(app, key, lines, ttl);
    assert_eq!(
        response.status,
        201,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["id"].as_str().unwrap().to_owned()
}

/// `POST /reservations/{id}/{action}` (`commit`, `release`), without a body.
pub(crate) fn act(app: &TestApp, id: &str, action: &str) -> TestResponse {
    app.request("POST", &format!("/reservations/{id}/{action}"), &[], None)
}

fn commit_lines(app: &TestApp, id: &str, lines: Value) -> TestResponse {
    let body = serde_json::to_vec(&json!({ "lines": lines })).unwrap();
    app.request(
        "POST",
        &format!("/reservations/{id}/commit"),
        &[("content-type", "application/json")],
        Some(&body),
    )
}

/// `(stock, reserved, available)` of a product.
fn quantities(app: &TestApp, id: i64) -> (i64, i64, i64) {
    let p = app.get(&format!("/product/{id}")).json();
    let get = |name: &str| p[name].as_i64().unwrap_or_else(|| panic!("{name} in {p}"));
    (get("stock"), get("reserved"), get("available"))
}

fn a_hold_takes_units_out_of_available_until_it_is_committed_once(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    let created = hold(&app, "h1", &[(id, 3)], 900);
    assert_eq!(created.status, 201);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let body = created.json();
    let hold_id = body["id"].as_str().unwrap().to_owned();
    assert!(hold_id.starts_with("res_") && hold_id.len() == 36, "{body}");
    assert_eq!(
        created.header("location"),
        Some(format!("/reservations/{hold_id}").as_str())
    );
    assert_eq!(body["status"], "active");
    assert_eq!(body["order_id"], "ord-h1");
    assert_eq!(
        body["lines"],
        json!([{"product_id": id, "quantity": 3,
                "allocations": [{"location_id": "default", "quantity": 3}]}])
    );
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(quantities(&app, id), (10, 3, 7));
    // The ETag names what is held, and reading it again is a 304.
    let read = app.get(&format!("/product/{id}"));
    let etag = read.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"2-3\"");
    let again = app.request(
        "GET",
        &format!("/product/{id}"),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);

    // Only what is available can be sold.
    let refused = deduct(&app, id, 8, "d1");
    let problem = refused.assert_problem(409, "insufficient-stock");
    assert_eq!(problem["available"], 7);
    assert_eq!(deduct(&app, id, 7, "d2").status, 200);
    assert_eq!(quantities(&app, id), (3, 3, 0));

    let committed = act(&app, &hold_id, "commit");
    assert_eq!(
        committed.status,
        200,
        "{}",
        String::from_utf8_lossy(&committed.body)
    );
    let answer = committed.json();
    assert_eq!(
        answer,
        json!({"id": hold_id, "status": "committed", "order_id": "ord-h1", "lines": [
            {"product_id": id, "stock": 0, "reserved": 0, "available": 0, "deducted": 3,
             "allocations": [{"location_id": "default", "quantity": 3}]}
        ]})
    );
    // Again: the same answer, and nothing changes.
    let twice = act(&app, &hold_id, "commit");
    assert_eq!(twice.status, 200);
    assert_eq!(twice.json(), answer);
    assert_eq!(quantities(&app, id), (0, 0, 0));
    let entries = assert_ledger_sums(&app, id);
    let deducted: Vec<&Value> = entries
        .iter()
        .filter(|e| e["reason"] == "deducted")
        .collect();
    assert_eq!(deducted.len(), 2, "the deduct and one commit: {entries:?}");
    assert_eq!(deducted[0]["order_id"], "ord-h1");
    assert_eq!(deducted[0]["delta"], -3);
    // The sale is done: releasing it is refused.
    let release = act(&app, &hold_id, "release");
    let problem = release.assert_problem(409, "reservation-inactive");
    assert_eq!(problem["reservation_status"], "committed");
    assert_eq!(
        app.get(&format!("/reservations/{hold_id}")).json()["status"],
        "committed"
    );
}

fn a_partial_commit_deducts_what_it_names_and_releases_the_rest(target: Target) {
    let app = target.spawn_app();
    let (a, b) = (product(&app, 10), product(&app, 10));
    let id = held(&app, "p1", &[(a, 4), (b, 2)], 900);
    // A line the hold does not hold, or more than it holds: 422, nothing changes.
    let stray = commit_lines(&app, &id, json!([{"product_id": a + b + 1, "quantity": 1}]));
    stray.assert_problem(422, "validation");
    let greedy = commit_lines(&app, &id, json!([{"product_id": a, "quantity": 5}]));
    greedy.assert_problem(422, "validation");
    assert_eq!(quantities(&app, a), (10, 4, 6));

    let partial = commit_lines(
        &app,
        &id,
        json!([{"product_id": a, "quantity": 1}, {"product_id": a, "quantity": 2}]),
    );
    assert_eq!(
        partial.status,
        200,
        "{}",
        String::from_utf8_lossy(&partial.body)
    );
    assert_eq!(
        partial.json()["lines"],
        json!([{"product_id": a, "stock": 7, "reserved": 0, "available": 7, "deducted": 3,
                "allocations": [{"location_id": "default", "quantity": 3}]}])
    );
    // The rest is available again: one unit of `a`, both of `b`.
    assert_eq!(quantities(&app, a), (7, 0, 7));
    assert_eq!(quantities(&app, b), (10, 0, 10));
    assert_eq!(
        ledger(&app, b).len(),
        1,
        "only the create: nothing of b was sold"
    );
}

fn a_hold_that_expires_stops_counting_at_once_and_can_no_longer_be_committed(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 5);
    let hold_id = held(&app, "e1", &[(id, 5)], 1);
    assert_eq!(quantities(&app, id), (5, 5, 0));
    deduct(&app, id, 1, "e-d1").assert_problem(409, "insufficient-stock");
    std::thread::sleep(Duration::from_millis(1_100));
    // No request in between: the product reads its units available again.
    assert_eq!(quantities(&app, id), (5, 0, 5));
    let committed = act(&app, &hold_id, "commit");
    let problem = committed.assert_problem(409, "reservation-inactive");
    assert_eq!(problem["reservation_status"], "expired");
    let extended = app.send_json(
        "PATCH",
        &format!("/reservations/{hold_id}"),
        &json!({"ttl_seconds": 60}),
    );
    extended.assert_problem(409, "reservation-inactive");
    // Releasing an expired hold changes nothing.
    let released = act(&app, &hold_id, "release");
    assert_eq!(released.status, 200);
    assert_eq!(released.json()["status"], "expired");
    assert_eq!(deduct(&app, id, 5, "e-d2").status, 200);
}

fn an_extended_hold_outlives_its_first_expiry(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 3);
    let hold_id = held(&app, "x1", &[(id, 2)], 1);
    let extended = app.send_json(
        "PATCH",
        &format!("/reservations/{hold_id}"),
        &json!({"ttl_seconds": 30}),
    );
    assert_eq!(
        extended.status,
        200,
        "{}",
        String::from_utf8_lossy(&extended.body)
    );
    assert_eq!(extended.json()["status"], "active");
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(quantities(&app, id), (3, 2, 1));
    assert_eq!(
        app.get(&format!("/reservations/{hold_id}")).json()["status"],
        "active"
    );
    assert_eq!(act(&app, &hold_id, "commit").status, 200);
    assert_eq!(quantities(&app, id), (1, 0, 1));
}

fn a_product_with_units_on_hold_is_not_deleted_until_its_holds_end(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 4);
    let hold_id = held(&app, "del1", &[(id, 1)], 900);
    let refused = app.request("DELETE", &format!("/product/{id}"), &[], None);
    let problem = refused.assert_problem(409, "conflict");
    assert!(
        problem["detail"].as_str().unwrap().contains("held"),
        "{problem}"
    );
    // Nothing changed: the hold still commits.
    assert_eq!(act(&app, &hold_id, "commit").status, 200);
    let deleted = app.request("DELETE", &format!("/product/{id}"), &[], None);
    assert_eq!(deleted.status, 204);
}

fn a_released_hold_gives_its_units_back_and_releasing_again_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 4);
    let hold_id = held(&app, "r1", &[(id, 4)], 900);
    assert_eq!(quantities(&app, id), (4, 4, 0));
    let released = act(&app, &hold_id, "release");
    assert_eq!(released.status, 200);
    assert_eq!(released.json()["status"], "released");
    assert_eq!(quantities(&app, id), (4, 0, 4));
    let again = act(&app, &hold_id, "release");
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), released.json());
    act(&app, &hold_id, "commit").assert_problem(409, "reservation-inactive");
    assert_eq!(ledger(&app, id).len(), 1, "a hold moves no stock");
}

fn a_hold_is_all_or_nothing_needs_a_key_and_a_retry_replays_it(target: Target) {
    let app = target.spawn_app();
    let (a, b) = (product(&app, 2), product(&app, 1));
    let short = hold(&app, "n1", &[(a, 2), (b, 2)], 900);
    let problem = short.assert_problem(409, "insufficient-stock");
    assert_eq!(
        problem["lines"],
        json!([{"product_id": b, "requested": 2, "available": 1,
                "by_location": [{"location_id": "default", "available": 1}]}])
    );
    hold(&app, "n2", &[(a, 1), (999, 1)], 900).assert_problem(404, "not-found");
    assert_eq!(quantities(&app, a), (2, 0, 2));
    // Lines naming one product add up.
    let summed = hold(&app, "n3", &[(a, 1), (a, 1)], 900);
    assert_eq!(summed.status, 201);
    assert_eq!(
        summed.json()["lines"],
        json!([{"product_id": a, "quantity": 2,
                "allocations": [{"location_id": "default", "quantity": 2}]}])
    );
    let retry = hold(&app, "n3", &[(a, 1), (a, 1)], 900);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.header("location"), summed.header("location"));
    assert_eq!(retry.json(), summed.json());
    assert_eq!(quantities(&app, a), (2, 2, 0), "held once");

    let body =
        serde_json::to_vec(&json!({"order_id": "o", "lines": [{"product_id": a, "quantity": 1}]}))
            .unwrap();
    let keyless = app.request(
        "POST",
        "/reservations",
        &[("content-type", "application/json")],
        Some(&body),
    );
    keyless.assert_problem(400, "invalid-request");
    let broken = post_keyed(
        &app,
        "/reservations",
        "n4",
        &json!({"lines": [{"product_id": 0, "quantity": 1}], "ttl_seconds": 0, "status": "x"}),
    );
    let fields = broken.validation_fields();
    assert_eq!(
        fields,
        ["status", "order_id", "lines[0].product_id", "ttl_seconds"]
    );
    app.request("GET", "/reservations/not-an-id", &[], None)
        .assert_problem(400, "invalid-request");
    app.get("/reservations/res_00000000000000000000000000000000")
        .assert_problem(404, "not-found");
}

fn a_stock_count_below_what_is_held_refuses_the_commit_that_no_longer_fits(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 5);
    let first = held(&app, "c1", &[(id, 3)], 900);
    let second = held(&app, "c2", &[(id, 2)], 900);
    let etag = app
        .get(&format!("/product/{id}"))
        .header("etag")
        .unwrap()
        .to_owned();
    let count = serde_json::to_vec(&json!({"stock": 3})).unwrap();
    let set = app.request(
        "PUT",
        &format!("/product/{id}"),
        &[("content-type", "application/json"), ("if-match", &etag)],
        Some(&count),
    );
    assert_eq!(set.status, 200, "{}", String::from_utf8_lossy(&set.body));
    // More held than on hand: nothing is available, never less than nothing.
    assert_eq!(quantities(&app, id), (3, 5, 0));
    assert_eq!(act(&app, &first, "commit").status, 200);
    let late = act(&app, &second, "commit");
    let problem = late.assert_problem(409, "insufficient-stock");
    assert_eq!(
        problem["lines"],
        json!([{"product_id": id, "requested": 2, "available": 0,
                "by_location": [{"location_id": "default", "available": 0}]}])
    );
    assert_eq!(
        app.get(&format!("/reservations/{second}")).json()["status"],
        "active"
    );
    assert_eq!(act(&app, &second, "release").status, 200);
    assert_eq!(quantities(&app, id), (0, 0, 0));
    assert_ledger_sums(&app, id);
}

fn holds_are_listed_newest_first_by_order_and_status(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    let a = held(&app, "l1", &[(id, 1)], 900);
    let b = held(&app, "l2", &[(id, 1)], 900);
    let c = held(&app, "l3", &[(id, 1)], 900);
    assert_eq!(act(&app, &b, "release").status, 200);
    let ids = |query: &str| -> Vec<String> {
        let page = app.get(&format!("/reservations{query}")).json();
        page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(""), [c.clone(), b.clone(), a.clone()]);
    assert_eq!(ids("?status=active"), [c.clone(), a.clone()]);
    assert_eq!(ids("?status=released"), std::slice::from_ref(&b));
    assert_eq!(ids("?order_id=ord-l1"), std::slice::from_ref(&a));
    assert_eq!(
        ids("?order_id=ord-l1&status=released"),
        Vec::<String>::new()
    );
    let page = app.get("/reservations?limit=2");
    assert_eq!(page.json()["total"], 3);
    assert!(page.header("link").unwrap().contains("rel=\"next\""));
    app.get("/reservations?status=gone")
        .assert_problem(400, "invalid-request");
}

fn concurrent_holds_and_deducts_never_sell_more_than_the_stock(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 50);
    let statuses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|worker| {
                let app = &app;
                scope.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let key = format!("w{worker}-{i}");
                            let response = if i % 3 == 0 {
                                deduct(app, id, 1, &key)
                            } else {
                                hold(app, &key, &[(id, 1)], 900)
                            };
                            (response.status, response.json())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let won = statuses
        .iter()
        .filter(|(s, _)| *s == 200 || *s == 201)
        .count();
    assert_eq!(won, 50, "{statuses:?}");
    assert!(statuses.iter().all(|(s, _)| [200, 201, 409].contains(s)));
    for (_, body) in &statuses {
        if let Some(available) = body.get("available").and_then(Value::as_i64) {
            assert!(available >= 0, "{body}");
        }
    }
    // What was deducted left the stock; what is held is all that remains.
    let (stock, reserved, available) = quantities(&app, id);
    assert_eq!(
        (reserved, available),
        (stock, 0),
        "held {reserved}, stock {stock}"
    );
    assert_ledger_sums(&app, id);
}

on_every_target!(
    a_hold_takes_units_out_of_available_until_it_is_committed_once,
    a_partial_commit_deducts_what_it_names_and_releases_the_rest,
    a_hold_that_expires_stops_counting_at_once_and_can_no_longer_be_committed,
    an_extended_hold_outlives_its_first_expiry,
    a_product_with_units_on_hold_is_not_deleted_until_its_holds_end,
    a_released_hold_gives_its_units_back_and_releasing_again_changes_nothing,
    a_hold_is_all_or_nothing_needs_a_key_and_a_retry_replays_it,
    a_stock_count_below_what_is_held_refuses_the_commit_that_no_longer_fits,
    holds_are_listed_newest_first_by_order_and_status,
    concurrent_holds_and_deducts_never_sell_more_than_the_stock,
);
