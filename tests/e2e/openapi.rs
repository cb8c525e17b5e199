//! `api/openapi.json` against the running app: every documented operation exists with the
//! documented methods, answers only documented statuses and media types, with the documented
//! required members, and asks for the documented scopes.

use serde_json::{json, Value};

use crate::app::{cli_token, manifest, on_every_target, repo_root, Target, TestApp, TestResponse};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    let text = std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => value,
    }
}

struct Operation {
    method: String,
    path: String,
    spec: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(spec) = item.get(*method) {
                out.push(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    spec: spec.clone(),
                });
            }
        }
    }
    out
}

fn scopes(op: &Operation) -> Vec<String> {
    op.spec["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|req| req["bearer"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// What the path parameters name: a product, an event, a hold, a location (where the
/// product has a level), and a transfer.
struct Ids {
    product: i64,
    event: String,
    reservation: String,
    location: String,
    transfer: String,
}

impl Ids {
    /// Ids that name nothing.
    fn missing() -> Self {
        Self {
            product: 999_999,
            event: "evt_0000000000000000000000000".into(),
            reservation: "res_00000000000000000000000000000000".into(),
            location: "nowhere".into(),
            transfer: "trf_00000000000000000000000000000000".into(),
        }
    }

    fn path(&self, template: &str) -> String {
        let id = if template.starts_with("/reservations") {
            self.reservation.clone()
        } else if template.starts_with("/locations") {
            self.location.clone()
        } else if template.starts_with("/transfers") {
            self.transfer.clone()
        } else {
            self.product.to_string()
        };
        template
            .replace("{id}", &id)
            .replace("{event_id}", &self.event)
            .replace("{location_id}", &self.location)
    }
}

/// The location the contract's product has a level at.
const LOCATION: &str = "contract-loc";

/// A fresh hold of one unit of `product`.
fn hold(app: &TestApp, product: i64) -> String {
    let key = format!(
        "hold-{}",
        HOLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    crate::reservations::held(app, &key, &[(product, 1)], 900)
}

static HOLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The app, sending its events to a closed port: they stay pending, so there is always an
/// event to list and redeliver.
fn contract_app(target: Target) -> TestApp {
    target.spawn_app_with(&["--variable", "order_events_urls=http://127.0.0.1:1/closed"])
}

/// A product, the event its creation wrote, a hold of it, a location where it has a level,
/// and a transfer there.
fn ids(app: &TestApp) -> Ids {
    let product = app.create_product(&json!({"name": "Mug", "price": 12.5, "stock": 100}))["id"]
        .as_i64()
        .unwrap();
    let events = app.get("/events").json();
    let event = events["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{events}"));
    crate::locations::location(app, LOCATION, 5);
    let transfer = crate::stock::post_keyed(
        app,
        "/transfers",
        "ids-transfer",
        &json!({"product_id": product, "from": "default", "to": LOCATION, "quantity": 10}),
    );
    assert_eq!(
        transfer.status,
        201,
        "{}",
        String::from_utf8_lossy(&transfer.body)
    );
    Ids {
        product,
        event: event.to_owned(),
        reservation: hold(app, product),
        location: LOCATION.to_owned(),
        transfer: transfer.json()["id"].as_str().unwrap().to_owned(),
    }
}

/// The ETag of the product's level at the contract's location, for a count of it.
fn level_tag(app: &TestApp, ids: &Ids) -> String {
    let level = app.get(&format!("/product/{}/stock/{}", ids.product, ids.location));
    level.header("etag").unwrap_or("\"1\"").to_owned()
}

/// Sends `op` with its documented example body, for the objects `ids` names.
fn send(app: &TestApp, op: &Operation, ids: &Ids, token: Option<&str>, key: &str) -> TestResponse {
    let path = ids.path(&op.path);
    let id = ids.product;
    let example = op
        .spec
        .pointer("/requestBody/content/application~1json/example");
    let example = example.map(|e| {
        let mut e = e.clone();
        // The batch example names product 1; point it at the product under test.
        if let Some(lines) = e.get_mut("lines").and_then(Value::as_array_mut) {
            for line in lines {
                line["product_id"] = json!(id);
            }
        }
        // The transfer example names product 7 and two locations of its own.
        if e.get("from").is_some() {
            e["product_id"] = json!(id);
            e["from"] = json!("default");
            e["to"] = json!(ids.location);
        }
        serde_json::to_vec(&e).unwrap()
    });
    let auth = token.map_or_else(String::new, |t| format!("Bearer {t}"));
    // A count of a level is compare-and-set: it names the level's version.
    let tag = if op.method == "PUT" && op.path.contains("{location_id}") {
        level_tag(app, ids)
    } else {
        String::new()
    };
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", key),
    ];
    if !tag.is_empty() {
        headers.push(("if-match", tag.as_str()));
    }
    app.request(&op.method, &path, &headers, example.as_deref())
}

/// Asserts the response's status is documented for `op`, with the documented media type and
/// the documented required members.
#[track_caller]
fn assert_documented(doc: &Value, op: &Operation, response: &TestResponse) {
    let status = response.status.to_string();
    let documented = op.spec["responses"].get(&status).unwrap_or_else(|| {
        panic!(
            "{} {} answered {status}, which is not documented: {}",
            op.method,
            op.path,
            String::from_utf8_lossy(&response.body)
        )
    });
    let documented = resolve(doc, documented);
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        assert!(
            response.body.is_empty(),
            "{} {} {status} has a body",
            op.method,
            op.path
        );
        return;
    };
    // The media type without its parameters (`text/plain; version=0.0.4` is `text/plain`).
    let media = response
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let schema = content.get(media).unwrap_or_else(|| {
        panic!(
            "{} {} {status}: undocumented media type {media:?}",
            op.method, op.path
        )
    })["schema"]
        .clone();
    if !media.ends_with("json") {
        // A text body (the metrics): the schema says a string, and it is one.
        assert_eq!(resolve(doc, &schema)["type"], "string", "{media}");
        assert!(std::str::from_utf8(&response.body).is_ok());
        return;
    }
    let body = response.json();
    let mut schemas = vec![resolve(doc, &schema).clone()];
    while let Some(schema) = schemas.pop() {
        if let Some(parts) = schema["allOf"].as_array() {
            schemas.extend(parts.iter().map(|p| resolve(doc, p).clone()));
        }
        for member in schema["required"].as_array().into_iter().flatten() {
            let member = member.as_str().unwrap();
            assert!(
                body.get(member).is_some(),
                "{} {} {status}: no `{member}` in {body}",
                op.method,
                op.path
            );
        }
    }
}

fn every_documented_path_allows_exactly_the_documented_methods(target: Target) {
    let doc = document();
    let app = contract_app(target);
    let ids = ids(&app);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: Vec<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        let concrete = ids.path(path);
        let mut expected = documented.clone();
        expected.sort();
        for undocumented in METHODS
            .iter()
            .map(|m| m.to_uppercase())
            .filter(|m| !documented.contains(m))
        {
            let response = app.request(
                &undocumented,
                &concrete,
                &[("content-type", "application/json")],
                Some(b"{}"),
            );
            response.assert_problem(405, "method-not-allowed");
            let mut allowed: Vec<String> = response
                .header("allow")
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            allowed.sort();
            assert_eq!(allowed, expected, "{undocumented} {path}");
        }
    }
}

fn every_documented_operation_answers_as_documented(target: Target) {
    let doc = document();
    let app = contract_app(target);
    let mut ids = ids(&app);
    let token = app.auth.clone().unwrap();
    let mut ops = operations(&doc);
    // Deleting last keeps the product and its level for the others: the level, then its
    // location, then the product.
    ops.sort_by_key(|op| match (op.method.as_str(), op.path.as_str()) {
        ("DELETE", path) if path.starts_with("/product/{id}/stock/") => 1,
        ("DELETE", path) if path.starts_with("/locations/") => 2,
        ("DELETE", _) => 3,
        _ => 0,
    });
    for (index, op) in ops.iter().enumerate() {
        // Each operation on a hold gets one of its own: a commit and a release of one hold
        // cannot both succeed.
        if op.path.starts_with("/reservations/") {
            ids.reservation = hold(&app, ids.product);
        }
        // A level, or its location, is deleted only once it is empty.
        if op.method == "DELETE" && !op.path.ends_with("/product/{id}") {
            let path = format!("/product/{}/stock/{}", ids.product, ids.location);
            if app.get(&path).status == 200 {
                let tag = level_tag(&app, &ids);
                let emptied = app.request(
                    "PUT",
                    &path,
                    &[("content-type", "application/json"), ("if-match", &tag)],
                    Some(br#"{"stock": 0}"#),
                );
                assert_eq!(emptied.status, 200, "{path}");
            }
        }
        // A product is deleted only once no active hold has units of it.
        if op.method == "DELETE" {
            let active = app.get("/reservations?status=active&limit=100").json();
            for hold in active["items"].as_array().unwrap() {
                let path = format!("/reservations/{}/release", hold["id"].as_str().unwrap());
                assert_eq!(app.request("POST", &path, &[], None).status, 200, "{path}");
            }
        }
        let response = send(&app, op, &ids, Some(&token), &format!("contract-{index}"));
        assert!(
            response.status < 300,
            "{} {}: {}",
            op.method,
            op.path,
            String::from_utf8_lossy(&response.body)
        );
        assert_documented(&doc, op, &response);
        let missing = send(
            &app,
            op,
            &Ids::missing(),
            Some(&token),
            &format!("contract-missing-{index}"),
        );
        assert_documented(&doc, op, &missing);
    }
}

fn every_operation_asks_for_its_documented_scopes(target: Target) {
    let doc = document();
    let app = contract_app(target);
    let ids = ids(&app);
    let nothing = cli_token(&manifest(), &["--scope", "unrelated:scope"]).unwrap();
    for (index, op) in operations(&doc).iter().enumerate() {
        let scopes = scopes(op);
        if scopes.is_empty() {
            let response = send(&app, op, &ids, None, "open");
            assert_eq!(
                response.status, 200,
                "{} {} is documented as open",
                op.method, op.path
            );
            continue;
        }
        let anonymous = send(&app, op, &ids, None, &format!("anon-{index}"));
        anonymous.assert_problem(401, "unauthorized");
        assert_documented(&doc, op, &anonymous);
        let unscoped = send(&app, op, &ids, Some(&nothing), &format!("unscoped-{index}"));
        unscoped.assert_problem(403, "forbidden");
        assert_documented(&doc, op, &unscoped);
        for scope in &scopes {
            let token = cli_token(&manifest(), &["--scope", scope]).unwrap();
            let response = send(
                &app,
                op,
                &ids,
                Some(&token),
                &format!("scoped-{index}-{scope}"),
            );
            assert!(
                response.status != 401 && response.status != 403,
                "{} {} with `{scope}`: {}",
                op.method,
                op.path,
                response.status
            );
            assert_documented(&doc, op, &response);
        }
    }
}

on_every_target!(
    every_documented_path_allows_exactly_the_documented_methods,
    every_documented_operation_answers_as_documented,
    every_operation_asks_for_its_documented_scopes,
);
