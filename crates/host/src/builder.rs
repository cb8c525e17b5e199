//! `build`: runs each component's `[component.<id>.build] command`, as `spin build` does.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::manifest::{BuildConfig, LoadedManifest};

/// Builds every component that has a build command, in manifest order, stopping at the
/// first failure.
pub fn build_all(loaded: &LoadedManifest) -> Result<()> {
    for (id, component) in &loaded.manifest.component {
        let Some(build) = &component.build else {
            continue;
        };
        println!("Building component {id} with `{}`", build.command);
        if let Some(dir) = &build.workdir {
            println!("Working directory: {:?}", loaded.dir.join(dir));
        }
        build_component(loaded, id, build, Stdio::inherit())?;
    }
    if loaded
        .manifest
        .component
        .values()
        .all(|c| c.build.is_none())
    {
        println!("None of the components have a build command.");
    } else {
        println!("Finished building all Spin components");
    }
    Ok(())
}

/// Runs one component's build command in its working directory (`workdir` relative to the
/// manifest, else the manifest's directory); the command's stdout goes to `stdout`, its
/// stderr (the compiler's errors) to the host's.
pub fn build_component(
    loaded: &LoadedManifest,
    id: &str,
    build: &BuildConfig,
    stdout: Stdio,
) -> Result<()> {
    let workdir = match &build.workdir {
        Some(dir) => loaded.dir.join(dir),
        None => loaded.dir.clone(),
    };
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
