//! `up --watch`: a change to a component's watched files rebuilds it and swaps it in, a
//! change to the manifest reloads routes and variables (to the runtime config, the stores;
//! to `.env`, the variables), a failed build keeps the previous version serving, and through
//! all of it no request fails, none in flight is dropped and no state is lost.
//!
//! The app under watch is a temporary one whose build command copies one of two prebuilt
//! fixture components (`hello`, `misbehave`) to its `source`, chosen by a watched file: the
//! same path as a compiler's, in milliseconds.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::app::{repo_root, spawn_app_with, TestApp};
use crate::host::misbehave_manifest;

fn hello_wasm() -> PathBuf {
    crate::app::built_fixture("hello");
    repo_root().join("target/wasm32-wasip2/release/hello.wasm")
}

fn misbehave_wasm() -> PathBuf {
    misbehave_manifest();
    repo_root().join("target/wasm32-wasip2/release/misbehave.wasm")
}

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "watched"

[[trigger.http]]
route = "/..."
component = "app"

[component.app]
source = "app.wasm"
key_value_stores = ["default"]

[component.app.variables]
greeting = "{{ greeting }}"

[variables]
greeting = { default = "world" }

[component.app.build]
command = "cp \"$(cat variant)\" app.wasm"
watch = ["variant"]
"#;

/// The watched app in `dir`, serving `variant` (a wasm file's path), its key-value store in
/// memory: a reload that reopened the store would lose its counts.
fn watched_app(dir: &Path, variant: &Path) -> TestApp {
    std::fs::write(dir.join("spin.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("variant"), variant.to_str().unwrap()).unwrap();
    let config = dir.join("runtime-config.toml");
    std::fs::write(&config, "[key_value_store.default]\ntype = \"spin\"\n").unwrap();
    spawn_app_with(
        &dir.join("spin.toml"),
        &[
            "--build",
            "--watch",
            "--runtime-config-file",
            config.to_str().unwrap(),
        ],
    )
}

fn body(app: &TestApp, path: &str) -> String {
    let response = app.get(path);
    assert_eq!(response.status, 200, "{path}");
    String::from_utf8(response.body).unwrap()
}

fn wait_for_body(app: &TestApp, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app.get(path);
        if response.status == 200 && response.body == expected.as_bytes() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never answered {expected:?}; stderr:\n{}",
            app.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `text` to `path` so that its stamp surely changes (size or time).
pub(crate) fn rewrite(path: &Path, text: &str) {
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_request_loop_runs_through_reloads_with_no_failed_request() {
    let (hello, misbehave) = (hello_wasm(), misbehave_wasm());
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(watched_app(dir.path(), &hello));
    assert_eq!(body(&app, "/"), "hello, world");
    assert_eq!(body(&app, "/count"), "1");

    // Clients keep asking throughout: a fresh connection each time, and one kept alive.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let loops: Vec<_> = [false, true]
        .into_iter()
        .map(|keep_alive| {
            let (app, stop, answers) = (Arc::clone(&app), Arc::clone(&stop), Arc::clone(&answers));
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                while !stop.load(Ordering::Relaxed) {
                    let answer = if keep_alive {
                        let url = format!("http://{}/", app.addr);
                        match agent.get(&url).call() {
                            Ok(mut r) => (
                                r.status().as_u16(),
                                r.body_mut().read_to_string().unwrap_or_default(),
                            ),
                            Err(err) => (0, err.to_string()),
                        }
                    } else {
                        let r = app.get("/");
                        (r.status, String::from_utf8_lossy(&r.body).into_owned())
                    };
                    answers.lock().unwrap().push(answer);
                }
            })
        })
        .collect();

    // A slow request (5 s) in flight while the component is swapped finishes on the old one.
    let slow = {
        let app = Arc::clone(&app);
        std::thread::spawn(move || (app.get("/slow"), Instant::now()))
    };
    std::thread::sleep(Duration::from_millis(100));
    rewrite(&dir.path().join("variant"), misbehave.to_str().unwrap());
    wait_for_body(&app, "/", "fine");
    let swapped = Instant::now();
    let (slow, finished) = slow.join().unwrap();
    assert_eq!(
        (slow.status, slow.body.as_slice()),
        (200, &b"slow, done"[..])
    );
    assert!(
        swapped < finished,
        "the swap came after the slow request ended"
    );

    // Back, then a manifest change: the variable's new value is served.
    rewrite(&dir.path().join("variant"), hello.to_str().unwrap());
    wait_for_body(&app, "/", "hello, world");
    rewrite(
        &dir.path().join("spin.toml"),
        &MANIFEST.replace("default = \"world\"", "default = \"there\""),
    );
    wait_for_body(&app, "/", "hello, there");

    // A build that fails prints its error and leaves the previous version serving.
    rewrite(&dir.path().join("variant"), "/no/such/component.wasm");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.stderr().contains("still serving the previous version") {
        assert!(Instant::now() < deadline, "{}", app.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        app.stderr().contains("/no/such/component.wasm"),
        "{}",
        app.stderr()
    );
    assert_eq!(body(&app, "/"), "hello, there");
    // Fixed, it builds and is swapped in.
    rewrite(&dir.path().join("variant"), misbehave.to_str().unwrap());
    wait_for_body(&app, "/", "fine");
    rewrite(&dir.path().join("variant"), hello.to_str().unwrap());
    wait_for_body(&app, "/", "hello, there");

    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, body)| {
            *status != 200 || !["hello, world", "fine", "hello, there"].contains(&body.as_str())
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(answers.len() > 50, "only {} requests ran", answers.len());
    let reloads = app.stderr().matches("Reloaded the app").count();
    assert!(reloads >= 5, "{}", app.stderr());

    // The key-value store (in memory) was kept through every reload.
    assert_eq!(body(&app, "/count"), "2");
}

#[test]
fn a_manifest_change_reloads_the_routes() {
    let hello = hello_wasm();
    let dir = tempfile::tempdir().unwrap();
    let app = watched_app(dir.path(), &hello);
    assert_eq!(body(&app, "/anything"), "hello, world");
    rewrite(
        &dir.path().join("spin.toml"),
        &MANIFEST.replace("route = \"/...\"", "route = \"/app/...\""),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/anything").status != 404 {
        assert!(Instant::now() < deadline, "{}", app.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(body(&app, "/app/x"), "hello, world");
    // A manifest that does not load keeps the last good app serving, and says why.
    rewrite(
        &dir.path().join("spin.toml"),
        "spin_manifest_version = 2\n[nope",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.stderr().contains("The manifest does not load") {
        assert!(Instant::now() < deadline, "{}", app.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(body(&app, "/app/x"), "hello, world");
}

#[test]
fn a_runtime_config_or_dotenv_change_is_applied() {
    let hello = hello_wasm();
    let dir = tempfile::tempdir().unwrap();
    let app = watched_app(dir.path(), &hello);
    assert_eq!(body(&app, "/count"), "1");
    assert_eq!(body(&app, "/count"), "2");

    // The store moves from memory to a file: the reload opens it there, counting anew.
    rewrite(
        &dir.path().join("runtime-config.toml"),
        "[key_value_store.default]\ntype = \"spin\"\npath = \"counts.db\"\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while body(&app, "/count") != "1" {
        assert!(Instant::now() < deadline, "{}", app.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.path().join("counts.db").is_file(), "{}", app.stderr());

    // `.env` beside the manifest gives the variable a value.
    rewrite(
        &dir.path().join(".env"),
        "SPIN_VARIABLE_GREETING=\"from dotenv\"\n",
    );
    wait_for_body(&app, "/", "hello, from dotenv");
}
