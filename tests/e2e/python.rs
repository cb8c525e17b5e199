//! The tests' Python tools (schemathesis for the contract, the Prometheus client's parser for
//! the metrics), pinned in requirements files and installed into one venv,
//! `target/test-venv`, on first use (pip does nothing when the pins are there already).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::app::repo_root;

/// The venv, with `requirements` (a path under the repo) installed.
pub fn venv_with(requirements: &str) -> PathBuf {
    // One pip at a time: tests run in parallel.
    static PIP: Mutex<()> = Mutex::new(());
    let _pip = PIP.lock().unwrap_or_else(|e| e.into_inner());
    let venv = repo_root().join("target/test-venv");
    let help = format!(
        "the tests need python3 with venv and pip, and PyPI, to install {requirements} into \
         target/test-venv (on Debian: apt-get install python3-venv)"
    );
    if !venv.join("bin/pip").exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap_or_else(|err| panic!("python3: {err}; {help}"));
        assert!(made.success(), "python3 -m venv failed; {help}");
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(repo_root().join(requirements))
        .status()
        .unwrap_or_else(|err| panic!("pip: {err}; {help}"));
    assert!(installed.success(), "pip install failed; {help}");
    venv
}
