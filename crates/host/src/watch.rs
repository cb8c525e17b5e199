//! `watch` (and `up --watch`): rebuilds the components whose files changed and swaps the new
//! app in while the listener stays open.
//!
//! What is watched, as `spin watch` watches it: each component's `[component.<id>.build]
//! watch` globs (relative to its `workdir`, else the manifest's directory), and what the app
//! is loaded from: the manifest, every wasm file it names, the runtime config file and
//! `.env`. A change to a component's sources runs that component's build command, and only
//! that one; a change to the others (a build's output, a wasm rebuilt by hand, the manifest)
//! reloads the app. Changes are debounced: a burst of saves is one rebuild.
//!
//! A reload builds a whole new app next to the running one (same engine, the stores that
//! are configured as before kept open, components recompiled only where their wasm changed)
//! and then replaces it: a request takes the app that is current when it arrives and
//! finishes on it, so nothing in flight is dropped, and nothing is lost from the databases
//! or key-value stores. A build that fails prints the compiler's errors and keeps the
//! previous version serving until every owed build succeeds; so does a reload that fails (a
//! broken manifest, say), with the reason.
//!
//! Files are polled (a few times a second) rather than watched through the OS: no platform
//! dependency, and nothing to miss when an editor replaces a file instead of writing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::app::{AppOptions, LiveApp};
use crate::builder;
use crate::compile::FileStamp;
use crate::manifest::{DependencySource, LoadedManifest};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(200);

/// Watches in a thread of its own until the process ends.
pub fn spawn(options: AppOptions, live: Arc<LiveApp>, debounce: Duration) -> Result<()> {
    let plan = Plan::read(&options.manifest, options.runtime_config.as_deref())?;
    eprintln!(
        "Watching {} for changes (debounce {debounce:?})",
        options.manifest.display()
    );
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || Watcher::new(options, live, debounce, plan).run())
        .context("cannot start the watcher")?;
    Ok(())
}

/// What to watch, read from the manifest.
struct Plan {
    loaded: LoadedManifest,
    manifest: PathBuf,
    /// The manifest as it was when this plan was read from it.
    manifest_stamp: Option<FileStamp>,
    /// Each component with a build command: its source globs, absolute.
    sources: Vec<(String, Vec<String>)>,
    /// What the app is loaded from: the manifest, every wasm file it names, the runtime
    /// config file and the `.env` file.
    artifacts: Vec<PathBuf>,
}

impl Plan {
    fn read(manifest: &Path, runtime_config: Option<&Path>) -> Result<Self> {
        let manifest_stamp = FileStamp::of(manifest);
        let loaded = LoadedManifest::load(manifest)?;
        let mut sources = Vec::new();
        let mut artifacts = vec![manifest.to_path_buf(), loaded.dir.join(".env")];
        artifacts.extend(runtime_config.map(Path::to_path_buf));
        for (id, component) in &loaded.manifest.component {
            artifacts.push(loaded.source_path(component));
            for dependency in &component.dependencies {
                if let DependencySource::Path(path) = &dependency.source {
                    artifacts.push(loaded.dir.join(path));
                }
            }
            let Some(build) = &component.build else {
                continue;
            };
            if build.watch.is_empty() {
                eprintln!(
                    "You haven't configured what to watch for the component: '{id}': its \
                     sources are not watched (set `[component.{id}.build] watch`)"
                );
            }
            let base = match &build.workdir {
                Some(dir) => loaded.dir.join(dir),
                None => loaded.dir.clone(),
            };
            // The directory is literal even if its name has `*` or `[` in it.
            let base = glob::Pattern::escape(&base.to_string_lossy());
            let globs = build
                .watch
                .iter()
                .map(|glob| Path::new(&base).join(glob).to_string_lossy().into_owned())
                .collect();
            sources.push((id.clone(), globs));
        }
        artifacts.sort();
        artifacts.dedup();
        Ok(Self {
            loaded,
            manifest: manifest.to_path_buf(),
            manifest_stamp,
            sources,
            artifacts,
        })
    }

    /// Whether the manifest in `snapshot` is the one this plan was read from.
    fn is_current(&self, snapshot: &Snapshot) -> bool {
        snapshot.artifacts.get(&self.manifest).copied().flatten() == self.manifest_stamp
    }
}

/// The files as they are at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Snapshot {
    /// Per component: every file its globs match now.
    sources: BTreeMap<String, BTreeMap<PathBuf, FileStamp>>,
    artifacts: BTreeMap<PathBuf, Option<FileStamp>>,
}

impl Snapshot {
    fn take(plan: &Plan) -> Self {
        let sources = plan
            .sources
            .iter()
            .map(|(id, globs)| {
                let files = globs
                    .iter()
                    .filter_map(|pattern| glob::glob(pattern).ok())
                    .flatten()
                    .filter_map(Result::ok)
                    .filter_map(|path| Some((FileStamp::of(&path)?, path)))
                    .map(|(stamp, path)| (path, stamp))
                    .collect();
                (id.clone(), files)
            })
            .collect();
        let artifacts = plan
            .artifacts
            .iter()
            .map(|path| (path.clone(), FileStamp::of(path)))
            .collect();
        Self { sources, artifacts }
    }

    /// The components whose sources differ from `before`, in manifest order.
    fn changed_sources<'a>(&self, before: &Self, plan: &'a Plan) -> Vec<&'a str> {
        plan.sources
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| self.sources.get(*id) != before.sources.get(*id))
            .collect()
    }
}

/// What the watcher carries from one change to the next.
struct WatchState {
    /// The files as last acted on.
    last: Snapshot,
    /// Components whose sources changed since they last built: a failed build is tried
    /// again, with any others still owed, on the next change.
    unbuilt: BTreeSet<String>,
    /// Whether the files are newer than the app serving (a build or a reload failed).
    stale: bool,
}

struct Watcher {
    options: AppOptions,
    live: Arc<LiveApp>,
    debounce: Duration,
    plan: Plan,
}

impl Watcher {
    fn new(options: AppOptions, live: Arc<LiveApp>, debounce: Duration, plan: Plan) -> Self {
        Self {
            options,
            live,
            debounce,
            plan,
        }
    }

    fn run(mut self) {
        let mut state = WatchState {
            last: Snapshot::take(&self.plan),
            unbuilt: BTreeSet::new(),
            stale: false,
        };
        loop {
            let now = self.next_change(&state.last);
            let Some(now) = self.follow_manifest(now, &mut state) else {
                continue;
            };
            self.act_on(now, &mut state);
        }
    }

    /// The files once they changed and then held still for the debounce.
    fn next_change(&self, last: &Snapshot) -> Snapshot {
        let mut now = loop {
            std::thread::sleep(POLL);
            let now = Snapshot::take(&self.plan);
            if now != *last || !self.plan.is_current(&now) {
                break now;
            }
        };
        loop {
            std::thread::sleep(self.debounce);
            let again = Snapshot::take(&self.plan);
            if again == now {
                return now;
            }
            now = again;
        }
    }

    /// A changed manifest may name other components, commands and globs: the plan is read
    /// again, and the files with it. `None` if the manifest does not load (said, and the
    /// previous version keeps serving).
    fn follow_manifest(&mut self, now: Snapshot, state: &mut WatchState) -> Option<Snapshot> {
        if self.plan.is_current(&now) {
            return Some(now);
        }
        match Plan::read(
            &self.options.manifest,
            self.options.runtime_config.as_deref(),
        ) {
            Ok(plan) => {
                self.plan = plan;
                Some(Snapshot::take(&self.plan))
            }
            Err(err) => {
                eprintln!(
                    "The manifest does not load: {err:#}; still serving the previous version"
                );
                self.plan.manifest_stamp =
                    now.artifacts.get(&self.plan.manifest).copied().flatten();
                state.last = now;
                state.stale = true;
                None
            }
        }
    }

    /// Rebuilds the components whose sources changed (and those still owed), then reloads
    /// if anything the app is loaded from is newer than the app serving.
    fn act_on(&self, now: Snapshot, state: &mut WatchState) {
        state.stale |= now.artifacts != state.last.artifacts;
        state.unbuilt.extend(
            now.changed_sources(&state.last, &self.plan)
                .into_iter()
                .map(str::to_owned),
        );
        let to_build: Vec<String> = self
            .plan
            .sources
            .iter()
            .map(|(id, _)| id)
            .filter(|id| state.unbuilt.contains(*id))
            .cloned()
            .collect();
        state.unbuilt.retain(|id| to_build.contains(id));
        state.stale |= !to_build.is_empty();
        self.build(&to_build, &mut state.unbuilt);
        // Artifacts as the builds left them: their own output is not a change to act on
        // again, the reload below (or a later one) loads it.
        let built = Snapshot::take(&self.plan);
        // A failed build (still owed) keeps the previous version serving: it said so.
        if state.stale && state.unbuilt.is_empty() {
            state.stale = !self.reload(&to_build);
        }
        // Sources as they were before the builds: a save during one is seen next time.
        state.last = Snapshot {
            sources: now.sources,
            artifacts: built.artifacts,
        };
    }

    /// Runs the build commands of `ids` in order, removing each that succeeds from
    /// `unbuilt`; stops at the first that fails (its errors are on stderr).
    fn build(&self, ids: &[String], unbuilt: &mut BTreeSet<String>) {
        for id in ids {
            let Some(build) = self
                .plan
                .loaded
                .manifest
                .component
                .get(id)
                .and_then(|c| c.build.as_ref())
            else {
                unbuilt.remove(id);
                continue;
            };
            eprintln!("Rebuilding component {id} with `{}`", build.command);
            let started = Instant::now();
            // The command's output goes to stderr: stdout carries the access log.
            let stdout = stderr_stdio();
            match builder::build_component(&self.plan.loaded, id, build, stdout) {
                Ok(()) => {
                    eprintln!("Rebuilt {id} in {:.1?}", started.elapsed());
                    unbuilt.remove(id);
                }
                Err(err) => {
                    eprintln!("{err:#}: still serving the previous version");
                    return;
                }
            }
        }
    }

    /// Builds the app anew from the files and swaps it in; false if it does not load.
    fn reload(&self, rebuilt: &[String]) -> bool {
        let started = Instant::now();
        match self.live.get().reload(&self.options) {
            Ok(app) => {
                self.live.replace(app);
                let what = if rebuilt.is_empty() {
                    String::new()
                } else {
                    format!(" (rebuilt: {})", rebuilt.join(", "))
                };
                eprintln!("Reloaded the app in {:.0?}{what}", started.elapsed());
                crate::metrics::get().reload(true);
                true
            }
            Err(err) => {
                eprintln!("The app does not load: {err:#}; still serving the previous version");
                crate::metrics::get().reload(false);
                false
            }
        }
    }
}

/// The host's stderr, for a child's stdout.
fn stderr_stdio() -> Stdio {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            return Stdio::from(fd);
        }
    }
    Stdio::inherit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"spin_manifest_version = 2
[application]
name = "two"
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "a.wasm"
[component.a.build]
command = "true"
watch = ["src/**/*.rs", "common.txt"]
[component.b]
source = "b.wasm"
[component.b.build]
command = "true"
workdir = "b"
watch = ["src/*.rs", "../common.txt"]
"#;

    #[test]
    fn only_the_components_whose_files_changed_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["src/x/a.rs", "b/src/b.rs", "common.txt"] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), "1").unwrap();
        }
        std::fs::write(root.join("spin.toml"), TWO).unwrap();
        let plan = Plan::read(&root.join("spin.toml"), None).unwrap();
        let before = Snapshot::take(&plan);
        assert_eq!(before.sources["a"].len(), 2);
        assert_eq!(
            before.sources["b"].len(),
            2,
            "globs are relative to `workdir`"
        );

        std::fs::write(root.join("src/x/a.rs"), "22").unwrap();
        assert_eq!(Snapshot::take(&plan).changed_sources(&before, &plan), ["a"]);
        std::fs::write(root.join("common.txt"), "22").unwrap();
        assert_eq!(
            Snapshot::take(&plan).changed_sources(&before, &plan),
            ["a", "b"]
        );
        // A new file matching a glob is a change; the wasm files are artifacts, not sources.
        let before = Snapshot::take(&plan);
        std::fs::write(root.join("b/src/new.rs"), "1").unwrap();
        std::fs::write(root.join("a.wasm"), "wasm").unwrap();
        let now = Snapshot::take(&plan);
        assert_eq!(now.changed_sources(&before, &plan), ["b"]);
        assert_ne!(now.artifacts, before.artifacts);
    }
}
