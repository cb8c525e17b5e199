//! `build`: runs each component's `[component.<id>.build] command`, as `spin build` does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use crate::manifest::{BuildConfig, LoadedManifest};
use crate::toolchain;

/// Builds every component that has a build command, in manifest order, stopping at the
/// first failure. The Rust targets the commands name are checked first, so a missing one is
/// added (or reported) before anything compiles.
pub fn build_all(loaded: &LoadedManifest) -> Result<()> {
    for (_, build) in builds(loaded) {
        ensure_targets(&build.command, &workdir(loaded, build))?;
    }
    let mut any = false;
    for (id, build) in builds(loaded) {
        any = true;
        println!("Building component {id} with `{}`", build.command);
        if let Some(dir) = &build.workdir {
            println!("Working directory: {:?}", loaded.dir.join(dir));
        }
        build_component(loaded, id, build, Stdio::inherit())?;
    }
    if any {
        println!("Finished building all Spin components");
    } else {
        println!("None of the components have a build command.");
    }
    Ok(())
}

/// Runs one component's build command in its working directory; the command's stdout goes
/// to `stdout`, its stderr (the compiler's errors) to the host's.
pub fn build_component(
    loaded: &LoadedManifest,
    id: &str,
    build: &BuildConfig,
    stdout: Stdio,
) -> Result<()> {
    let workdir = workdir(loaded, build);
    ensure_targets(&build.command, &workdir)?;
    let status = shell(&build.command)
        .current_dir(&workdir)
        .stdout(stdout)
        .status()
        .with_context(|| {
            format!(
                "component `{id}`: cannot run `{}` in {}",
                build.command,
                workdir.display()
            )
        })?;
    if !status.success() {
        bail!("Build command for component {id} failed with status {status}");
    }
    Ok(())
}

fn builds(loaded: &LoadedManifest) -> impl Iterator<Item = (&String, &BuildConfig)> {
    loaded
        .manifest
        .component
        .iter()
        .filter_map(|(id, component)| Some((id, component.build.as_ref()?)))
}

/// Where a component's build command runs: `workdir` relative to the manifest, else the
/// manifest's directory.
fn workdir(loaded: &LoadedManifest, build: &BuildConfig) -> PathBuf {
    match &build.workdir {
        Some(dir) => loaded.dir.join(dir),
        None => loaded.dir.clone(),
    }
}

/// Makes sure the Rust targets a build command names are installed, adding them with
/// rustup if not; each target is checked once per process.
fn ensure_targets(command: &str, workdir: &Path) -> Result<()> {
    static CHECKED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    for target in toolchain::cargo_targets(command) {
        let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
        if checked.contains(target) {
            continue;
        }
        toolchain::ensure("rustc", target, workdir, |line| println!("{line}"))?;
        checked.insert(target.to_owned());
    }
    Ok(())
}

#[cfg(unix)]
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command);
    cmd
}

#[cfg(windows)]
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("cmd");
    cmd.arg("/C").arg(command);
    cmd
}
