//! `api/openapi.json` held by an outside fuzzer: schemathesis, pinned in
//! `tests/contract/requirements.txt`, runs every check (`--checks all`) against the running
//! app and finds nothing: no 5xx, every status and body documented, schema-valid requests
//! accepted, schema-invalid ones refused. `tests/contract/schemathesis.toml` says what the
//! fuzzer cannot know from the document alone.

use std::path::PathBuf;
use std::process::Command;

use crate::app::{on_every_target, repo_root, Target};
use crate::receiver::Receiver;

/// The pinned schemathesis: `$SCHEMATHESIS` if set, else the tests' venv with
/// `tests/contract/requirements.txt`.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    crate::python::venv_with("tests/contract/requirements.txt").join("bin/schemathesis")
}

fn documented_operations() -> usize {
    let text = std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|key| ["get", "put", "post", "delete", "patch"].contains(&key.as_str()))
        .count()
}

fn schemathesis_finds_nothing_in_the_running_app(target: Target) {
    let schemathesis = schemathesis();
    // A receiver that always fails keeps events undelivered, so `GET /events` lists real
    // ids for the fuzzer to redeliver.
    let receiver = Receiver::start();
    receiver.answer_always(503);
    let urls = format!("order_events_urls={}", receiver.url("/inventory-events"));
    let app = target.spawn_app_with(&[
        "--variable",
        &urls,
        // The fuzzer sends about 1,500 requests in a few seconds as one subject.
        "--variable",
        "rate_limit_requests=100000000",
    ]);
    // A hold for the fuzzer's operations on holds (`hooks.py`): its ids name none.
    let product =
        app.create_product(&serde_json::json!({"name": "Held", "price": 1, "stock": 1000}));
    let hold = crate::reservations::held(
        &app,
        "contract-hold",
        &[(product["id"].as_i64().unwrap(), 1)],
        86_400,
    );
    // A second location the fuzzer's positive cases may name (`hooks.py`).
    crate::locations::location(&app, "contract-to", 50);
    let contract = repo_root().join("tests/contract");
    // Hypothesis writes its own directory into the working directory: not the source tree.
    let scratch = tempfile::tempdir().unwrap();
    let seed = std::env::var("CONTRACT_SEED").unwrap_or_else(|_| "1".into());
    let output = Command::new(&schemathesis)
        .current_dir(scratch.path())
        .env("INVENTORY_TOKEN", app.auth.as_deref().expect("a token"))
        .env("INVENTORY_RESERVATION", &hold)
        .env("INVENTORY_PRODUCT", product["id"].to_string())
        .env(
            "INVENTORY_RUNTIME",
            format!("{:?}", target.runtime).to_lowercase(),
        )
        .env("SCHEMATHESIS_HOOKS", contract.join("hooks.py"))
        .arg("--config-file")
        .arg(contract.join("schemathesis.toml"))
        .arg("--no-color")
        .arg("run")
        .arg(repo_root().join("api/openapi.json"))
        .args(["--url", &format!("http://{}", app.addr)])
        .args(["--checks", "all", "--seed", &seed])
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", schemathesis.display()));
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis (seed {seed}) found something:\n{report}"
    );
    // Every documented operation was exercised, not skipped.
    let tested = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .unwrap_or_else(|| panic!("no `Tested:` line in the report:\n{report}"));
    assert_eq!(tested, documented_operations().to_string(), "{report}");
    let served = app.access_log(1000);
    let failed: Vec<_> = served
        .iter()
        .filter(|line| line["status"].as_u64().is_some_and(|status| status >= 500))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

on_every_target!(schemathesis_finds_nothing_in_the_running_app,);
