//! What every route shares (`api/openapi.json`, README "Quickstart"): media types, limits,
//! errors, request ids, `/health`, the access log.

use serde_json::json;

use crate::app::{cli_token, on_every_target, Target};

fn health_is_ok_when_the_database_answers(target: Target) {
    let app = target.spawn_app();
    let response = app.get("/health");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json(), json!({"status": "ok"}));
}

fn an_unknown_path_is_a_problem_json_404(target: Target) {
    let app = target.spawn_app();
    for path in ["/nope", "/products", "/product/1/unknown", "/"] {
        let response = app.get(path);
        response.assert_problem(404, "not-found");
    }
}

fn a_known_path_with_a_wrong_method_is_405_with_allow(target: Target) {
    let app = target.spawn_app();
    let response = app.request("DELETE", "/product", &[], None);
    response.assert_problem(405, "method-not-allowed");
    assert_eq!(response.header("allow"), Some("GET, POST"));
    let response = app.request(
        "POST",
        "/product/1",
        &[("content-type", "application/json")],
        Some(b"{}"),
    );
    response.assert_problem(405, "method-not-allowed");
    assert_eq!(response.header("allow"), Some("GET, PUT, PATCH, DELETE"));
}

fn every_response_carries_a_request_id_echoing_a_sane_client_id(target: Target) {
    let app = target.spawn_app();
    let generated = app.get("/health");
    let id = generated.header("x-request-id").expect("x-request-id");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(app.get("/health").header("x-request-id"), Some(id));

    let echoed = app.request(
        "GET",
        "/health",
        &[("x-request-id", "client-abc.123")],
        None,
    );
    assert_eq!(echoed.header("x-request-id"), Some("client-abc.123"));

    let long = "x".repeat(200);
    let replaced = app.request("GET", "/nope", &[("x-request-id", &long)], None);
    let body = replaced.assert_problem(404, "not-found");
    assert_ne!(body["request_id"], long.as_str());
}

fn a_body_that_is_not_json_media_type_is_415_and_creates_nothing(target: Target) {
    let app = target.spawn_app();
    let body = br#"{"name": "Mug", "price": 1, "stock": 1}"#;
    for headers in [&[("content-type", "text/plain")][..], &[][..]] {
        let response = app.request("POST", "/product", headers, Some(body));
        response.assert_problem(415, "unsupported-media-type");
    }
    assert_eq!(app.get("/product").json()["total"], 0);
}

fn a_body_over_64_kib_is_413_whether_declared_or_streamed(target: Target) {
    let app = target.spawn_app();
    let big = format!(
        r#"{{"name": "Mug", "price": 1, "stock": 1, "description": "{}"}}"#,
        "x".repeat(70_000)
    );
    let response = app.request(
        "POST",
        "/product",
        &[("content-type", "application/json")],
        Some(big.as_bytes()),
    );
    response.assert_problem(413, "payload-too-large");

    // Chunked, so the size is only known by reading.
    let mut raw = format!("POST /product HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", app.auth.as_deref().unwrap());
    for chunk in big.as_bytes().chunks(8192) {
        raw.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            String::from_utf8_lossy(chunk)
        ));
    }
    raw.push_str("0\r\n\r\n");
    let response = app.raw(raw.as_bytes());
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        &response[..response.len().min(300)]
    );

    // Declared far larger than the app reads on for (1 MiB): refused before a byte of it
    // is sent.
    let response = app.raw(format!("POST /product HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n", app.auth.as_deref().unwrap()).as_bytes());
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        &response[..response.len().min(300)]
    );
    assert_eq!(app.get("/product").json()["total"], 0);
}

fn malformed_json_is_400_and_a_non_object_is_400(target: Target) {
    let app = target.spawn_app();
    for body in [
        &b"{\"name\": "[..],
        b"",
        b"not json",
        b"[1, 2]",
        b"\"text\"",
        b"\xff\xfe",
    ] {
        let response = app.request(
            "POST",
            "/product",
            &[("content-type", "application/json")],
            Some(body),
        );
        response.assert_problem(400, "invalid-request");
    }
    assert_eq!(app.get("/product").json()["total"], 0);
}

fn unknown_fields_are_422_so_no_client_can_set_id_version_or_timestamps(target: Target) {
    let app = target.spawn_app();
    let response = app.post_json(
        "/product",
        &json!({"name": "Mug", "price": 1, "stock": 1, "id": 99, "version": 7, "created_at": "x"}),
    );
    let fields = response.validation_fields();
    assert_eq!(fields.len(), 3, "{fields:?}");
    for field in ["id", "version", "created_at"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not in {fields:?}"
        );
    }
    assert_eq!(app.get("/product").json()["total"], 0);
}

fn each_request_writes_one_json_access_log_line_without_secrets_or_bodies(target: Target) {
    let app = target.spawn_app();
    let secret_name = "Secret-Body-Content";
    let token = app.auth.clone().unwrap();
    app.request(
        "POST",
        "/product",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "log-test-1"),
        ],
        Some(format!(r#"{{"name": "{secret_name}", "price": 1, "stock": 1}}"#).as_bytes()),
    );
    app.request("GET", "/nope", &[("x-request-id", "log-test-2")], None);
    let lines = app.access_log(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["request_id"], "log-test-1");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/product");
    assert_eq!(first["status"], 201);
    assert_eq!(first["ip"], "127.0.0.1");
    assert_eq!(first["component"], "products");
    assert_eq!(first["sub"], "tester");
    assert!(first["duration_ms"].is_number(), "{first}");
    let ts = first["ts"].as_str().unwrap();
    assert!(
        ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    assert_eq!(lines[1]["status"], 404);
    // Every line the app wrote: its output, and its components' log files.
    let mut written = app.stdout() + &app.stderr();
    for file in ["products_stdout.txt", "products_stderr.txt"] {
        written += &std::fs::read_to_string(app.state_dir.path().join("logs").join(file)).unwrap();
    }
    assert!(written.contains("log-test-1"), "{written}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !written.contains(secret_name) && !written.contains(signature),
        "{written}"
    );
}

/// Sixteen clients at once, three rounds, each with a token of its own, a request id of its
/// own and a body of its own. On WASI 0.3 the requests share reused instances, several at a
/// time: nothing of one may reach another's response or log line.
fn concurrent_requests_keep_their_own_request_id_subject_and_body(target: Target) {
    let app = target.spawn_app();
    let manifest = target.manifest();
    let tokens: Vec<String> = (0..16)
        .map(|i| {
            let sub = format!("client-{i}");
            cli_token(&manifest, &["--sub", &sub, "--scope", "inventory:write"]).unwrap()
        })
        .collect();
    for round in 0..3 {
        std::thread::scope(|scope| {
            for (i, token) in tokens.iter().enumerate() {
                let app = &app;
                scope.spawn(move || {
                    let id = format!("concurrent-{round}-{i}");
                    let auth = format!("Bearer {token}");
                    let body =
                        json!({"name": format!("Product {round}-{i}"), "price": 1, "stock": i});
                    let response = app.request(
                        "POST",
                        "/product",
                        &[
                            ("authorization", &auth),
                            ("content-type", "application/json"),
                            ("x-request-id", &id),
                        ],
                        Some(body.to_string().as_bytes()),
                    );
                    assert_eq!(response.status, 201, "{id}");
                    assert_eq!(response.header("x-request-id"), Some(id.as_str()));
                    let created = response.json();
                    assert_eq!(created["name"], format!("Product {round}-{i}"), "{id}");
                    assert_eq!(created["stock"], i, "{id}");
                });
            }
        });
    }
    let lines = app.access_log(48);
    let mut seen = 0;
    for line in &lines {
        let Some(id) = line["request_id"].as_str() else {
            continue;
        };
        let Some(i) = id
            .strip_prefix("concurrent-")
            .and_then(|r| r.split('-').nth(1))
        else {
            continue;
        };
        assert_eq!(line["sub"], format!("client-{i}"), "{line}");
        assert_eq!(line["status"], 201, "{line}");
        seen += 1;
    }
    assert_eq!(seen, 48, "{lines:?}");
}

on_every_target!(
    concurrent_requests_keep_their_own_request_id_subject_and_body,
    health_is_ok_when_the_database_answers,
    an_unknown_path_is_a_problem_json_404,
    a_known_path_with_a_wrong_method_is_405_with_allow,
    every_response_carries_a_request_id_echoing_a_sane_client_id,
    a_body_that_is_not_json_media_type_is_415_and_creates_nothing,
    a_body_over_64_kib_is_413_whether_declared_or_streamed,
    malformed_json_is_400_and_a_non_object_is_400,
    unknown_fields_are_422_so_no_client_can_set_id_version_or_timestamps,
    each_request_writes_one_json_access_log_line_without_secrets_or_bodies,
);
