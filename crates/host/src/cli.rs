//! The command line, in one place: `build`, `up` and `watch`, mirroring the spin CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};

use crate::reuse::Range;

#[derive(Parser)]
#[command(version, about = "Run a Spin app from its spin.toml on Wasmtime")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build every component with its `[component.<id>.build] command`, like `spin build`.
    Build(BuildArgs),
    /// Serve the app over HTTP, like `spin up`.
    Up(UpArgs),
    /// Build, serve, and on every change rebuild what changed and swap it in without
    /// closing the listener, like `spin watch` (`up --build --watch`).
    Watch(UpArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
}

#[derive(clap::Args)]
pub struct UpArgs {
    /// The manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Build the components before serving.
    #[arg(long)]
    pub build: bool,
    /// Rebuild a component when its `build.watch` files change, and reload the app when
    /// the manifest or a wasm file changes, without closing the listener.
    #[arg(long)]
    pub watch: bool,
    /// With `--watch`: how long files must hold still before a rebuild, in milliseconds.
    #[arg(short = 'd', long = "debounce", default_value_t = 100)]
    pub debounce_ms: u64,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Serve the host's Prometheus metrics at `http://ADDR/metrics` (off unless given; port 0
    /// picks a free port). Expose it to the scraper only.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// A SQL statement, or `@FILE` of statements, to run on the default database before serving.
    #[arg(long = "sqlite", value_name = "@FILE|STATEMENT")]
    pub sqlite: Vec<String>,
    /// Where each store label lives (`[sqlite_database.<label>]`, `[key_value_store.<label>]`).
    #[arg(long = "runtime-config-file", value_name = "FILE")]
    pub runtime_config: Option<PathBuf>,
    /// Set an application variable, overriding `SPIN_VARIABLE_<NAME>` and the default.
    #[arg(long = "variable", value_name = "KEY=VALUE", value_parser = parse_variable)]
    pub variables: Vec<(String, String)>,
    /// The directory for the app's state (default: `.spin` beside the manifest).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where each component's stdout and stderr are appended, as `<id>_stdout.txt` and
    /// `<id>_stderr.txt` (default: the runtime config's `log_dir`, else `logs` in the state
    /// directory; `""`: no files).
    #[arg(
        short = 'L',
        long = "log-dir",
        value_name = "DIR",
        env = "SPIN_LOG_DIR"
    )]
    pub log_dir: Option<PathBuf>,
    /// Copy only these components' output to stderr (repeat for several; default: all).
    #[arg(long = "follow", value_name = "ID", conflicts_with = "quiet")]
    pub follow: Vec<String>,
    /// Copy no component's output to stderr (the log files still get it).
    #[arg(short = 'q', long = "quiet", visible_aliases = ["sh", "shush"])]
    pub quiet: bool,
    /// Where compiled components are cached across restarts (default: Wasmtime's user cache).
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Requests that may run at once; further requests wait for a free slot. (A WASI 0.2
    /// component takes an instance per request; a WASI 0.3 one serves several on one.)
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_instances: u32,
    /// How long one request may run: an integer suffixed by `s`, `ms`, `us` or `ns` (bare:
    /// seconds), or a range (`10s..30s`) sampled per instance. A request past it is stopped,
    /// on a reused instance too.
    #[arg(long = "request-timeout", default_value = "30", value_parser = crate::reuse::parse_duration_range)]
    pub request_timeout: Range<Duration>,
    /// The most requests one instance of a WASI 0.3 component serves before it is dropped:
    /// a count, or a range (`1..8`) sampled per instance.
    #[arg(long = "max-instance-reuse-count", default_value = "128", value_parser = crate::reuse::parse_count_range)]
    pub max_instance_reuse_count: Range<usize>,
    /// The most requests one instance of a WASI 0.3 component serves at once: a count, or
    /// a range sampled per instance.
    #[arg(long = "max-instance-concurrent-reuse-count", default_value = "16", value_parser = crate::reuse::parse_count_range)]
    pub max_instance_concurrent_reuse_count: Range<usize>,
    /// How long an instance of a WASI 0.3 component waits for another request before it
    /// is dropped: a duration as for --request-timeout, or a range.
    #[arg(long = "idle-instance-timeout", default_value = "1s", value_parser = crate::reuse::parse_duration_range)]
    pub idle_instance_timeout: Range<Duration>,
    /// An instance of a WASI 0.3 component whose linear memory has grown past this takes
    /// no more requests, in MiB (default: half of --max-memory-mib).
    #[arg(long = "instance-memory-retire-mib", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub instance_memory_retire_mib: Option<u64>,
    /// How long a request may wait for a free instance before it is answered 503, in seconds.
    #[arg(long = "queue-timeout", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub queue_timeout_secs: u64,
    /// Connections open at once; more wait in the listen backlog (default: 3/4 of the
    /// process's file-descriptor limit).
    #[arg(long = "max-connections", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// How long a client may take to send a request's head, and how long an idle
    /// keep-alive connection stays open, in seconds.
    #[arg(long = "header-timeout", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// For profiling: `perfmap` writes `/tmp/perf-<pid>.map`, so `perf report` names the
    /// compiled wasm functions.
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// The most linear memory one instance may use, in MiB.
    #[arg(long = "max-memory-mib", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_memory_mib: u64,
}

impl UpArgs {
    /// Whose output is copied to stderr.
    pub fn follow(&self) -> crate::component_logs::Follow {
        use crate::component_logs::Follow;
        match (self.quiet, self.follow.is_empty()) {
            (true, _) => Follow::None,
            (false, true) => Follow::All,
            (false, false) => Follow::Named(self.follow.clone()),
        }
    }
}

fn parse_variable(text: &str) -> Result<(String, String)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("expected KEY=VALUE, found `{text}`"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// `-f` names the manifest, or a directory holding `spin.toml`.
fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("spin.toml")
    } else {
        path.to_path_buf()
    }
}

impl BuildArgs {
    pub fn manifest(&self) -> PathBuf {
        manifest_path(&self.manifest)
    }
}

impl UpArgs {
    pub fn manifest(&self) -> PathBuf {
        manifest_path(&self.manifest)
    }
}

/// What `--profile` writes for a profiler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// `/tmp/perf-<pid>.map`, for Linux `perf`.
    Perfmap,
}
