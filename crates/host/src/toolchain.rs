//! The Rust targets the components build for. rustup adds the targets `rust-toolchain.toml`
//! lists only when it installs the toolchain; on a machine whose Rust was already there
//! they are missing, and a build would fail after a long compile with "can't find crate
//! for `core`". So the build step (and the host's own build script, before Wasmtime
//! compiles) adds a missing target with rustup, saying so, or stops with the command to run.
//!
//! Plain `std`: the host's `build.rs` and the end-to-end tests include this file too.

use std::fmt;
use std::path::Path;
use std::process::Command;

/// Why a target could not be made available.
#[derive(Debug)]
pub enum TargetError {
    /// `rustc` could not say where the target's libraries go.
    Rustc { target: String, detail: String },
    /// The target is missing and there is no rustup to add it.
    NoRustup { target: String },
    /// `rustup target add` failed (offline, say).
    Rustup { target: String, detail: String },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rustc { target, detail } => write!(
                f,
                "cannot ask rustc whether the Rust target {target} is installed: {detail}"
            ),
            Self::NoRustup { target } => write!(
                f,
                "the Rust target {target} is not installed, and there is no rustup here to add \
                 it: run `rustup target add {target}` (rustup: https://rustup.rs), or install \
                 your distribution's Rust standard library for {target}"
            ),
            Self::Rustup { target, detail } => write!(
                f,
                "the Rust target {target} is not installed and `rustup target add {target}` \
                 failed: {detail}"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// The targets a build command compiles for: `--target T` or `--target=T` of a cargo
/// command (other commands name none we can check).
pub fn cargo_targets(command: &str) -> Vec<&str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if !words.iter().any(|w| *w == "cargo" || w.ends_with("/cargo")) {
        return Vec::new();
    }
    let mut targets = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if word == "--target" {
            targets.extend(words.next());
        } else if let Some(target) = word.strip_prefix("--target=") {
            targets.push(target);
        }
    }
    targets
}

/// The targets `rust-toolchain.toml` (its `targets = [...]` line) lists.
#[allow(dead_code)] // The host's build script's.
pub fn toolchain_targets(toolchain_file: &str) -> Vec<String> {
    toolchain_file
        .lines()
        .filter_map(|line| line.trim().strip_prefix("targets"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .flat_map(|list| list.split(['[', ']', ',']))
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Makes `target` available to the `rustc` that `dir`'s builds use: `Ok(true)` if it was
/// added now (after `announce` was told), `Ok(false)` if it was there.
pub fn ensure(
    rustc: &str,
    target: &str,
    dir: &Path,
    announce: impl FnOnce(&str),
) -> Result<bool, TargetError> {
    if installed(rustc, target, dir)? {
        return Ok(false);
    }
    let rustup = |args: &[&str]| Command::new("rustup").args(args).current_dir(dir).output();
    if let Err(e) = rustup(&["--version"]) {
        return Err(match e.kind() {
            std::io::ErrorKind::NotFound => TargetError::NoRustup {
                target: target.to_owned(),
            },
            _ => TargetError::Rustup {
                target: target.to_owned(),
                detail: e.to_string(),
            },
        });
    }
    announce(&format!(
        "Adding the Rust target {target} with rustup: the components are built for it"
    ));
    let output = rustup(&["target", "add", target]).map_err(|e| TargetError::Rustup {
        target: target.to_owned(),
        detail: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(TargetError::Rustup {
            target: target.to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(true)
}

/// Whether the target's standard library is installed: its `libcore` is in the directory
/// rustc names for it.
fn installed(rustc: &str, target: &str, dir: &Path) -> Result<bool, TargetError> {
    let failed = |detail: String| TargetError::Rustc {
        target: target.to_owned(),
        detail,
    };
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(dir)
        .output()
        .map_err(|e| failed(format!("running {rustc}: {e}")))?;
    if !output.status.success() {
        // An unknown target: let the build say so in its own words.
        return Ok(true);
    }
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let Ok(entries) = std::fs::read_dir(&libdir) else {
        return Ok(false);
    };
    Ok(entries.flatten().any(|entry| {
        entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("libcore-"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_command_names_its_targets() {
        assert_eq!(
            cargo_targets("cargo build --target wasm32-wasip2 --release -p x"),
            ["wasm32-wasip2"]
        );
        assert_eq!(
            cargo_targets("cd x && cargo build --target=wasm32-unknown-unknown"),
            ["wasm32-unknown-unknown"]
        );
        assert!(cargo_targets("tinygo build -target=wasip1 -o main.wasm").is_empty());
        assert!(cargo_targets("cargo build --release").is_empty());
    }

    #[test]
    fn the_toolchain_file_lists_its_targets() {
        let file = "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\", \"wasm32-unknown-unknown\"]\n";
        assert_eq!(
            toolchain_targets(file),
            ["wasm32-wasip2", "wasm32-unknown-unknown"]
        );
        assert!(toolchain_targets("[toolchain]\nchannel = \"stable\"\n").is_empty());
    }

    #[cfg(unix)]
    /// A `rustc` that names `libdir` as every target's library directory.
    fn fake_rustc(dir: &Path, libdir: &Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("rustc");
        std::fs::write(&path, format!("#!/bin/sh\necho {}\n", libdir.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[cfg(unix)]
    #[test]
    fn a_target_is_installed_when_its_libcore_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let libdir = dir.path().join("lib");
        let rustc = fake_rustc(dir.path(), &libdir);
        assert!(!installed(&rustc, "wasm32-wasip2", dir.path()).unwrap());
        std::fs::create_dir(&libdir).unwrap();
        assert!(!installed(&rustc, "wasm32-wasip2", dir.path()).unwrap());
        std::fs::write(libdir.join("libcore-0123abcd.rlib"), "").unwrap();
        assert!(installed(&rustc, "wasm32-wasip2", dir.path()).unwrap());
    }
}
