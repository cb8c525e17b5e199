//! Metrics, scraped as Prometheus would and read by a real parser of the format (the official
//! Python client's, pinned in `tests/metrics/requirements.txt`): the host's own on
//! `--metrics-listen` (host-only), and the app's `GET /metrics` (on every target). The
//! figures move with the traffic the tests send.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::{
    cli_token, manifest, on_every_target, repo_root, spawn_app_with, Build, Target, TestApp,
    TestResponse,
};
use crate::host::full_host;
use crate::receiver::Receiver;
use crate::reservations::held;

/// The content type of the text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A scrape, parsed: every family's type, and every sample.
pub(crate) struct Scrape {
    families: Value,
    samples: Vec<Value>,
}

impl Scrape {
    /// Parses `text` with `prometheus_client.parser`, which refuses a malformed exposition.
    fn parse(text: &str) -> Self {
        let venv = crate::python::venv_with("tests/metrics/requirements.txt");
        let mut child = Command::new(venv.join("bin/python"))
            .arg(repo_root().join("tests/metrics/parse.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the exposition does not parse: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
        Self {
            families: parsed["families"].clone(),
            samples: serde_json::from_value(parsed["samples"].clone()).unwrap(),
        }
    }

    /// The value of the sample `name` with exactly `labels`; 0 if there is none.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        self.samples
            .iter()
            .find(|s| s["name"] == name && s["labels"] == Value::Object(labels.clone()))
            .map_or(0.0, |s| s["value"].as_f64().unwrap())
    }

    /// The type Prometheus gives the family `family`.
    fn kind(&self, family: &str) -> &str {
        self.families[family]
            .as_str()
            .unwrap_or_else(|| panic!("no family {family}"))
    }
}

/// The host's metrics, scraped over plain HTTP as Prometheus does.
pub(crate) fn scrape_host(app: &TestApp) -> Scrape {
    let addr = app.metrics_addr.as_deref().expect("--metrics-listen");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {TEXT_FORMAT}")),
        "{head}"
    );
    Scrape::parse(body)
}

fn requests(scrape: &Scrape, component: &str, method: &str, status: &str) -> f64 {
    scrape.value(
        "inventory_host_requests_total",
        &[
            ("component", component),
            ("source", "client"),
            ("method", method),
            ("status", status),
        ],
    )
}

#[test]
fn the_hosts_metrics_parse_and_count_requests_by_component_method_and_status() {
    let app = spawn_app_with(&manifest(), &["--metrics-listen", "127.0.0.1:0"]);
    let before = scrape_host(&app);
    assert_eq!(before.kind("inventory_host_requests"), "counter");
    assert_eq!(
        before.kind("inventory_host_request_duration_seconds"),
        "histogram"
    );
    assert_eq!(before.kind("inventory_host_instances_in_use"), "gauge");

    for _ in 0..5 {
        assert_eq!(app.get("/health").status, 200);
    }
    for _ in 0..3 {
        assert_eq!(app.get("/product/999999").status, 404);
    }
    assert_eq!(
        app.request("DELETE", "/product/999999", &[], None).status,
        404
    );
    // Answered by the host itself: no component.
    assert_eq!(app.get("/.well-known/spin/health").status, 200);

    let after = scrape_host(&app);
    let delta = |method: &str, status: &str, component: &str| {
        requests(&after, component, method, status) - requests(&before, component, method, status)
    };
    assert_eq!(delta("GET", "2xx", "products"), 5.0);
    assert_eq!(delta("GET", "4xx", "products"), 3.0);
    assert_eq!(delta("DELETE", "4xx", "products"), 1.0);
    assert_eq!(delta("GET", "2xx", "-"), 1.0);
    // The scrapes themselves are on their own listener: not counted.
    let count = |s: &Scrape| {
        s.value(
            "inventory_host_request_duration_seconds_count",
            &[("component", "products"), ("source", "client")],
        )
    };
    assert_eq!(count(&after) - count(&before), 9.0);
    let inf = after.value(
        "inventory_host_request_duration_seconds_bucket",
        &[
            ("component", "products"),
            ("source", "client"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(inf, count(&after));
    assert!(
        after.value(
            "inventory_host_request_duration_seconds_sum",
            &[("component", "products"), ("source", "client")]
        ) > 0.0
    );
    let accepted = |s: &Scrape| s.value("inventory_host_connections_accepted_total", &[]);
    assert!(accepted(&after) - accepted(&before) >= 10.0);
    assert_eq!(
        after.value("inventory_host_instances_max", &[("source", "client")]),
        128.0
    );
    assert_eq!(
        after.value("inventory_host_instances_in_use", &[("source", "client")]),
        0.0
    );
    let made =
        |s: &Scrape, kind: &str| s.value("inventory_host_instances_made_total", &[("kind", kind)]);
    let served = |s: &Scrape| {
        s.value(
            "inventory_host_instances_retired_total",
            &[("reason", "served")],
        )
    };
    let reuses = |s: &Scrape| s.value("inventory_host_instance_reuses_total", &[]);
    match Build::chosen() {
        // WASI 0.2 components: an instance for each request, dropped after it.
        Build::Wasip2 => {
            assert_eq!(made(&after, "wasip2") - made(&before, "wasip2"), 9.0);
            assert_eq!(served(&after), made(&after, "wasip2"));
            assert_eq!(made(&after, "wasip3"), 0.0);
        }
        // WASI 0.3 components: each request begins on a new instance or reuses one.
        Build::Wasip3 => {
            let new = made(&after, "wasip3") - made(&before, "wasip3");
            assert!((1.0..9.0).contains(&new), "{new} instances for 9 requests");
            assert_eq!(new + reuses(&after) - reuses(&before), 9.0);
            assert_eq!(made(&after, "wasip2"), 0.0);
        }
    }
    assert!(after.value("inventory_host_start_time_seconds", &[]) > 1.7e9);

    // Off unless asked for.
    let plain = spawn_app_with(&manifest(), &[]);
    assert!(plain.metrics_addr.is_none());
    assert!(!plain.stdout().contains("metrics"));
}

#[test]
fn the_hosts_metrics_show_instances_in_use_waits_and_the_503s_of_a_full_host() {
    let (app, busy) = full_host(&["--metrics-listen", "127.0.0.1:0"]);
    let during = scrape_host(&app);
    assert_eq!(
        during.value("inventory_host_instances_in_use", &[("source", "client")]),
        1.0
    );
    assert!(during.value("inventory_host_connections_open", &[]) >= 1.0);
    assert_eq!(app.get("/ok").status, 503);

    let after = scrape_host(&app);
    assert_eq!(
        after.value(
            "inventory_host_instance_waits_total",
            &[("source", "client")]
        ),
        1.0
    );
    assert_eq!(
        after.value("inventory_host_overloaded_total", &[("source", "client")]),
        1.0
    );
    assert!(
        after.value(
            "inventory_host_instance_wait_seconds_total",
            &[("source", "client")]
        ) >= 0.9
    );
    assert_eq!(requests(&after, "misbehave", "GET", "5xx"), 1.0);
    busy.join().unwrap();
}

/// The app's `GET /metrics` with a scraper's token (scope `metrics:read` only).
fn scrape_app(app: &TestApp, token: &str) -> Scrape {
    let response = app.request(
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(response.status, 200, "{}", body(&response));
    assert_eq!(response.header("content-type"), Some(TEXT_FORMAT));
    Scrape::parse(&body(&response))
}

fn body(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn the_apps_metrics_parse_and_follow_the_catalogue_the_holds_and_the_undelivered_events(
    target: Target,
) {
    let receiver = Receiver::start();
    receiver.answer_always(500);
    let urls = format!("order_events_urls={}", receiver.url("/hooks"));
    let app = target.spawn_app_with(&["--variable", &urls]);
    let token = cli_token(
        &manifest(),
        &["--sub", "prometheus", "--scope", "metrics:read"],
    )
    .unwrap();
    let host = receiver
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    let empty = scrape_app(&app, &token);
    assert_eq!(empty.kind("inventory_products"), "gauge");
    assert_eq!(empty.value("inventory_products", &[]), 0.0);
    assert_eq!(
        empty.value(
            "inventory_events_undelivered",
            &[("receiver", &host), ("status", "pending")]
        ),
        0.0
    );

    let mug = app.create_product(&json!({"name": "Mug", "price": 4, "stock": 10}));
    app.create_product(&json!({"name": "Cup", "price": 3, "stock": 5}));
    held(&app, "metrics-1", &[(mug["id"].as_i64().unwrap(), 3)], 900);
    // Three events (two products created, a hold), none delivered: the receiver fails.
    std::thread::sleep(Duration::from_millis(1100));
    let busy = scrape_app(&app, &token);
    assert_eq!(busy.value("inventory_products", &[]), 2.0);
    assert_eq!(
        busy.value("inventory_units", &[("quantity", "stock")]),
        15.0
    );
    assert_eq!(
        busy.value("inventory_units", &[("quantity", "reserved")]),
        3.0
    );
    assert_eq!(
        busy.value("inventory_units", &[("quantity", "available")]),
        12.0
    );
    assert_eq!(busy.value("inventory_reservations_active", &[]), 1.0);
    assert_eq!(
        busy.value(
            "inventory_events_undelivered",
            &[("receiver", &host), ("status", "pending")]
        ),
        3.0
    );
    assert_eq!(
        busy.value(
            "inventory_events_undelivered",
            &[("receiver", &host), ("status", "dead")]
        ),
        0.0
    );
    assert!(
        busy.value(
            "inventory_events_oldest_pending_age_seconds",
            &[("receiver", &host)]
        ) >= 1.0
    );

    // The receiver recovers: the notifier's retries empty the outbox, and the figures say so.
    receiver.answer_always(204);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = scrape_app(&app, &token);
        let pending = now.value(
            "inventory_events_undelivered",
            &[("receiver", &host), ("status", "pending")],
        );
        if pending == 0.0 {
            assert_eq!(
                now.value(
                    "inventory_events_oldest_pending_age_seconds",
                    &[("receiver", &host)]
                ),
                0.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "{pending} events still pending");
        std::thread::sleep(Duration::from_millis(250));
    }

    // Its own scope: a token for everything else is refused.
    let reader = cli_token(
        &manifest(),
        &["--sub", "reader", "--scope", "inventory:read events:admin"],
    )
    .unwrap();
    let refused = app.request(
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {reader}"))],
        None,
    );
    refused.assert_problem(403, "forbidden");
}

/// The metric names an expression uses: `inventory_...` identifiers.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("inventory_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_alert_rules_in_deploy_use_metrics_the_host_and_the_app_serve() {
    let text = std::fs::read_to_string(repo_root().join("deploy/prometheusrule.yaml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(rules["kind"].as_str(), Some("PrometheusRule"));
    // With a receiver configured, as where events alerts matter.
    let receiver = Receiver::start();
    let urls = format!("order_events_urls={}", receiver.url("/hooks"));
    let app = spawn_app_with(
        &manifest(),
        &["--metrics-listen", "127.0.0.1:0", "--variable", &urls],
    );
    let token = cli_token(
        &manifest(),
        &["--sub", "prometheus", "--scope", "metrics:read"],
    )
    .unwrap();
    // A 5xx-free request so the host has a requests series to show.
    assert_eq!(app.get("/health").status, 200);
    let served: Vec<String> = scrape_host(&app)
        .samples
        .into_iter()
        .chain(scrape_app(&app, &token).samples)
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let mut alerts = 0;
    for group in rules["spec"]["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    served.contains(&name),
                    "no metric {name} is served ({expr})"
                );
            }
            alerts += 1;
        }
    }
    assert_eq!(alerts, 2);
}

on_every_target!(
    the_apps_metrics_parse_and_follow_the_catalogue_the_holds_and_the_undelivered_events
);
