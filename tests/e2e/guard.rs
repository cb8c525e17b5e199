//! The guard on every route: JWT authentication (and the attack set), scopes, rate limits,
//! and what happens when its configuration or store is missing.

use std::collections::BTreeSet;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::json;

use crate::app::{cli_token, manifest, on_every_target, Target, TestApp, TestResponse};
use crate::host::edited_manifest;

const ALL_SCOPES: &str = "inventory:read inventory:write stock:deduct";

/// The dev secret, issuer and audience, read from `spin.toml`'s variable defaults.
fn dev_variable(name: &str) -> String {
    let text = std::fs::read_to_string(manifest()).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["variables"][name]["default"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[derive(Serialize, Deserialize)]
struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Claims as the app expects them: issuer, audience, subject, scope, one hour of validity.
fn claims(sub: &str, scope: &str) -> JWTClaims<Scope> {
    Claims::with_custom_claims(
        Scope {
            scope: Some(scope.to_owned()),
        },
        Duration::from_hours(1),
    )
    .with_issuer(dev_variable("jwt_issuer"))
    .with_audience(dev_variable("jwt_audience"))
    .with_subject(sub)
}

fn dev_key() -> HS256Key {
    HS256Key::from_bytes(dev_variable("jwt_secret").as_bytes())
}

fn sign(claims: JWTClaims<Scope>) -> String {
    dev_key().authenticate(claims).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn get_as(app: &TestApp, token: &str, path: &str) -> TestResponse {
    app.request(
        "GET",
        path,
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
}

#[track_caller]
fn assert_unauthorized(response: &TestResponse) {
    response.assert_problem(401, "unauthorized");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
}

/// A product to read, so a refused request is distinguishable from a 404.
fn app_with_a_product(target: Target) -> TestApp {
    let app = target.spawn_app();
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    app
}

fn a_valid_token_reads_and_the_log_names_its_subject(target: Target) {
    let app = app_with_a_product(target);
    let response = get_as(&app, &sign(claims("alice", ALL_SCOPES)), "/product/1");
    assert_eq!(response.status, 200);
    let log = app.access_log(2);
    assert_eq!(log.last().unwrap()["sub"], "alice");
}

fn requests_without_a_bearer_token_are_401_with_www_authenticate(target: Target) {
    let mut app = app_with_a_product(target);
    app.auth = None;
    assert_unauthorized(&app.get("/product/1"));
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc"] {
        let response = app.request("GET", "/product/1", &[("authorization", header)], None);
        assert_unauthorized(&response);
    }
    // The reason is logged, the token never.
    let log = app.access_log(6);
    assert!(
        log.iter()
            .skip(1)
            .all(|l| l["status"] == 401 && l["error"].is_string()),
        "{log:?}"
    );
    assert!(
        log.iter().skip(1).all(|l| l.get("sub").is_none()),
        "{log:?}"
    );
}

fn the_jwt_attack_set_is_refused(target: Target) {
    let app = app_with_a_product(target);
    let header = |json: &str| Base64UrlSafeNoPadding::encode_to_string(json).unwrap();
    let payload = Base64UrlSafeNoPadding::encode_to_string(
        serde_json::to_string(&claims("mallory", ALL_SCOPES)).unwrap(),
    )
    .unwrap();
    let alg_none = format!("{}.{payload}.", header(r#"{"alg":"none","typ":"JWT"}"#));
    let wrong_key = HS256Key::from_bytes(b"another-secret-that-is-long-enough-to-use")
        .authenticate(claims("mallory", ALL_SCOPES))
        .unwrap();
    let mut expired = claims("mallory", ALL_SCOPES);
    expired.expires_at = Some(Duration::from_secs(now() - 120));
    expired.issued_at = Some(Duration::from_secs(now() - 3600));
    expired.invalid_before = expired.issued_at;
    let mut no_exp = claims("mallory", ALL_SCOPES);
    no_exp.expires_at = None;
    let mut not_yet = claims("mallory", ALL_SCOPES);
    not_yet.invalid_before = Some(Duration::from_secs(now() + 600));
    let mut no_sub = claims("mallory", ALL_SCOPES);
    no_sub.subject = None;
    let mut no_aud = claims("mallory", ALL_SCOPES);
    no_aud.audiences = None;
    let refresh = dev_key()
        .authenticate_with_options(
            claims("mallory", ALL_SCOPES),
            &HeaderOptions {
                signature_type: Some("refresh+jwt".into()),
                ..HeaderOptions::default()
            },
        )
        .unwrap();
    let valid = sign(claims("mallory", ALL_SCOPES));
    let tampered = {
        let other = sign(claims("admin", ALL_SCOPES));
        let mut parts: Vec<&str> = valid.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        parts.join(".")
    };
    let oversized = sign(claims(
        "mallory",
        &format!("{ALL_SCOPES} {}", "x".repeat(4096)),
    ));
    let cases = [
        ("alg none", alg_none),
        ("wrong key", wrong_key),
        ("expired", sign(expired)),
        ("no exp", sign(no_exp)),
        ("nbf in the future", sign(not_yet)),
        (
            "wrong iss",
            sign(claims("mallory", ALL_SCOPES).with_issuer("someone-else")),
        ),
        (
            "wrong aud",
            sign(claims("mallory", ALL_SCOPES).with_audience("another-service")),
        ),
        ("no aud", sign(no_aud)),
        ("no sub", sign(no_sub)),
        ("refresh token", refresh),
        ("claims swapped under a signature", tampered),
        ("over 4 KiB", oversized),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("garbage", "%%%".to_owned()),
    ];
    for (name, token) in &cases {
        let response = get_as(&app, token, "/product/1");
        assert_eq!(
            response.status,
            401,
            "{name}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_unauthorized(&response);
    }
    assert_eq!(
        get_as(&app, &valid, "/product/1").status,
        200,
        "the control token works"
    );
}

fn clock_skew_up_to_60_seconds_is_tolerated(target: Target) {
    let app = app_with_a_product(target);
    let mut recently_expired = claims("alice", ALL_SCOPES);
    recently_expired.expires_at = Some(Duration::from_secs(now() - 20));
    assert_eq!(
        get_as(&app, &sign(recently_expired), "/product/1").status,
        200
    );
    let mut long_expired = claims("alice", ALL_SCOPES);
    long_expired.expires_at = Some(Duration::from_secs(now() - 90));
    assert_unauthorized(&get_as(&app, &sign(long_expired), "/product/1"));
}

fn a_token_just_under_4_kib_is_accepted(target: Target) {
    let app = app_with_a_product(target);
    let mut scope = ALL_SCOPES.to_owned();
    let mut token = sign(claims("alice", &scope));
    while token.len() < 4000 {
        scope.push_str(" x");
        token = sign(claims("alice", &scope));
    }
    assert!(token.len() <= 4096, "{}", token.len());
    assert_eq!(get_as(&app, &token, "/product/1").status, 200);
}

/// An app configured with a public key; the key type fixes the algorithm.
fn public_key_app(target: Target, algorithm: &str, public_pem: &str) -> TestApp {
    target.spawn_app_with(&[
        "--variable",
        &format!("jwt_algorithm={algorithm}"),
        "--variable",
        &format!("jwt_public_key={public_pem}"),
    ])
}

fn a_public_key_config_accepts_its_own_algorithm_and_refuses_an_hs256_token_made_with_the_key(
    target: Target,
) {
    let pair = ES256KeyPair::generate();
    let public_pem = pair.public_key().to_pem().unwrap();
    let app = public_key_app(target, "ES256", &public_pem);
    let es256 = pair.sign(claims("alice", ALL_SCOPES)).unwrap();
    assert_eq!(get_as(&app, &es256, "/product").status, 200);
    // The classic confusion attack: HMAC keyed with the public key the server holds.
    let confused = HS256Key::from_bytes(public_pem.as_bytes())
        .authenticate(claims("mallory", ALL_SCOPES))
        .unwrap();
    assert_unauthorized(&get_as(&app, &confused, "/product"));
    assert_unauthorized(&get_as(
        &app,
        &sign(claims("mallory", ALL_SCOPES)),
        "/product",
    ));
    let other = ES256KeyPair::generate()
        .sign(claims("mallory", ALL_SCOPES))
        .unwrap();
    assert_unauthorized(&get_as(&app, &other, "/product"));
}

fn a_public_key_alone_fixes_the_algorithm_by_its_type(target: Target) {
    let pair = ES256KeyPair::generate();
    let public_pem = pair.public_key().to_pem().unwrap();
    let app = target.spawn_app_with(&["--variable", &format!("jwt_public_key={public_pem}")]);
    let es256 = pair.sign(claims("alice", ALL_SCOPES)).unwrap();
    assert_eq!(get_as(&app, &es256, "/product").status, 200);
    assert_unauthorized(&get_as(
        &app,
        &sign(claims("mallory", ALL_SCOPES)),
        "/product",
    ));
    let ed = Ed25519KeyPair::generate()
        .sign(claims("mallory", ALL_SCOPES))
        .unwrap();
    assert_unauthorized(&get_as(&app, &ed, "/product"));
}

#[test]
fn the_token_command_refuses_a_secret_the_app_would_refuse() {
    let err = cli_token(&manifest(), &["--variable", "jwt_secret=short"]).unwrap_err();
    assert!(err.contains("32 bytes"), "{err}");
}

fn eddsa_and_rs256_public_keys_verify_their_tokens(target: Target) {
    let ed = Ed25519KeyPair::generate();
    let app = public_key_app(target, "EdDSA", &ed.public_key().to_pem());
    assert_eq!(
        get_as(
            &app,
            &ed.sign(claims("alice", ALL_SCOPES)).unwrap(),
            "/product"
        )
        .status,
        200
    );
    let es = ES256KeyPair::generate()
        .sign(claims("alice", ALL_SCOPES))
        .unwrap();
    assert_unauthorized(&get_as(&app, &es, "/product"));
    drop(app);

    let rsa = RS256KeyPair::generate(2048).unwrap();
    let app = public_key_app(target, "RS256", &rsa.public_key().to_pem().unwrap());
    assert_eq!(
        get_as(
            &app,
            &rsa.sign(claims("alice", ALL_SCOPES)).unwrap(),
            "/product"
        )
        .status,
        200
    );
    assert_unauthorized(&get_as(
        &app,
        &sign(claims("alice", ALL_SCOPES)),
        "/product",
    ));
}

fn the_token_command_signs_with_the_apps_key_and_needs_the_private_key_for_a_public_key_config(
    target: Target,
) {
    let pair = ES256KeyPair::generate();
    let public_pem = pair.public_key().to_pem().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("key.pem");
    std::fs::write(&private, pair.to_pem().unwrap()).unwrap();
    let variables = [
        "--variable".to_owned(),
        "jwt_algorithm=ES256".to_owned(),
        "--variable".to_owned(),
        format!("jwt_public_key={public_pem}"),
    ];
    let args: Vec<&str> = variables.iter().map(String::as_str).collect();
    let err = cli_token(&manifest(), &args).unwrap_err();
    assert!(err.contains("--private-key"), "{err}");
    let mut with_key = args.clone();
    with_key.extend([
        "--private-key",
        private.to_str().unwrap(),
        "--sub",
        "ops",
        "--scope",
        "inventory:read",
    ]);
    let token = cli_token(&manifest(), &with_key).unwrap();
    let app = public_key_app(target, "ES256", &public_pem);
    assert_eq!(get_as(&app, &token, "/product").status, 200);
    let write = app.request(
        "POST",
        "/product",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        Some(br#"{"name":"x","price":1,"stock":1}"#),
    );
    write.assert_problem(403, "forbidden");
}

fn a_broken_key_configuration_is_a_500_not_a_401(target: Target) {
    let app = target.spawn_app_with(&["--variable", "jwt_algorithm=ES256"]);
    let response = get_as(&app, &sign(claims("alice", ALL_SCOPES)), "/product");
    response.assert_problem(500, "internal");
    let log = app.access_log(1);
    assert!(
        log[0]["error"].as_str().unwrap().contains("jwt_public_key"),
        "{log:?}"
    );
}

/// Every products route and the scope it needs (stock and events routes: `stock.rs`,
/// `events.rs`; all of them: the sweep in `openapi.rs`).
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/product", "inventory:read"),
    ("GET", "/product/1", "inventory:read"),
    ("POST", "/product", "inventory:write"),
    ("PUT", "/product/1", "inventory:write"),
    ("PATCH", "/product/1", "inventory:write"),
    ("DELETE", "/product/1", "inventory:write"),
];

fn every_route_needs_its_scope_and_only_its_scope(target: Target) {
    let app = app_with_a_product(target);
    for (method, path, scope) in ROUTES {
        let others: Vec<&str> = ALL_SCOPES.split(' ').filter(|s| s != scope).collect();
        let send = |token: Option<String>| {
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("content-type", "application/json")];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth));
            } else {
                headers.push(("authorization", ""));
            }
            // PUT and PATCH leave the stock alone (setting it needs If-Match).
            let body: &[u8] = if *method == "POST" {
                br#"{"name":"Cup","price":2,"stock":2}"#
            } else {
                br#"{"name":"Cup","price":2}"#
            };
            app.request(method, path, &headers, Some(body))
        };
        assert_unauthorized(&send(None));
        let wrong = send(Some(sign(claims("alice", &others.join(" ")))));
        let body = wrong.assert_problem(403, "forbidden");
        assert!(body["detail"].as_str().unwrap().contains(scope), "{body}");
        let right = send(Some(sign(claims("alice", scope))));
        assert!(
            right.status < 400,
            "{method} {path} with {scope}: {} {}",
            right.status,
            String::from_utf8_lossy(&right.body)
        );
    }
}

fn health_is_open_and_not_counted(target: Target) {
    let mut app = target.spawn_app_with(&["--variable", "rate_limit_requests=1"]);
    app.auth = None;
    for _ in 0..5 {
        let response = app.get("/health");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("ratelimit"), None);
    }
}

/// Waits until the current rate-limit window has `margin` seconds left, so a burst cannot
/// straddle two windows.
fn away_from_a_window_edge(window: u64, margin: u64) {
    let left = window - now() % window;
    if left < margin {
        std::thread::sleep(StdDuration::from_secs(left + 1));
    }
}

fn exactly_the_limit_passes_when_a_burst_arrives_at_once(target: Target) {
    let limit = 25;
    let app = target.spawn_app_with(&[
        "--variable",
        &format!("rate_limit_requests={limit}"),
        "--variable",
        "rate_limit_window_seconds=3600",
    ]);
    away_from_a_window_edge(3600, 30);
    let responses: Vec<TestResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..60)
            .map(|_| scope.spawn(|| app.get("/product")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let passed: Vec<&TestResponse> = responses.iter().filter(|r| r.status == 200).collect();
    let limited: Vec<&TestResponse> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        passed.len(),
        limit,
        "statuses: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(limited.len(), 60 - limit);
    // Each passing request saw its own count: the remainders are 0..limit, each once.
    let remaining: BTreeSet<String> = passed
        .iter()
        .map(|r| {
            r.header("ratelimit")
                .unwrap()
                .split(";r=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(remaining.len(), limit);
    for response in &limited {
        let body = response.assert_problem(429, "rate-limited");
        assert!(body["detail"].is_string());
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
        assert_eq!(
            response.header("ratelimit-policy"),
            Some("\"default\";q=25;w=3600")
        );
        assert_eq!(
            response.header("ratelimit"),
            Some(format!("\"default\";r=0;t={retry}").as_str())
        );
    }
}

fn limits_are_per_subject_and_per_address_without_a_valid_token(target: Target) {
    let mut app = target.spawn_app_with(&[
        "--variable",
        "rate_limit_requests=3",
        "--variable",
        "rate_limit_window_seconds=3600",
    ]);
    away_from_a_window_edge(3600, 10);
    let alice = sign(claims("alice", ALL_SCOPES));
    let bob = sign(claims("bob", ALL_SCOPES));
    for _ in 0..3 {
        assert_eq!(get_as(&app, &alice, "/product").status, 200);
    }
    get_as(&app, &alice, "/product").assert_problem(429, "rate-limited");
    let log = app.access_log(4);
    assert_eq!(log[3]["status"], 429);
    assert_eq!(
        log[3]["sub"], "alice",
        "a refused request is logged with who sent it"
    );
    assert_eq!(
        get_as(&app, &bob, "/product").status,
        200,
        "bob has his own budget"
    );

    // Without a valid token, the client address is counted, failed requests too.
    app.auth = None;
    assert_unauthorized(&app.get("/product"));
    assert_unauthorized(&get_as(&app, "forged", "/product"));
    app.get("/nope").assert_problem(404, "not-found");
    app.get("/product").assert_problem(429, "rate-limited");
    assert_eq!(
        get_as(&app, &bob, "/product").status,
        200,
        "a valid token is not counted by address"
    );
}

fn without_its_key_value_store_the_guard_fails_closed(target: Target) {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_manifest(dir.path(), |t| {
        t.replace("key_value_stores = [\"default\"]\n", "")
    });
    let app = target.spawn_app_from(&path, &[]);
    let refused = app.get("/product");
    refused.assert_problem(503, "unavailable");
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "a 503 says when to retry"
    );
    assert_eq!(app.get("/health").status, 200);
    let log = app.access_log(1);
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .contains("key_value_stores"),
        "{log:?}"
    );
}

/// Host-only: Spin 4.1.0-pre0 does not start this app with `dependencies_inherit_configuration
/// = false` (its deny adapter does not compose with the guard's `wasi:keyvalue` atomics:
/// "type mismatch for import `wasi:keyvalue/atomics@0.2.0-draft2`"; README "On Spin").
#[test]
fn on_the_host_a_dependency_that_does_not_inherit_configuration_sees_no_variables_or_stores() {
    let target = Target::host();
    let dir = tempfile::tempdir().unwrap();
    let path = edited_manifest(dir.path(), |t| {
        t.replace(
            "dependencies_inherit_configuration = true",
            "dependencies_inherit_configuration = false",
        )
    });
    let app = target.spawn_app_from(&path, &[]);
    let response = app.get("/product");
    response.assert_problem(500, "internal");
    let log = app.access_log(1);
    assert!(
        log[0]["error"].as_str().unwrap().contains("not available"),
        "{log:?}"
    );
    // The component itself keeps its own grants: its database still answers.
    assert_eq!(app.get("/health").status, 200);
}

/// The rate-limit counter keys in the app's key-value file, by window start and client.
fn counter_keys(app: &TestApp) -> Vec<(u64, String)> {
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_key_value.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT key FROM spin_key_value WHERE key LIKE 'rate-limit:%'")
        .unwrap();
    let keys: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    keys.into_iter()
        .map(|key| {
            let mut parts = key.splitn(4, ':');
            let (_, _, start, client) = (parts.next(), parts.next(), parts.next(), parts.next());
            (start.unwrap().parse().unwrap(), client.unwrap().to_owned())
        })
        .collect()
}

fn counters_of_clients_that_do_not_come_back_are_swept_by_later_ones(target: Target) {
    let app = target.spawn_app_with(&[
        "--variable",
        "rate_limit_requests=1000",
        "--variable",
        "rate_limit_window_seconds=1",
    ]);
    for n in 0..40 {
        let response = get_as(
            &app,
            &sign(claims(&format!("gone-{n}"), ALL_SCOPES)),
            "/product",
        );
        assert_eq!(response.status, 200);
    }
    assert!(counter_keys(&app)
        .iter()
        .any(|(_, c)| c.starts_with("sub:gone-")));
    // Their windows end; other clients arrive, each sweeping a few old counters as it
    // makes its first request of a window.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    for n in 0..30 {
        let response = get_as(
            &app,
            &sign(claims(&format!("new-{n}"), ALL_SCOPES)),
            "/product",
        );
        assert_eq!(response.status, 200);
    }
    let keys = counter_keys(&app);
    let stale: Vec<&(u64, String)> = keys
        .iter()
        .filter(|(_, c)| c.starts_with("sub:gone-"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
    // What is left is the newcomers' counters (and their index), nothing older.
    assert!(keys.len() <= 30, "{keys:?}");
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_key_value.db")).unwrap();
    let indexed_gone: i64 = db
        .query_row(
            "SELECT count(*) FROM spin_key_value WHERE key LIKE 'rate-limit-clients:%' \
             AND CAST(value AS TEXT) LIKE 'sub:gone-%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexed_gone, 0);
}

on_every_target!(
    a_valid_token_reads_and_the_log_names_its_subject,
    requests_without_a_bearer_token_are_401_with_www_authenticate,
    the_jwt_attack_set_is_refused,
    clock_skew_up_to_60_seconds_is_tolerated,
    a_token_just_under_4_kib_is_accepted,
    a_public_key_config_accepts_its_own_algorithm_and_refuses_an_hs256_token_made_with_the_key,
    a_public_key_alone_fixes_the_algorithm_by_its_type,
    eddsa_and_rs256_public_keys_verify_their_tokens,
    the_token_command_signs_with_the_apps_key_and_needs_the_private_key_for_a_public_key_config,
    a_broken_key_configuration_is_a_500_not_a_401,
    every_route_needs_its_scope_and_only_its_scope,
    health_is_open_and_not_counted,
    exactly_the_limit_passes_when_a_burst_arrives_at_once,
    limits_are_per_subject_and_per_address_without_a_valid_token,
    without_its_key_value_store_the_guard_fails_closed,
    counters_of_clients_that_do_not_come_back_are_swept_by_later_ones,
);
