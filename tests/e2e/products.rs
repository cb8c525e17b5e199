//! The products API (`api/openapi.json`, `/product` paths): create, read, update, delete and
//! list, bad inputs included.

use serde_json::{json, Value};

use crate::app::{on_every_target, Target, TestApp};

fn mug() -> Value {
    json!({"name": "Blue mug", "description": "350 ml", "price": 12.5, "stock": 40, "category_id": 3, "sku": "MUG-BLUE-350"})
}

fn total(app: &TestApp) -> u64 {
    app.get("/product").json()["total"].as_u64().unwrap()
}

fn creating_a_product_returns_201_with_location_etag_and_the_product(target: Target) {
    let app = target.spawn_app();
    let response = app.post_json("/product", &mug());
    assert_eq!(response.status, 201);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let product = response.json();
    let id = product["id"].as_u64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/product/{id}").as_str())
    );
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(product["name"], "Blue mug");
    assert_eq!(product["description"], "350 ml");
    assert_eq!(product["price"].to_string(), "12.5");
    assert_eq!(product["stock"], 40);
    assert_eq!(product["category_id"], 3);
    assert_eq!(product["sku"], "MUG-BLUE-350");
    assert_eq!(product["version"], 1);
    let created = product["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(product["updated_at"], product["created_at"]);
    assert_eq!(app.get(&format!("/product/{id}")).json(), product);
}

fn a_product_with_only_required_fields_gets_the_defaults_and_a_trimmed_name(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&json!({"name": "  Plain  ", "price": 0, "stock": 0}));
    assert_eq!(product["name"], "Plain");
    assert_eq!(product["description"], "");
    assert_eq!(product["category_id"], Value::Null);
    assert_eq!(product["sku"], Value::Null);
    assert_eq!(product["price"].to_string(), "0");
}

fn prices_are_stored_exactly(target: Target) {
    let app = target.spawn_app();
    for (input, output) in [
        ("0.1", "0.1"),
        ("19.99", "19.99"),
        ("1000000000", "1000000000"),
        ("1.10", "1.1"),
        ("2.05", "2.05"),
    ] {
        let body = format!(r#"{{"name": "p", "price": {input}, "stock": 1}}"#);
        let response = app.request(
            "POST",
            "/product",
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        );
        assert_eq!(response.status, 201, "{input}");
        let raw = String::from_utf8(response.body).unwrap();
        assert!(
            raw.contains(&format!("\"price\":{output},")),
            "{input} -> {raw}"
        );
    }
}

fn every_broken_field_is_reported_at_once_and_nothing_is_created(target: Target) {
    let app = target.spawn_app();
    let response = app.post_json(
        "/product",
        &json!({"name": "", "description": "d".repeat(2001), "price": 1.005, "stock": -1, "category_id": 0, "sku": "bad sku!"}),
    );
    let body = response.assert_problem(422, "validation");
    let errors = body["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "description",
            "price",
            "stock",
            "category_id",
            "sku"
        ],
        "{body}"
    );
    assert!(errors
        .iter()
        .all(|e| !e["message"].as_str().unwrap().is_empty()));
    assert_eq!(total(&app), 0);
}

fn missing_required_fields_and_wrong_types_are_422(target: Target) {
    let app = target.spawn_app();
    let body = app
        .post_json("/product", &json!({}))
        .assert_problem(422, "validation");
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");
    let cases = [
        json!({"name": 5, "price": 1, "stock": 1}),
        json!({"name": "a".repeat(201), "price": 1, "stock": 1}),
        json!({"name": "a", "price": "1", "stock": 1}),
        json!({"name": "a", "price": -0.01, "stock": 1}),
        json!({"name": "a", "price": 1000000000.01, "stock": 1}),
        json!({"name": "a", "price": 1, "stock": 1.5}),
        json!({"name": "a", "price": 1, "stock": 1000000001}),
        json!({"name": "a", "price": 1, "stock": 1, "sku": ""}),
        json!({"name": "a", "price": 1, "stock": 1, "sku": "x".repeat(65)}),
        json!({"name": "a", "price": 1, "stock": 1, "category_id": "3"}),
        json!({"name": "a", "price": 1, "stock": 1, "description": 7}),
    ];
    for case in cases {
        app.post_json("/product", &case)
            .assert_problem(422, "validation");
    }
    assert_eq!(total(&app), 0);
}

fn a_duplicate_sku_is_409_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let first = app.create_product(&mug());
    app.post_json("/product", &mug())
        .assert_problem(409, "conflict");
    let other =
        app.create_product(&json!({"name": "Other", "price": 1, "stock": 1, "sku": "OTHER"}));
    let path = format!("/product/{}", other["id"]);
    app.send_json("PUT", &path, &json!({"sku": "MUG-BLUE-350"}))
        .assert_problem(409, "conflict");
    assert_eq!(app.get(&path).json(), other);
    assert_eq!(total(&app), 2);
    assert_eq!(app.get(&format!("/product/{}", first["id"])).json(), first);
}

fn concurrent_creates_with_one_sku_make_exactly_one_product(target: Target) {
    let app = target.spawn_app();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| app.post_json("/product", &mug()).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(total(&app), 1);
}

fn get_supports_if_none_match_and_rejects_bad_ids(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);
    let response = app.get(&path);
    assert_eq!(response.header("etag"), Some("\"1\""));
    let not_modified = app.request("GET", &path, &[("if-none-match", "\"1\"")], None);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some("\"1\""));
    assert!(not_modified.body.is_empty());
    assert_eq!(
        app.request("GET", &path, &[("if-none-match", "\"0\"")], None)
            .status,
        200
    );

    app.get("/product/999").assert_problem(404, "not-found");
    for bad in ["abc", "0", "-1", "1.5", "99999999999999999999", "%31"] {
        app.get(&format!("/product/{bad}"))
            .assert_problem(400, "invalid-request");
    }
}

fn put_and_patch_update_only_the_fields_present_and_bump_the_version(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);

    let body = serde_json::to_vec(&json!({"stock": 25})).unwrap();
    let response = app.request(
        "PUT",
        &path,
        &[("content-type", "application/json"), ("if-match", "\"1\"")],
        Some(&body),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("etag"), Some("\"2\""));
    let updated = response.json();
    assert_eq!(updated["stock"], 25);
    assert_eq!(updated["version"], 2);
    for field in [
        "name",
        "description",
        "price",
        "category_id",
        "sku",
        "created_at",
    ] {
        assert_eq!(updated[field], product[field], "{field}");
    }

    let patched = app
        .send_json(
            "PATCH",
            &path,
            &json!({"name": " Red mug ", "price": 9.99, "category_id": null}),
        )
        .json();
    assert_eq!(patched["name"], "Red mug");
    assert_eq!(patched["price"].to_string(), "9.99");
    assert_eq!(patched["category_id"], Value::Null);
    assert_eq!(patched["stock"], 25);
    assert_eq!(patched["version"], 3);
    assert_eq!(app.get(&path).json(), patched);
}

fn an_update_with_a_stale_if_match_is_412_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);
    let body = serde_json::to_vec(&json!({"stock": 1})).unwrap();
    let json = ("content-type", "application/json");

    let ok = app.request("PUT", &path, &[json, ("if-match", "\"1\"")], Some(&body));
    assert_eq!(ok.status, 200);
    let current = app.get(&path).json();
    let stale = app.request("PUT", &path, &[json, ("if-match", "\"1\"")], Some(&body));
    stale.assert_problem(412, "precondition-failed");
    let weak = app.request(
        "PATCH",
        &path,
        &[json, ("if-match", "W/\"2\"")],
        Some(&body),
    );
    weak.assert_problem(412, "precondition-failed");
    assert_eq!(app.get(&path).json(), current);
    let rename = serde_json::to_vec(&json!({"name": "Star mug"})).unwrap();
    let star = app.request("PATCH", &path, &[json, ("if-match", "*")], Some(&rename));
    assert_eq!(star.status, 200);
}

fn setting_stock_without_naming_the_version_read_is_428_and_changes_nothing(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);
    let body = serde_json::to_vec(&json!({"stock": 3, "name": "Counted mug"})).unwrap();
    let json = ("content-type", "application/json");
    for method in ["PUT", "PATCH"] {
        for if_match in [None, Some("*")] {
            let mut headers = vec![json];
            headers.extend(if_match.map(|tag| ("if-match", tag)));
            let response = app.request(method, &path, &headers, Some(&body));
            let problem = response.assert_problem(428, "precondition-required");
            assert!(
                problem["detail"].as_str().unwrap().contains("If-Match"),
                "{problem}"
            );
        }
    }
    assert_eq!(app.get(&path).json(), product);
    // Other fields need no version.
    let rename = serde_json::to_vec(&json!({"name": "Renamed"})).unwrap();
    assert_eq!(
        app.request("PATCH", &path, &[json], Some(&rename)).status,
        200
    );
}

fn bad_updates_are_refused_and_change_nothing(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);
    app.send_json("PUT", &path, &json!({}))
        .assert_problem(422, "validation");
    app.send_json("PUT", &path, &json!({"stock": -5}))
        .assert_problem(422, "validation");
    app.send_json("PUT", &path, &json!({"version": 9}))
        .assert_problem(422, "validation");
    app.send_json("PUT", &path, &json!({"name": null}))
        .assert_problem(422, "validation");
    let stock = serde_json::to_vec(&json!({"stock": 1})).unwrap();
    let versioned = [("content-type", "application/json"), ("if-match", "\"1\"")];
    app.request("PUT", "/product/999", &versioned, Some(&stock))
        .assert_problem(404, "not-found");
    app.send_json("PUT", "/product/x", &json!({"stock": 1}))
        .assert_problem(400, "invalid-request");
    assert_eq!(app.get(&path).json(), product);
}

fn delete_is_204_then_404(target: Target) {
    let app = target.spawn_app();
    let product = app.create_product(&mug());
    let path = format!("/product/{}", product["id"]);
    app.request("DELETE", &path, &[("if-match", "\"7\"")], None)
        .assert_problem(412, "precondition-failed");
    let response = app.request("DELETE", &path, &[], None);
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    app.request("DELETE", &path, &[], None)
        .assert_problem(404, "not-found");
    app.get(&path).assert_problem(404, "not-found");
}

fn the_list_pages_by_id_with_links_and_a_total(target: Target) {
    let app = target.spawn_app();
    for i in 0..23 {
        app.create_product(&json!({"name": format!("Item {i}"), "price": 1, "stock": i}));
    }
    let first = app.get("/product");
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(
        (
            body["page"].as_u64(),
            body["limit"].as_u64(),
            body["total"].as_u64()
        ),
        (Some(1), Some(10), Some(23))
    );
    let ids: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    let links = first.header("link").unwrap();
    assert!(
        links.contains("</product?page=2&limit=10>; rel=\"next\""),
        "{links}"
    );
    assert!(
        links.contains("</product?page=3&limit=10>; rel=\"last\""),
        "{links}"
    );
    assert!(
        links.contains("rel=\"first\"") && !links.contains("rel=\"prev\""),
        "{links}"
    );

    let last = app.get("/product?page=3&limit=10");
    assert_eq!(last.json()["items"].as_array().unwrap().len(), 3);
    assert!(last
        .header("link")
        .unwrap()
        .contains("</product?page=2&limit=10>; rel=\"prev\""));
    assert!(!last.header("link").unwrap().contains("rel=\"next\""));

    let past = app.get("/product?page=9&limit=5").json();
    assert_eq!(past["items"], json!([]));
    assert_eq!(past["total"], 23);

    let all = app.get("/product?limit=100").json();
    assert_eq!(all["items"].as_array().unwrap().len(), 23);
}

fn the_list_filters_by_category_name_and_stock(target: Target) {
    let app = target.spawn_app();
    app.create_product(&json!({"name": "Blue Mug", "price": 1, "stock": 0, "category_id": 1}));
    app.create_product(&json!({"name": "blue plate", "price": 1, "stock": 5, "category_id": 2}));
    app.create_product(&json!({"name": "Red mug 50%", "price": 1, "stock": 5, "category_id": 1}));
    let names = |path: &str| -> Vec<String> {
        let body = app.get(path).json();
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names("/product?category_id=1"),
        vec!["Blue Mug", "Red mug 50%"]
    );
    assert_eq!(names("/product?q=MUG"), vec!["Blue Mug", "Red mug 50%"]);
    assert_eq!(names("/product?q=blue+p"), vec!["blue plate"]);
    assert_eq!(names("/product?q=50%25"), vec!["Red mug 50%"]);
    assert_eq!(names("/product?q=%25"), vec!["Red mug 50%"]);
    assert_eq!(
        names("/product?in_stock=true"),
        vec!["blue plate", "Red mug 50%"]
    );
    assert_eq!(names("/product?in_stock=false"), vec!["Blue Mug"]);
    assert_eq!(
        names("/product?category_id=1&in_stock=true&q=red"),
        vec!["Red mug 50%"]
    );
    let filtered = app.get("/product?category_id=1&limit=1");
    assert_eq!(filtered.json()["total"], 2);
    assert!(filtered
        .header("link")
        .unwrap()
        .contains("</product?page=2&limit=1&category_id=1>; rel=\"next\""));
}

fn bad_list_parameters_are_400(target: Target) {
    let app = target.spawn_app();
    for query in [
        "page=0",
        "page=-1",
        "page=x",
        "limit=0",
        "limit=101",
        "limit=1.5",
        "category_id=0",
        "in_stock=yes",
        "page=1&page=2",
        "sort=name",
        "q=%zz",
        &format!("q={}", "a".repeat(201)),
    ] {
        app.get(&format!("/product?{query}"))
            .assert_problem(400, "invalid-request");
    }
}

on_every_target!(
    creating_a_product_returns_201_with_location_etag_and_the_product,
    a_product_with_only_required_fields_gets_the_defaults_and_a_trimmed_name,
    prices_are_stored_exactly,
    every_broken_field_is_reported_at_once_and_nothing_is_created,
    missing_required_fields_and_wrong_types_are_422,
    a_duplicate_sku_is_409_and_changes_nothing,
    concurrent_creates_with_one_sku_make_exactly_one_product,
    get_supports_if_none_match_and_rejects_bad_ids,
    put_and_patch_update_only_the_fields_present_and_bump_the_version,
    an_update_with_a_stale_if_match_is_412_and_changes_nothing,
    setting_stock_without_naming_the_version_read_is_428_and_changes_nothing,
    bad_updates_are_refused_and_change_nothing,
    delete_is_204_then_404,
    the_list_pages_by_id_with_links_and_a_total,
    the_list_filters_by_category_name_and_stock,
    bad_list_parameters_are_400,
);
