//! The host itself, from outside: start-up errors, routes, `--sqlite`, private routes,
//! shutdown.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::app::{
    build_components, cache_dir, manifest, repo_root, spawn_app, spawn_app_with, Build, HOST,
};

/// Writes a manifest beside the real one's build output, with `edit` applied to its text.
pub fn edited_manifest(dir: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let text = std::fs::read_to_string(manifest()).unwrap();
    // Every component and dependency path points at the real build output.
    let target = repo_root().join("target");
    let text = text.replace("\"target/", &format!("\"{}/", target.to_str().unwrap()));
    let path = dir.join("spin.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn up_fails_with(manifest: &Path, args: &[&str]) -> String {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(HOST)
        .arg("up")
        .arg("-f")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A host that starts serves until stopped: give up on it rather than wait forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the host started");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn up_prints_the_address_and_routes_it_serves() {
    let app = spawn_app();
    // spawn_app waited for "Serving http://<addr>" and "Available Routes:"; the address works.
    assert!(app.addr.starts_with("127.0.0.1:"));
    assert_eq!(app.get("/health").status, 200);
    assert!(
        app.stderr().contains("Storing default SQLite data to"),
        "{}",
        app.stderr()
    );
}

#[test]
fn a_missing_wasm_file_is_an_error_naming_the_build_command() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    let path = edited_manifest(dir.path(), |t| {
        t.replace("inventory_products.wasm", "missing.wasm")
    });
    let err = up_fails_with(&path, &[]);
    assert!(err.contains("missing.wasm does not exist"), "{err}");
    assert!(
        err.contains("cargo build --target wasm32-wasip2 --release "),
        "{err}"
    );
    assert!(err.contains(" -p inventory-products"), "{err}");
}

#[test]
fn an_invalid_manifest_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_manifest(dir.path(), |t| {
        t.replace(
            "sqlite_databases = [\"default\"]",
            "sqlite_database = [\"default\"]",
        )
    });
    let err = up_fails_with(&path, &[]);
    assert!(err.contains("sqlite_database"), "{err}");
}

#[test]
fn an_undefined_store_or_variable_is_an_error_before_binding() {
    // Whichever check comes first, the app around it must be buildable.
    build_components();
    let dir = tempfile::tempdir().unwrap();
    let store = edited_manifest(dir.path(), |t| {
        t.replace(
            "sqlite_databases = [\"default\"]",
            "sqlite_databases = [\"orders\"]",
        )
    });
    let err = up_fails_with(&store, &[]);
    assert!(
        err.contains("`orders`") && err.contains("runtime config"),
        "{err}"
    );

    let variable = edited_manifest(dir.path(), |t| {
        t.replace(
            "[component.products.variables]\n",
            "[component.products.variables]\nsecret = \"{{ no_such_variable }}\"\n",
        )
    });
    let err = up_fails_with(&variable, &[]);
    assert!(err.contains("no_such_variable"), "{err}");

    let unknown = up_fails_with(&manifest(), &["--variable", "nope=1"]);
    assert!(unknown.contains("nope"), "{unknown}");
}

#[test]
fn variables_come_from_dot_env_beside_the_manifest() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_manifest(dir.path(), |t| t);
    std::fs::write(
        dir.path().join(".env"),
        "SPIN_VARIABLE_RATE_LIMIT_REQUESTS=2\nSPIN_VARIABLE_JWT_ISSUER=\"from-dotenv\"\n",
    )
    .unwrap();
    // The app's own token (from the `token` command, which reads `.env` too) is accepted...
    let app = spawn_app_with(&manifest, &[]);
    let statuses: Vec<u16> = (0..3).map(|_| app.get("/product").status).collect();
    assert_eq!(statuses, [200, 200, 429], "the limit of 2 came from .env");
    // ...and one issued by the manifest's default issuer is not: `.env` set another.
    let default_issuer = crate::app::cli_token(
        &manifest,
        &["--sub", "other", "--variable", "jwt_issuer=inventory-dev"],
    )
    .unwrap();
    let refused = app.request(
        "GET",
        "/product",
        &[("authorization", &format!("Bearer {default_issuer}"))],
        None,
    );
    assert_eq!(refused.status, 401);
}

#[test]
fn a_runtime_config_key_or_type_the_host_does_not_know_is_an_error_naming_it() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    for (config, named) in [
        (
            "[key_value_store.default]\ntype = \"redis\"\nuri = \"redis://x\"\n",
            "`uri`",
        ),
        ("[key_value_store.default]\ntype = \"dynamo\"\n", "'dynamo'"),
        (
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"u\"\ntoken = \"t\"\n",
            "libsql",
        ),
        (
            "[keyvalue_store.default]\ntype = \"spin\"\n",
            "unused runtime config key(s): keyvalue_store",
        ),
    ] {
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(&path, config).unwrap();
        let err = up_fails_with(
            &manifest(),
            &["--runtime-config-file", path.to_str().unwrap()],
        );
        assert!(err.contains(named), "{config}: {err}");
    }
}

#[test]
fn a_private_route_is_not_reachable_from_outside() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    let path = edited_manifest(dir.path(), |t| {
        t.replace("route = \"/...\"", "route = { private = true }")
    });
    let app = spawn_app_with(&path, &[]);
    let response = app.get("/health");
    assert_eq!(response.status, 404);
    assert!(response.body.is_empty());
}

#[test]
fn sqlite_statements_run_on_the_default_database_before_serving() {
    let migration = repo_root().join("migrations/0001_products.sql");
    let file_arg = format!("@{}", migration.display());
    let insert = "INSERT INTO products (sku, name, price_cents, stock, created_at, updated_at) \
                  VALUES ('SEEDED', 'Seeded', 250, 7, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')";
    let app = spawn_app_with(&manifest(), &["--sqlite", &file_arg, "--sqlite", insert]);
    let body = app.get("/product").json();
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["items"][0]["sku"], "SEEDED");
    assert_eq!(body["items"][0]["price"].to_string(), "2.5");
}

#[test]
fn state_lives_in_the_state_directory_and_survives_a_restart() {
    let app = spawn_app();
    let product = app.create_product(&serde_json::json!({"name": "Kept", "price": 1, "stock": 1}));
    let state = app.state_dir.path().to_path_buf();
    assert!(state.join("sqlite_db.db").exists());
    let again = spawn_app_with(&manifest(), &["--state-dir", state.to_str().unwrap()]);
    assert_eq!(
        again.get(&format!("/product/{}", product["id"])).json(),
        product
    );
    drop(app);
}

#[test]
fn sigterm_stops_the_host_gracefully() {
    let mut app = spawn_app();
    assert_eq!(app.get("/health").status, 200);
    app.signal("TERM");
    assert_eq!(
        app.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        app.stderr()
    );
}

#[test]
fn spin_reserved_paths_answer_before_routing() {
    let app = spawn_app();
    let health = app.get("/.well-known/spin/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, b"OK");
    let info = app.get("/.well-known/spin/info").json();
    assert_eq!(info["name"], "inventory");
}

#[test]
fn a_memory_limit_below_the_component_minimum_is_an_error_before_binding() {
    build_components();
    let err = up_fails_with(&manifest(), &["--max-memory-mib", "1"]);
    // Components load in id order; whichever comes first is named.
    assert!(
        err.contains("component `") && err.contains("minimum byte size"),
        "{err}"
    );
}

/// The misbehaving app with one instance (`--max-instances 1`, `--queue-timeout 1`), and
/// `extra` arguments, after a `GET /spin` has taken that instance until the request times
/// out (8 s): the thread answers that request's raw response.
pub fn full_host(extra: &[&str]) -> (crate::app::TestApp, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let mut args = vec![
        "--max-instances",
        "1",
        "--queue-timeout",
        "1",
        // Long enough that a loaded machine (a scrape's parser starting) still finds the
        // one instance busy when it asks for another.
        "--request-timeout",
        "8",
    ];
    if !extra.contains(&"--metrics-listen") {
        args.extend_from_slice(&["--metrics-listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let app = crate::app::spawn_app_with(&misbehave_manifest(), &args);
    let busy = looping_request(&app.addr);
    // The host is full once the busy request holds the one instance: read off the host's own
    // gauge, not guessed from a sleep (on a loaded machine the request may take a while to
    // get there).
    let metrics = app.metrics_addr.clone().expect("--metrics-listen");
    // A bound on the wait, not a figure: on a machine busy with other tests the first request
    // to a fresh host can take seconds to get its instance (CI found 6 s too few).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = std::net::TcpStream::connect(&metrics).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut scrape = String::new();
        stream.read_to_string(&mut scrape).unwrap();
        if scrape
            .lines()
            .any(|l| l == "inventory_host_instances_in_use{source=\"client\"} 1")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the busy request never took the instance:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (app, busy)
}

/// A `GET /spin` to the misbehaving app at `addr`, which loops until its request times out,
/// on a thread of its own: the thread answers the raw response.
fn looping_request(addr: &str) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    let addr = addr.to_owned();
    std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /spin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    })
}

pub fn misbehave_manifest() -> std::path::PathBuf {
    crate::app::built_fixture("misbehave")
}

#[test]
fn a_trapping_component_gives_a_500_and_a_log_line_and_the_host_keeps_serving() {
    let app = spawn_app_with(&misbehave_manifest(), &[]);
    let response = app.request("GET", "/panic", &[("x-request-id", "trap-1")], None);
    assert_eq!(response.status, 500);
    assert!(response.body.is_empty());
    assert_eq!(app.get("/ok").status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !app.stderr().contains("request id trap-1") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stderr = app.stderr();
    assert!(
        stderr.contains("component `misbehave` failed on /panic (request id trap-1)"),
        "{stderr}"
    );
}

/// Two looping requests, one for each of this machine's cores, do not keep the host from
/// answering another while they loop: a guest that never waits yields its thread at every
/// epoch tick (before, each held a thread of the runtime until its timeout).
#[test]
fn looping_requests_leave_the_host_answering_others_while_they_loop() {
    let app = spawn_app_with(&misbehave_manifest(), &["--request-timeout", "60"]);
    let loops: Vec<_> = (0..2).map(|_| looping_request(&app.addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_eq!(app.get("/ok").status, 200);
    }
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "the looping requests ended before the others were answered"
    );
}

#[test]
fn a_request_over_the_timeout_is_stopped_with_a_500_and_the_host_keeps_serving() {
    let app = spawn_app_with(&misbehave_manifest(), &["--request-timeout", "1"]);
    let started = std::time::Instant::now();
    let response = app.request("GET", "/spin", &[("x-request-id", "spin-1")], None);
    assert_eq!(response.status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/ok").status, 200);
}

#[test]
fn a_dependency_that_matches_no_import_or_is_missing_is_an_error_before_binding() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    let unmatched = edited_manifest(dir.path(), |t| {
        t.replace("\"inventory:guard\" = {", "\"inventory:other\" = {")
    });
    let err = up_fails_with(&unmatched, &[]);
    assert!(
        err.contains("dependency 'inventory:other' doesn't match any imports of component '"),
        "{err}"
    );

    let missing = edited_manifest(dir.path(), |t| {
        t.replace("inventory_guard.wasm", "no_such_guard.wasm")
    });
    let err = up_fails_with(&missing, &[]);
    assert!(
        err.contains("no_such_guard.wasm") && err.contains("inventory-guard"),
        "{err}"
    );

    let registry = edited_manifest(dir.path(), |t| {
        t.replace(
            "\"inventory:guard\" = { path = ",
            "\"inventory:guard\" = \"0.1.0\"\n\"inventory:unused\" = { path = ",
        )
    });
    let err = up_fails_with(&registry, &[]);
    assert!(err.contains("registry"), "{err}");
}

#[test]
fn a_dependency_wired_to_a_missing_or_mismatched_export_or_twice_is_an_error_before_binding() {
    build_components();
    let dir = tempfile::tempdir().unwrap();
    // The guard's entry as edited_manifest leaves it (without its closing brace).
    let out = Build::chosen().wasm_dir();
    let guard = format!("{{ path = \"{}/inventory_guard.wasm\"", out.display());
    let with_dependencies = |deps: &str| {
        edited_manifest(dir.path(), |t| {
            let edited = t.replace(&format!("\"inventory:guard\" = {guard} }}"), deps);
            assert_ne!(edited, t, "the manifest names the guard otherwise");
            edited
        })
    };

    let missing = with_dependencies(&format!(
        "\"inventory:guard/auth@0.1.0\" = {guard}, export = \"inventory:guard/nope@0.1.0\" }}"
    ));
    let err = up_fails_with(&missing, &[]);
    assert!(
        err.contains(
            "dependency 'inventory:guard/auth@0.1.0' doesn't export 'inventory:guard/nope@0.1.0' \
             to satisfy import 'inventory:guard/auth@0.1.0'"
        ),
        "{err}"
    );

    let mismatched = with_dependencies(&format!(
        "\"inventory:guard/auth@0.1.0\" = {guard}, export = \"inventory:guard/validation@0.1.0\" }}"
    ));
    let err = up_fails_with(&mismatched, &[]);
    assert!(
        err.contains(
            "dependency 'inventory:guard/auth@0.1.0' exports 'inventory:guard/validation@0.1.0' \
             which is not compatible with import 'inventory:guard/auth@0.1.0'"
        ),
        "{err}"
    );

    let twice = with_dependencies(&format!(
        "\"inventory:guard\" = {guard} }}\n\"inventory:guard/auth@0.1.0\" = {guard} }}"
    ));
    let err = up_fails_with(&twice, &[]);
    assert!(
        err.contains(
            "has dependency conflicts: import 'inventory:guard/auth@0.1.0' satisfied by \
             dependencies: 'inventory:guard', 'inventory:guard/auth@0.1.0'"
        ),
        "{err}"
    );
}
