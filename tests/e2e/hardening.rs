//! Hostile clients: idle and half-open connections by the thousand, slow heads, oversized
//! heads, more requests than instances. The host bounds each and keeps serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::app::{manifest, spawn_app_with, TestApp};
use crate::host::misbehave_manifest;

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
    let app = spawn_app_with(
        &misbehave_manifest(),
        &[
            "--max-instances",
            "1",
            "--queue-timeout",
            "1",
            "--request-timeout",
            "4",
        ],
    );
    // `/spin` holds the only instance until its timeout.
    let addr = app.addr.clone();
    let busy = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /spin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let response = app.request("GET", "/ok", &[("x-request-id", "queued-1")], None);
    let waited = started.elapsed();
    let body = response.assert_problem(503, "unavailable");
    assert_eq!(body["request_id"], "queued-1");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(busy.join().unwrap().starts_with("HTTP/1.1 500"));
    assert_eq!(app.get("/ok").status, 200);
}
