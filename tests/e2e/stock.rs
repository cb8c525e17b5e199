//! The stock API under real concurrency: no oversell, all-or-nothing batches, idempotency
//! keys, and a ledger that always sums to the stock.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::app::{on_every_target, Target, TestApp, TestResponse};

pub(crate) fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> TestResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    app.request(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(&bytes),
    )
}

pub(crate) fn deduct(app: &TestApp, id: i64, quantity: i64, key: &str) -> TestResponse {
    post_keyed(
        app,
        &format!("/product/{id}/deduct"),
        key,
        &json!({"quantity": quantity, "order_id": format!("ord-{key}")}),
    )
}

pub(crate) fn product(app: &TestApp, stock: i64) -> i64 {
    app.create_product(&json!({"name": "Mug", "price": 12.5, "stock": stock}))["id"]
        .as_i64()
        .unwrap()
}

pub(crate) fn stock_of(app: &TestApp, id: i64) -> i64 {
    app.get(&format!("/product/{id}")).json()["stock"]
        .as_i64()
        .unwrap()
}

/// Every ledger entry of a product, newest first, read through the paged API.
pub(crate) fn ledger(app: &TestApp, id: i64) -> Vec<Value> {
    let mut entries = Vec::new();
    for page in 1.. {
        let body = app
            .get(&format!("/product/{id}/movements?page={page}&limit=100"))
            .json();
        let items = body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            assert_eq!(entries.len() as i64, body["total"].as_i64().unwrap());
            return entries;
        }
        entries.extend(items);
    }
    unreachable!()
}

#[track_caller]
pub(crate) fn assert_ledger_sums(app: &TestApp, id: i64) -> Vec<Value> {
    let entries = ledger(app, id);
    let sum: i64 = entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum();
    let stock = stock_of(app, id);
    assert_eq!(sum, stock, "product {id}: ledger {entries:?}");
    if let Some(newest) = entries.first() {
        assert_eq!(newest["stock_after"].as_i64(), Some(stock));
    }
    entries
}

fn concurrent_deducts_never_sell_more_than_the_stock(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 50);
    let responses: Vec<TestResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..120)
            .map(|i| {
                let app = &app;
                scope.spawn(move || deduct(app, id, 1, &format!("burst-{i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = responses.iter().filter(|r| r.status == 200).count();
    let short: Vec<&TestResponse> = responses.iter().filter(|r| r.status == 409).collect();
    assert_eq!(
        ok,
        50,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(short.len(), 70);
    for response in short {
        let body = response.assert_problem(409, "insufficient-stock");
        assert_eq!(body["available"], 0);
        assert_eq!(body["requested"], 1);
    }
    assert_eq!(stock_of(&app, id), 0);
    let entries = assert_ledger_sums(&app, id);
    assert_eq!(entries.len(), 51, "one create and 50 deducts");
}

fn a_deduct_answers_with_the_new_stock_and_writes_the_ledger(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 40);
    let response = deduct(&app, id, 2, "k1");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"product_id": id, "stock": 38, "reserved": 0, "available": 38, "deducted": 2,
               "allocations": [{"location_id": "default", "quantity": 2}],
               "order_id": "ord-k1"})
    );
    let entries = assert_ledger_sums(&app, id);
    assert_eq!(entries[0]["delta"], -2);
    assert_eq!(entries[0]["reason"], "deducted");
    assert_eq!(entries[0]["order_id"], "ord-k1");
    // The product's version moved, so caches and If-Match see the change.
    assert_eq!(
        app.get(&format!("/product/{id}")).header("etag"),
        Some("\"2\"")
    );
    deduct(&app, 999, 1, "k2").assert_problem(404, "not-found");
}

fn a_batch_is_all_or_nothing_and_names_every_short_line(target: Target) {
    let app = target.spawn_app();
    let (a, b, c) = (product(&app, 5), product(&app, 1), product(&app, 10));
    let short = post_keyed(
        &app,
        "/stock/deduct",
        "batch-1",
        &json!({"order_id": "ord-9", "lines": [
            {"product_id": a, "quantity": 2},
            {"product_id": b, "quantity": 3},
            {"product_id": c, "quantity": 20}
        ]}),
    );
    let body = short.assert_problem(409, "insufficient-stock");
    assert_eq!(
        body["lines"],
        json!([
            {"product_id": b, "requested": 3, "available": 1,
             "by_location": [{"location_id": "default", "available": 1}]},
            {"product_id": c, "requested": 20, "available": 10,
             "by_location": [{"location_id": "default", "available": 10}]}
        ])
    );
    let missing = post_keyed(
        &app,
        "/stock/deduct",
        "batch-2",
        &json!({"order_id": "ord-9", "lines": [{"product_id": a, "quantity": 1}, {"product_id": 777, "quantity": 1}]}),
    );
    missing.assert_problem(404, "not-found");
    for (id, stock) in [(a, 5), (b, 1), (c, 10)] {
        assert_eq!(stock_of(&app, id), stock);
        assert_eq!(ledger(&app, id).len(), 1, "only the create");
    }

    let done = post_keyed(
        &app,
        "/stock/deduct",
        "batch-3",
        &json!({"order_id": "ord-10", "lines": [
            {"product_id": c, "quantity": 4},
            {"product_id": a, "quantity": 5},
            {"product_id": b, "quantity": 1}
        ]}),
    );
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(
        done.json(),
        json!({"order_id": "ord-10", "lines": [
            {"product_id": c, "stock": 6, "reserved": 0, "available": 6, "deducted": 4,
             "allocations": [{"location_id": "default", "quantity": 4}]},
            {"product_id": a, "stock": 0, "reserved": 0, "available": 0, "deducted": 5,
             "allocations": [{"location_id": "default", "quantity": 5}]},
            {"product_id": b, "stock": 0, "reserved": 0, "available": 0, "deducted": 1,
             "allocations": [{"location_id": "default", "quantity": 1}]}
        ]})
    );
    for id in [a, b, c] {
        let entries = assert_ledger_sums(&app, id);
        assert_eq!(entries[0]["order_id"], "ord-10");
    }
}

fn lines_naming_one_product_add_up(target: Target) {
    let app = target.spawn_app();
    let (a, b) = (product(&app, 5), product(&app, 9));
    let lines = json!([
        {"product_id": a, "quantity": 2},
        {"product_id": b, "quantity": 1},
        {"product_id": a, "quantity": 4}
    ]);
    // 2 + 4 of `a` is more than its 5: the shortfall names the total.
    let short = post_keyed(
        &app,
        "/stock/deduct",
        "sum-1",
        &json!({"order_id": "ord-s", "lines": lines}),
    );
    let body = short.assert_problem(409, "insufficient-stock");
    assert_eq!(
        body["lines"],
        json!([{"product_id": a, "requested": 6, "available": 5,
                "by_location": [{"location_id": "default", "available": 5}]}])
    );
    assert_eq!((stock_of(&app, a), stock_of(&app, b)), (5, 9));

    let done = post_keyed(
        &app,
        "/stock/deduct",
        "sum-2",
        &json!({"order_id": "ord-s", "lines": [
            {"product_id": a, "quantity": 2},
            {"product_id": b, "quantity": 1},
            {"product_id": a, "quantity": 3.0}
        ]}),
    );
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(
        done.json(),
        json!({"order_id": "ord-s", "lines": [
            {"product_id": a, "stock": 0, "reserved": 0, "available": 0, "deducted": 5,
             "allocations": [{"location_id": "default", "quantity": 5}]},
            {"product_id": b, "stock": 8, "reserved": 0, "available": 8, "deducted": 1,
             "allocations": [{"location_id": "default", "quantity": 1}]}
        ]})
    );
    // One ledger row per product, not per line.
    let entries = assert_ledger_sums(&app, a);
    assert_eq!(entries.len(), 2, "the create and one deduct: {entries:?}");
    assert_eq!(entries[0]["delta"], -5);
}

fn a_batch_with_broken_lines_reports_them_all_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let a = product(&app, 5);
    let response = post_keyed(
        &app,
        "/stock/deduct",
        "bad",
        &json!({"lines": [{"product_id": a, "quantity": 0}, {"product_id": a, "quantity": 1.5}, {"quantity": 1}]}),
    );
    assert_eq!(
        response.validation_fields(),
        vec![
            "order_id",
            "lines[0].quantity",
            "lines[1].quantity",
            "lines[2].product_id"
        ]
    );
    assert_eq!(stock_of(&app, a), 5);
}

fn a_replay_returns_the_first_response_and_another_body_under_the_key_is_422(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 3);
    let first = deduct(&app, id, 2, "order-1");
    assert_eq!(first.status, 200);
    let again = deduct(&app, id, 2, "order-1");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(stock_of(&app, id), 1);

    // Same meaning, other spelling: members reordered, whitespace added. Still a replay.
    let reordered = app.request(
        "POST",
        &format!("/product/{id}/deduct"),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "order-1"),
        ],
        Some(br#"{ "order_id": "ord-order-1",  "quantity": 2 }"#),
    );
    assert_eq!(reordered.status, 200);
    assert_eq!(reordered.body, first.body);

    let other = post_keyed(
        &app,
        &format!("/product/{id}/deduct"),
        "order-1",
        &json!({"quantity": 1, "order_id": "ord-order-1"}),
    );
    other.assert_problem(422, "idempotency-conflict");
    // The same product spelled with a leading zero is the same request.
    let zero = post_keyed(
        &app,
        &format!("/product/0{id}/deduct"),
        "order-1",
        &json!({"quantity": 2, "order_id": "ord-order-1"}),
    );
    assert_eq!(zero.body, first.body);
    let elsewhere = deduct(&app, id + 1, 2, "order-1");
    elsewhere.assert_problem(422, "idempotency-conflict");

    // A refusal is an answer too: its replay is the same 409, even once stock is back.
    let refused = deduct(&app, id, 5, "order-2");
    refused.assert_problem(409, "insufficient-stock");
    let restock = post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "restock-1",
        &json!({"quantity": 10}),
    );
    assert_eq!(restock.status, 200);
    let replayed = deduct(&app, id, 5, "order-2");
    assert_eq!(replayed.status, 409);
    assert_eq!(replayed.body, refused.body);
    assert_eq!(stock_of(&app, id), 11);
    assert_ledger_sums(&app, id);
}

fn concurrent_requests_with_one_key_apply_once(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 100);
    let responses: Vec<TestResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let app = &app;
                scope.spawn(move || deduct(app, id, 7, "same-key"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(responses.iter().all(|r| r.status == 200));
    assert!(responses.iter().all(|r| r.body == responses[0].body));
    assert_eq!(
        responses
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count(),
        1
    );
    assert_eq!(stock_of(&app, id), 93);
    assert_eq!(assert_ledger_sums(&app, id).len(), 2);
}

fn keys_belong_to_the_client_that_sent_them(target: Target) {
    let mut app = target.spawn_app();
    let id = product(&app, 10);
    assert_eq!(deduct(&app, id, 1, "shared").status, 200);
    app.auth =
        Some(crate::app::cli_token(&crate::app::manifest(), &["--sub", "other-service"]).unwrap());
    assert_eq!(
        deduct(&app, id, 1, "shared").header("idempotent-replayed"),
        None
    );
    assert_eq!(stock_of(&app, id), 8);
}

fn a_missing_or_malformed_idempotency_key_is_400_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    let path = format!("/product/{id}/deduct");
    let body = br#"{"quantity": 1, "order_id": "o"}"#;
    let missing = app.request(
        "POST",
        &path,
        &[("content-type", "application/json")],
        Some(body),
    );
    let detail = missing.assert_problem(400, "invalid-request");
    assert!(detail["detail"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    let long = "k".repeat(256);
    for key in ["", "has space", "tab\there", long.as_str()] {
        let response = app.request(
            "POST",
            &path,
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Some(body),
        );
        response.assert_problem(400, "invalid-request");
    }
    let longest = "k".repeat(255);
    let response = app.request(
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("idempotency-key", &longest),
        ],
        Some(body),
    );
    assert_eq!(response.status, 200, "255 visible characters are a key");
    assert_eq!(stock_of(&app, id), 9);
}

fn bad_stock_bodies_are_422_with_every_field_and_change_nothing(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    let response = post_keyed(
        &app,
        &format!("/product/{id}/deduct"),
        "v1",
        &json!({"quantity": 0, "order_id": "", "note": "x"}),
    );
    let body = response.assert_problem(422, "validation");
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");
    for bad in [
        json!({"quantity": 1_000_001, "order_id": "o"}),
        json!({"quantity": 1.5, "order_id": "o"}),
    ] {
        post_keyed(&app, &format!("/product/{id}/deduct"), "v2", &bad)
            .assert_problem(422, "validation");
    }
    post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "v3",
        &json!({"quantity": 1, "reason": "Bad Reason"}),
    )
    .assert_problem(422, "validation");
    assert_eq!(stock_of(&app, id), 10);
    assert_eq!(ledger(&app, id).len(), 1);
}

fn a_restock_past_the_maximum_stock_is_409_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 999_999_999);
    let response = post_keyed(
        &app,
        &format!("/product/{id}/restock"),
        "r1",
        &json!({"quantity": 2}),
    );
    response.assert_problem(409, "conflict");
    assert_eq!(stock_of(&app, id), 999_999_999);
}

fn stock_routes_need_their_scopes(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    let token =
        |scope: &str| crate::app::cli_token(&crate::app::manifest(), &["--scope", scope]).unwrap();
    let send = |scope: &str, method: &str, path: &str, key: &str| {
        let auth = format!("Bearer {}", token(scope));
        app.request(
            method,
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            (method == "POST").then_some(br#"{"quantity": 1, "order_id": "o"}"#.as_slice()),
        )
    };
    let deduct_path = format!("/product/{id}/deduct");
    let restock_path = format!("/product/{id}/restock");
    let movements = format!("/product/{id}/movements");
    send("inventory:write inventory:read", "POST", &deduct_path, "s1")
        .assert_problem(403, "forbidden");
    assert_eq!(send("stock:deduct", "POST", &deduct_path, "s2").status, 200);
    send("inventory:read", "POST", &restock_path, "s3").assert_problem(403, "forbidden");
    assert_eq!(
        send("stock:deduct", "POST", &restock_path, "s4").status,
        200
    );
    assert_eq!(
        send("inventory:write", "POST", &restock_path, "s5").status,
        200
    );
    send("stock:deduct", "GET", &movements, "-").assert_problem(403, "forbidden");
    assert_eq!(send("inventory:read", "GET", &movements, "-").status, 200);
    let batch = app.request(
        "POST",
        "/stock/deduct",
        &[
            (
                "authorization",
                &format!("Bearer {}", token("inventory:write")),
            ),
            ("content-type", "application/json"),
            ("idempotency-key", "s6"),
        ],
        Some(
            format!(r#"{{"order_id": "o", "lines": [{{"product_id": {id}, "quantity": 1}}]}}"#)
                .as_bytes(),
        ),
    );
    batch.assert_problem(403, "forbidden");
    assert_eq!(stock_of(&app, id), 11);
}

fn movements_are_newest_first_and_paged_with_links(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    for i in 0..4 {
        assert_eq!(deduct(&app, id, 1, &format!("m{i}")).status, 200);
    }
    let response = app.get(&format!("/product/{id}/movements?limit=2&page=2"));
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["total"], 5);
    let stocks: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stock_after"].as_i64().unwrap())
        .collect();
    assert_eq!(stocks, vec![8, 9], "newest first: 6, 7 | 8, 9 | 10");
    let links = response.header("link").unwrap();
    assert!(
        links.contains(&format!(
            "</product/{id}/movements?page=3&limit=2>; rel=\"next\""
        )),
        "{links}"
    );
    app.get(&format!("/product/{id}/movements?limit=0"))
        .assert_problem(400, "invalid-request");
    app.get(&format!("/product/{id}/movements?sort=asc"))
        .assert_problem(400, "invalid-request");
    app.get("/product/999/movements")
        .assert_problem(404, "not-found");
}

fn the_ledger_sums_to_the_stock_after_a_mixed_concurrent_workload(target: Target) {
    let app = target.spawn_app();
    let ids: Vec<i64> = (0..4).map(|_| product(&app, 30)).collect();
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (app, ids) = (&app, &ids);
            scope.spawn(move || {
                for step in 0..20 {
                    let id = ids[(worker + step) % ids.len()];
                    let key = format!("w{worker}-s{step}");
                    let response = match step % 5 {
                        0 | 1 => deduct(app, id, 1 + (step as i64 % 3), &key),
                        2 => post_keyed(
                            app,
                            &format!("/product/{id}/restock"),
                            &key,
                            &json!({"quantity": 2, "reason": "returned"}),
                        ),
                        3 => post_keyed(
                            app,
                            "/stock/deduct",
                            &key,
                            &json!({"order_id": key, "lines": [
                                {"product_id": ids[0], "quantity": 1},
                                {"product_id": ids[3], "quantity": 2}
                            ]}),
                        ),
                        // A stock count: compare-and-set against the version read.
                        _ => {
                            let path = format!("/product/{id}");
                            let read = app.get(&path);
                            let etag = read.header("etag").unwrap().to_owned();
                            let body = serde_json::to_vec(&json!({"stock": 25 + worker})).unwrap();
                            app.request(
                                "PUT",
                                &path,
                                &[("content-type", "application/json"), ("if-match", &etag)],
                                Some(&body),
                            )
                        }
                    };
                    // Applied, refused for want of stock, or (a count) refused because the
                    // product moved since it was read; never a server error.
                    assert!(
                        matches!(response.status, 200 | 409 | 412),
                        "{key}: {} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
            });
        }
    });
    let mut reasons = BTreeMap::new();
    for id in ids {
        for entry in assert_ledger_sums(&app, id) {
            *reasons
                .entry(entry["reason"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    for reason in ["created", "deducted", "returned", "set"] {
        assert!(reasons.contains_key(reason), "{reasons:?}");
    }
}

fn expired_idempotency_keys_are_deleted_by_later_writes(target: Target) {
    let app = target.spawn_app();
    let id = product(&app, 10);
    assert_eq!(deduct(&app, id, 1, "fresh").status, 200);
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
    db.execute(
        "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at) \
         VALUES ('tester', 'ancient', 'x', 200, '{}', CAST(strftime('%s', 'now') AS INTEGER) - 25 * 3600)",
        [],
    )
    .unwrap();
    assert_eq!(deduct(&app, id, 1, "later").status, 200);
    let keys: Vec<String> = db
        .prepare("SELECT key FROM idempotency_keys ORDER BY key")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys, vec!["fresh", "later"]);
}

on_every_target!(
    concurrent_deducts_never_sell_more_than_the_stock,
    a_deduct_answers_with_the_new_stock_and_writes_the_ledger,
    a_batch_is_all_or_nothing_and_names_every_short_line,
    lines_naming_one_product_add_up,
    a_batch_with_broken_lines_reports_them_all_and_changes_nothing,
    a_replay_returns_the_first_response_and_another_body_under_the_key_is_422,
    concurrent_requests_with_one_key_apply_once,
    keys_belong_to_the_client_that_sent_them,
    a_missing_or_malformed_idempotency_key_is_400_and_changes_nothing,
    bad_stock_bodies_are_422_with_every_field_and_change_nothing,
    a_restock_past_the_maximum_stock_is_409_and_changes_nothing,
    stock_routes_need_their_scopes,
    movements_are_newest_first_and_paged_with_links,
    the_ledger_sums_to_the_stock_after_a_mixed_concurrent_workload,
    expired_idempotency_keys_are_deleted_by_later_writes,
);
