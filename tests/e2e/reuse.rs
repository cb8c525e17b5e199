//! WASI 0.3 components: instances reused across requests, as Spin 4 reuses them (the tests
//! that speak only HTTP run on the host and on real Spin), and on the host stopped, unlike
//! Spin's, when a request on them runs past its deadline. The fixture
//! (`tests/fixtures/reuse`, spin-sdk 7) says in every answer which instance served it and how
//! many requests that instance had begun.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::app::{on_every_target, repo_root, spawn_app_with, Runtime, Target, TestApp, HOST};
use crate::metrics::scrape_host;

on_every_target!(
    one_instance_serves_request_after_request_and_each_sees_only_its_own,
    concurrent_requests_share_instances_and_never_see_each_others,
    concurrent_takes_through_reused_instances_never_sell_more_than_the_stock,
    the_reuse_limits_bound_how_often_and_how_long_an_instance_serves,
    requests_with_other_tokens_on_one_instance_never_see_each_others_subject_or_scopes,
);

fn reuse_manifest() -> PathBuf {
    crate::app::built_fixture("reuse")
}

/// The fixture on the host, with its metrics served.
fn reuse_app(args: &[&str]) -> TestApp {
    reuse_app_on(Target::host(), args)
}

fn reuse_app_on(target: Target, args: &[&str]) -> TestApp {
    let mut all = Vec::new();
    if target.runtime == Runtime::Host {
        all.extend(["--metrics-listen", "127.0.0.1:0"]);
    }
    all.extend_from_slice(args);
    target.spawn_app_from(&reuse_manifest(), &all)
}

/// An answer of the fixture: `instance=<id> served=<n> <what>`.
#[derive(Debug)]
struct Served {
    status: u16,
    instance: String,
    served: u64,
    what: String,
}

fn served(app: &TestApp, method: &str, path: &str, probe: &str, body: &[u8]) -> Served {
    let response = app.request(method, path, &[("x-probe", probe)], Some(body));
    let text = String::from_utf8(response.body).unwrap();
    let mut parts = text.trim_end().splitn(3, ' ');
    let instance = parts.next().and_then(|p| p.strip_prefix("instance="));
    let served = parts.next().and_then(|p| p.strip_prefix("served="));
    Served {
        status: response.status,
        instance: instance.unwrap_or_default().to_owned(),
        served: served.and_then(|n| n.parse().ok()).unwrap_or(0),
        what: parts.next().unwrap_or_default().to_owned(),
    }
}

fn retired(app: &TestApp, reason: &str) -> f64 {
    scrape_host(app).value(
        "inventory_host_instances_retired_total",
        &[("reason", reason)],
    )
}

fn one_instance_serves_request_after_request_and_each_sees_only_its_own(target: Target) {
    let app = reuse_app_on(target, &[]);
    let first = served(&app, "POST", "/echo", "a", b"first");
    assert_eq!(first.status, 200, "{first:?}");
    for n in 2..=20u64 {
        let probe = format!("p{n}");
        let body = format!("body {n}");
        let answer = served(&app, "POST", "/echo", &probe, body.as_bytes());
        assert_eq!(answer.instance, first.instance, "{answer:?}");
        assert_eq!(answer.served, n, "{answer:?}");
        assert_eq!(answer.what, format!("probe={probe} body={body}"));
    }
    // Spin 3's interfaces, async, on the reused instance: variables, key-value, SQLite.
    assert_eq!(served(&app, "GET", "/var", "", b"").what, "greeting=hello");
    assert_eq!(served(&app, "GET", "/kv", "", b"").what, "counter=1");
    assert_eq!(served(&app, "GET", "/kv", "", b"").what, "counter=2");
    assert_eq!(served(&app, "POST", "/write", "", b"").what, "written");
    assert_eq!(served(&app, "GET", "/rows", "", b"").what, "rows=1");
    if target.runtime != Runtime::Host {
        return;
    }
    let scrape = scrape_host(&app);
    assert_eq!(
        scrape.value("inventory_host_instances_made_total", &[("kind", "wasip3")]),
        1.0
    );
    assert_eq!(
        scrape.value("inventory_host_instance_reuses_total", &[]),
        24.0
    );
}

fn concurrent_requests_share_instances_and_never_see_each_others(target: Target) {
    let app = Arc::new(reuse_app_on(target, &[]));
    let start = Arc::new(Barrier::new(16));
    let answers: Vec<(usize, Served)> = (0..16)
        .map(|n| {
            let (app, start) = (Arc::clone(&app), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let body = format!("body of {n}");
                (
                    n,
                    served(
                        &app,
                        "POST",
                        "/echo?ms=300",
                        &format!("p{n}"),
                        body.as_bytes(),
                    ),
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (n, answer) in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.what, format!("probe=p{n} body=body of {n}"));
    }
    let instances: HashSet<&str> = answers.iter().map(|(_, a)| a.instance.as_str()).collect();
    assert!(
        instances.len() < answers.len(),
        "16 sleeping requests at once took {} instances",
        instances.len()
    );
}

fn concurrent_takes_through_reused_instances_never_sell_more_than_the_stock(target: Target) {
    let app = Arc::new(reuse_app_on(target, &[]));
    let start = Arc::new(Barrier::new(16));
    let statuses: Vec<u16> = (0..16)
        .map(|_| {
            let (app, start) = (Arc::clone(&app), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                served(&app, "POST", "/take?ms=20&stock=5", "", b"").status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
}

fn the_reuse_limits_bound_how_often_and_how_long_an_instance_serves(target: Target) {
    let app = reuse_app_on(
        target,
        &[
            "--max-instance-reuse-count",
            "3",
            "--idle-instance-timeout",
            "300ms",
        ],
    );
    let answers: Vec<Served> = (0..4)
        .map(|_| served(&app, "GET", "/echo", "", b""))
        .collect();
    assert_eq!(answers[0].instance, answers[2].instance, "{answers:?}");
    assert_eq!(answers[2].served, 3);
    assert_ne!(answers[3].instance, answers[2].instance, "{answers:?}");
    assert_eq!(answers[3].served, 1);
    std::thread::sleep(Duration::from_millis(800));
    let after_idle = served(&app, "GET", "/echo", "", b"");
    assert_ne!(after_idle.instance, answers[3].instance);
    if target.runtime != Runtime::Host {
        return;
    }
    assert_eq!(retired(&app, "reuse_limit"), 1.0);
    assert!(retired(&app, "idle") >= 1.0);
}

#[test]
fn a_loop_past_its_deadline_is_stopped_on_a_reused_instance_and_the_next_request_succeeds() {
    let app = Arc::new(reuse_app(&["--request-timeout", "2s"]));
    // An instance that has served, then a loop on it.
    let before = served(&app, "GET", "/echo", "", b"");
    let started = Instant::now();
    let looped = app.request("GET", "/loop", &[], None);
    assert_eq!(looped.status, 500);
    assert!(looped.body.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let after = served(&app, "GET", "/echo", "", b"");
    assert_eq!(after.status, 200);
    assert_ne!(after.instance, before.instance);
    assert_eq!(retired(&app, "timeout"), 1.0);
    assert!(app.stderr().contains("an instance was stopped (timeout)"));
}

#[test]
fn a_trap_while_others_are_in_flight_keeps_every_acknowledged_write_and_no_half_one() {
    let app = Arc::new(reuse_app(&[]));
    // Writes that hold their transaction open 400 ms, all on instances with a trap coming.
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let app = Arc::clone(&app);
            std::thread::spawn(move || app.request("POST", "/write?ms=400", &[], None))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let trapped = app.request("GET", "/trap", &[], None);
    assert!([500, 503].contains(&trapped.status), "{}", trapped.status);
    let mut acknowledged = 0;
    for writer in writers {
        let response = writer.join().unwrap();
        match response.status {
            200 => acknowledged += 1,
            503 => {
                assert_eq!(response.header("retry-after"), Some("1"));
                assert_eq!(
                    response.header("content-type"),
                    Some("application/problem+json")
                );
                assert_eq!(response.json()["status"], 503);
            }
            other => panic!("a write answered {other}"),
        }
    }
    let rows = served(&app, "GET", "/rows", "", b"");
    assert_eq!(rows.what, format!("rows={acknowledged}"));
    assert_eq!(retired(&app, "trap"), 1.0);
    assert_eq!(served(&app, "POST", "/write", "", b"").status, 200);
}

#[test]
fn an_instance_whose_memory_grew_past_the_bound_takes_no_more_requests() {
    let app = reuse_app(&["--instance-memory-retire-mib", "8"]);
    let first = served(&app, "GET", "/echo", "", b"");
    let grown = served(&app, "GET", "/grow?mib=16", "", b"");
    assert_eq!(grown.instance, first.instance);
    let next = served(&app, "GET", "/echo", "", b"");
    assert_ne!(next.instance, first.instance, "{next:?}");
    assert_eq!(next.served, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while retired(&app, "memory") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(retired(&app, "memory"), 1.0);
}

#[test]
fn up_lists_spins_reuse_flags_and_refuses_bad_values() {
    let out = Command::new(HOST).args(["up", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--max-instance-reuse-count <MAX_INSTANCE_REUSE_COUNT>",
        "[default: 128]",
        "--max-instance-concurrent-reuse-count",
        "[default: 16]",
        "--idle-instance-timeout",
        "[default: 1s]",
        "--request-timeout",
        "[default: 30]",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    for (flag, value) in [
        ("--max-instance-reuse-count", "0"),
        ("--max-instance-concurrent-reuse-count", "4..4"),
        ("--idle-instance-timeout", "1.5s"),
        ("--request-timeout", "2m"),
    ] {
        let out = Command::new(HOST)
            .args(["up", "-f"])
            .arg(reuse_manifest())
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{err}");
    }
}

/// Through the app's guard (WASI 0.2, composed into the WASI 0.3 fixture, inheriting its
/// variables and key-value store), as the app's components will use it.
fn requests_with_other_tokens_on_one_instance_never_see_each_others_subject_or_scopes(
    target: Target,
) {
    let app = Arc::new(reuse_app_on(target, &[]));
    let token = |sub: &str, scope: &str| {
        crate::app::cli_token(&reuse_manifest(), &["--sub", sub, "--scope", scope]).unwrap()
    };
    let callers = [
        ("alice", "inventory:read", token("alice", "inventory:read")),
        ("bob", "stock:deduct", token("bob", "stock:deduct")),
    ];
    let guarded = |app: &TestApp, token: &str| {
        let auth = format!("Bearer {token}");
        let response = app.request("GET", "/guarded", &[("authorization", &auth)], None);
        let text = String::from_utf8(response.body).unwrap();
        (response.status, parts_of(&text))
    };
    // In turn, on one instance.
    let mut instances = HashSet::new();
    for n in 0..10 {
        let (sub, scope, token) = &callers[n % 2];
        let (status, (instance, what)) = guarded(&app, token);
        assert_eq!(status, 200, "{what}");
        assert!(
            what.starts_with(&format!("subject={sub} scopes={scope} remaining=")),
            "{what}"
        );
        instances.insert(instance);
    }
    assert_eq!(instances.len(), 1, "{instances:?}");
    // At once.
    let start = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|n| {
            let (app, start) = (Arc::clone(&app), Arc::clone(&start));
            let (sub, scope, token) = callers[n % 2].clone();
            std::thread::spawn(move || {
                start.wait();
                let auth = format!("Bearer {token}");
                let response = app.request("GET", "/guarded", &[("authorization", &auth)], None);
                let text = String::from_utf8(response.body).unwrap();
                assert_eq!(response.status, 200, "{text}");
                let (_, what) = parts_of(&text);
                assert!(
                    what.starts_with(&format!("subject={sub} scopes={scope} remaining=")),
                    "{what}"
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // No token: refused, whoever came before.
    let refused = app.request("GET", "/guarded", &[("authorization", "Bearer x")], None);
    assert_eq!(refused.status, 401);
}

/// The instance and the rest of one of the fixture's answers.
fn parts_of(text: &str) -> (String, String) {
    let mut parts = text.trim_end().splitn(3, ' ');
    let instance = parts.next().unwrap_or_default().to_owned();
    let _served = parts.next();
    (instance, parts.next().unwrap_or_default().to_owned())
}

#[test]
fn after_a_reload_no_request_is_served_by_an_instance_of_the_old_app() {
    // The fixture's manifest, its wasm files named by absolute path, without a build step.
    let dir = tempfile::tempdir().unwrap();
    let release = repo_root().join("target/wasm32-wasip2/release");
    let text = std::fs::read_to_string(reuse_manifest()).unwrap().replace(
        "../../../target/wasm32-wasip2/release",
        release.to_str().unwrap(),
    );
    let text = text
        .split("[component.reuse.build]")
        .next()
        .unwrap()
        .to_owned();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, &text).unwrap();
    let app = spawn_app_with(&manifest, &["--watch"]);
    let before = served(&app, "GET", "/var", "", b"");
    assert_eq!(before.what, "greeting=hello", "{before:?}");
    assert_eq!(
        served(&app, "GET", "/var", "", b"").instance,
        before.instance
    );
    // A new default for the variable: the manifest reloads, the wasm file unchanged.
    let edited = text.replace("default = \"hello\"", "default = \"there\"");
    crate::watch::rewrite(&manifest, &edited);
    let deadline = Instant::now() + Duration::from_secs(30);
    let swapped = loop {
        let answer = served(&app, "GET", "/var", "", b"");
        if answer.what == "greeting=there" {
            break answer;
        }
        assert_eq!(answer.instance, before.instance, "{answer:?}");
        assert!(
            Instant::now() < deadline,
            "never reloaded: {}",
            app.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(swapped.instance, before.instance);
    for _ in 0..20 {
        let answer = served(&app, "GET", "/var", "", b"");
        assert_eq!(answer.what, "greeting=there", "{answer:?}");
        assert_ne!(answer.instance, before.instance);
    }
}
