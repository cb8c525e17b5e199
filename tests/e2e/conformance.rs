//! Spin's conformance tests (github.com/fermyon/conformance-tests) on this host:
//! `request-shape`, `key-value`, `key-value-no-permission`, `sqlite`, `sqlite-no-permission`,
//! `variables`, `outbound-wasi-http-v0.2.0` and `outbound-wasi-http-v0.2.0-no-perms`, with
//! apps of our own (`tests/conformance/apps`) that exercise the same behaviours.
//!
//! As that suite does: the apps are core wasm modules built for `wasm32-unknown-unknown`
//! with wit-bindgen, which the host makes components when it loads them; each case
//! (`tests/conformance/cases/<name>`) is a manifest with `%{source=<app>}` and
//! `%{port=80}` (the echo server's port) to fill in, and one request with the response it
//! must get: its status, its body exactly, and its headers exactly (a header the case does
//! not list fails it; `optional` ones may be absent, and are checked when they have a
//! value), in a fresh app directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::app::{repo_root, spawn_app_with};

/// The apps, by crate name.
const APPS: &[&str] = &[
    "conformance-request-shape",
    "conformance-key-value",
    "conformance-sqlite",
    "conformance-variables",
    "conformance-outbound-http",
];
const TARGET: &str = "wasm32-unknown-unknown";

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    services: Vec<String>,
    request: Request,
    response: Expected,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Expected {
    status: u16,
    body: String,
    headers: Vec<ExpectedHeader>,
}

#[derive(Deserialize)]
struct ExpectedHeader {
    name: String,
    value: Option<String>,
    #[serde(default)]
    optional: bool,
}

/// Builds the apps once for the run (as the suite builds its own) and checks they are core
/// modules, not components: the host must make them components itself.
fn build_apps() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command
                .current_dir(repo_root())
                .args(["build", "--release", "--target", TARGET]);
            for app in APPS {
                command.args(["-p", app]);
            }
            let output = command.output().expect("run cargo");
            // The host's build script adds the target (rust-toolchain.toml lists it) when
            // the host compiles; one removed since is added back with rustup.
            assert!(
                output.status.success(),
                "building the conformance apps failed (if {TARGET} is missing: `rustup target \
                 add {TARGET}`):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let dir = repo_root().join("target").join(TARGET).join("release");
            for app in APPS {
                let wasm =
                    std::fs::read(dir.join(format!("{}.wasm", app.replace('-', "_")))).unwrap();
                // A core module's preamble: magic, then version 1 of the core layer.
                assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "{app} is not a core module");
            }
            dir
        })
        .clone()
}

/// `%{key=value}` in `text`, filled in.
fn substitute(text: &str, wasm_dir: &Path, echo_port: Option<u16>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed %{") + start;
        let (key, value) = rest[start + 2..end].split_once('=').expect("%{key=value}");
        match key.trim() {
            "source" => out.push_str(
                wasm_dir
                    .join(format!("{}.wasm", value.trim()))
                    .to_str()
                    .unwrap(),
            ),
            "port" => out.push_str(
                &echo_port
                    .expect("the case starts no echo server")
                    .to_string(),
            ),
            other => panic!("unknown template key {other}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The suite's `http-echo` service: answers a POST with its body, over HTTP/1.0 with no
/// length (the body ends when the connection closes), as a small Python server would.
fn start_echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    port
}

fn echo(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut stream = reader.into_inner();
    let head = "HTTP/1.0 200 OK\r\nServer: echo/1.0\r\nContent-type: text/plain\r\n\r\n";
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Runs one case as the suite's runner does.
fn run(name: &str) {
    let wasm_dir = build_apps();
    let case_dir = repo_root().join("tests/conformance/cases").join(name);
    let case: Case =
        serde_json::from_str(&std::fs::read_to_string(case_dir.join("test.json")).unwrap())
            .unwrap();
    let echo_port = case
        .services
        .iter()
        .any(|s| s == "http-echo")
        .then(start_echo_server);
    let app_dir = tempfile::tempdir().unwrap();
    let manifest = app_dir.path().join("spin.toml");
    let template = std::fs::read_to_string(case_dir.join("spin.toml")).unwrap();
    std::fs::write(&manifest, substitute(&template, &wasm_dir, echo_port)).unwrap();
    // A fresh app directory, its state beside the manifest, as `spin up` keeps it.
    let state = app_dir.path().join(".spin");
    let app = spawn_app_with(&manifest, &["--state-dir", state.to_str().unwrap()]);
    let headers: Vec<(String, String)> = case
        .request
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), substitute(v, &wasm_dir, echo_port)))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let response = app.request(&case.request.method, &case.request.path, &headers, None);
    let expected = &case.response;
    let body = String::from_utf8_lossy(&response.body);
    assert_eq!(
        response.status, expected.status,
        "{name}: status; body {body:?}"
    );
    assert_eq!(body, expected.body, "{name}: body");
    let mut actual: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_ascii_lowercase()))
        .collect();
    for header in &expected.headers {
        let at = actual
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&header.name));
        match (at, header.optional) {
            (None, true) => {}
            (None, false) => panic!("{name}: no `{}` header in {actual:?}", header.name),
            (Some(at), _) => {
                let (_, value) = actual.remove(at);
                if let Some(want) = &header.value {
                    assert_eq!(
                        value,
                        want.to_ascii_lowercase(),
                        "{name}: `{}`",
                        header.name
                    );
                }
            }
        }
    }
    assert!(actual.is_empty(), "{name}: unexpected headers {actual:?}");
}

#[test]
fn request_shape() {
    run("request-shape");
}

#[test]
fn key_value() {
    run("key-value");
}

#[test]
fn key_value_no_permission() {
    run("key-value-no-permission");
}

#[test]
fn sqlite() {
    run("sqlite");
}

#[test]
fn sqlite_no_permission() {
    run("sqlite-no-permission");
}

#[test]
fn variables() {
    run("variables");
}

#[test]
fn outbound_wasi_http_v0_2_0() {
    run("outbound-wasi-http-v0.2.0");
}

#[test]
fn outbound_wasi_http_v0_2_0_no_perms() {
    run("outbound-wasi-http-v0.2.0-no-perms");
}
