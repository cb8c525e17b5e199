//! `api/openapi.json` as API teams lint it: Redocly CLI with its recommended rules and
//! Spectral with `spectral:oas`, both pinned in `tests/openapi-lint/package-lock.json`, find
//! no error and no warning. (`tests/openapi-lint/.spectral.yaml` turns off the one Spectral
//! rule that is wrong for OpenAPI 3.1, and says why.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app::repo_root;

/// The pinned linters, installed with `npm ci` into `target/openapi-lint` (npm does nothing
/// when the lock file's versions are there already).
fn linters() -> PathBuf {
    let dir = repo_root().join("target/openapi-lint");
    let help = "the lint test needs Node.js 18 or later with npm, and the npm registry, to \
                install tests/openapi-lint/package-lock.json into target/openapi-lint (on \
                Debian: apt-get install nodejs npm)";
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["package.json", "package-lock.json"] {
        let from = repo_root().join("tests/openapi-lint").join(file);
        let to = dir.join(file);
        let same = std::fs::read(&to).ok() == std::fs::read(&from).ok();
        if !same {
            std::fs::copy(&from, &to).unwrap();
            let _ = std::fs::remove_dir_all(dir.join("node_modules"));
        }
    }
    if !dir.join("node_modules/.bin/spectral").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|err| panic!("npm: {err}; {help}"));
        assert!(installed.success(), "npm ci failed; {help}");
    }
    dir.join("node_modules/.bin")
}

fn run(bin: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(bin)
        .args(args)
        .current_dir(repo_root().join("tests/openapi-lint"))
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}", bin.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn redocly_and_spectral_find_nothing_in_the_openapi_document() {
    let bin = linters();
    let document = repo_root().join("api/openapi.json");
    let document = document.to_str().unwrap();

    // Redocly: `redocly.yaml` beside it extends `recommended`.
    let (ok, out) = run(
        &bin.join("redocly"),
        &["lint", document, "--format=json", "--max-problems=1000"],
    );
    let report: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|err| panic!("redocly's report is not JSON ({err}): {out}"));
    assert_eq!(
        report["totals"],
        serde_json::json!({"errors": 0, "warnings": 0, "ignored": 0}),
        "redocly lint:\n{:#}",
        report["problems"]
    );
    assert!(ok, "redocly lint failed: {out}");

    // Spectral: every result, hints included, is a finding.
    let results = repo_root().join("target/openapi-lint/spectral.json");
    let (ok, out) = run(
        &bin.join("spectral"),
        &[
            "lint",
            "--ruleset",
            ".spectral.yaml",
            "--format=json",
            "--fail-severity=hint",
            "--output",
            results.to_str().unwrap(),
            document,
        ],
    );
    let findings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&results).unwrap_or_else(|err| panic!("{err}: {out}")),
    )
    .unwrap();
    assert_eq!(
        findings,
        serde_json::json!([]),
        "spectral lint:\n{findings:#}"
    );
    assert!(ok, "spectral lint failed: {out}");
}
