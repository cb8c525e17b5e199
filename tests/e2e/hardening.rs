//! Hostile clients: idle and half-open connections by the thousand, slow heads, oversized
//! heads, more requests than instances. The host bounds each and keeps serving others: those
//! tests are of the host alone. The app's own guard against remote clients holding the
//! shipped dev secret runs on every target.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::app::{manifest, on_every_target, spawn_app_with, Target, TestApp};
use crate::host::full_host;

fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(&app.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Whether the server has closed `stream` (a read sees the end, or an error).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

#[test]
fn thousands_of_idle_and_half_open_connections_do_not_keep_others_out() {
    // A cap well under what the attack opens, and a head timeout longer than the test:
    // only making room by closing idle connections lets a real client in.
    let app = spawn_app_with(
        &manifest(),
        &["--max-connections", "200", "--header-timeout", "60"],
    );
    let mut attack = Vec::new();
    for n in 0..1500 {
        let mut stream = TcpStream::connect(&app.addr).unwrap();
        if n % 2 == 0 {
            // Half a request head, never finished.
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
        }
        attack.push(stream);
    }
    let started = Instant::now();
    let response = app.get("/health");
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The oldest idle ones made room and were closed.
    let first = attack.first_mut().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(closed_by_server(first));
    let stderr = app.stderr();
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("accepting connections fails"), "{stderr}");
}

#[test]
fn a_connection_that_sends_no_head_and_an_idle_keep_alive_connection_are_closed() {
    let app = spawn_app_with(&manifest(), &["--header-timeout", "1"]);
    let mut silent = connect(&app);
    let mut kept_alive = connect(&app);
    kept_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    kept_alive.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let started = Instant::now();
    assert!(closed_by_server(&mut silent));
    assert!(closed_by_server(&mut kept_alive));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/health").status, 200);
}

#[test]
fn a_request_head_over_32_kib_is_refused_with_431() {
    let app = spawn_app_with(&manifest(), &[]);
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let response = app.raw(big.as_bytes());
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(200)]
    );
    assert_eq!(app.get("/health").status, 200);
}

#[test]
fn a_request_that_cannot_get_an_instance_in_time_is_answered_503_with_retry_after() {
    let (app, busy) = full_host(&[]);
    let started = Instant::now();
    let response = app.request("GET", "/ok", &[("x-request-id", "queued-1")], None);
    let waited = started.elapsed();
    // The host's own answer: a plain problem+json, nothing of any app's in it.
    assert_eq!(response.status, 503);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let body = response.json();
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], 503);
    assert!(body.get("request_id").is_none(), "{body}");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(busy.join().unwrap().starts_with("HTTP/1.1 500"));
    assert_eq!(app.get("/ok").status, 200);
}

fn a_token_signed_with_the_shipped_dev_secret_works_only_from_this_machine(target: Target) {
    let ip = crate::app::non_loopback_ip();
    let app = target.spawn_app_with(&["--listen", "0.0.0.0:0"]);
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    let (local, remote) = (format!("127.0.0.1:{port}"), format!("{ip}:{port}"));
    // The developer's quickstart: the dev secret, from the same machine.
    assert_eq!(
        app.request_to(&local, "GET", "/product", &[], None).status,
        200
    );
    // Anyone else: refused, and the log names the variable to set.
    let refused = app.request_to(
        &remote,
        "GET",
        "/product",
        &[("x-request-id", "remote-1")],
        None,
    );
    refused.assert_problem(401, "unauthorized");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let line = app
        .access_log(2)
        .into_iter()
        .find(|l| l["request_id"] == "remote-1")
        .unwrap();
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("SPIN_VARIABLE_JWT_SECRET"), "{line}");
    assert_eq!(line["ip"], ip.to_string());
    // /health stays open to load balancers.
    assert_eq!(
        app.request_to(&remote, "GET", "/health", &[], None).status,
        200
    );
}

fn with_a_real_jwt_secret_remote_clients_are_served(target: Target) {
    let ip = crate::app::non_loopback_ip();
    let secret = "jwt_secret=a-real-deployment-secret-of-plenty-of-bytes-0001";
    let app = target.spawn_app_with(&["--listen", "0.0.0.0:0", "--variable", secret]);
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    let remote = format!("{ip}:{port}");
    assert_eq!(
        app.request_to(&remote, "GET", "/product", &[], None).status,
        200
    );
}

on_every_target!(
    a_token_signed_with_the_shipped_dev_secret_works_only_from_this_machine,
    with_a_real_jwt_secret_remote_clients_are_served,
);
