//! `inventory-host`: runs a Spin app from its `spin.toml` on Wasmtime, where the spin CLI is
//! not installed. Its commands mirror `spin build`, `spin up` and `spin watch`.
//!
//! The modules follow Spin's own split: `manifest` (every declaration) and `expressions`
//! (its variables and templates), `runtime_config`, `app` (loading) with `compile` and `link`
//! (component dependencies), one module per host interface (`wasi`, `outbound_http`,
//! `sqlite`, `key_value`, `variables`: each a Spin factor, `factor.rs`) put together in
//! `factors`, and the HTTP trigger (`trigger`, routes in `routes`) behind the server
//! (`server`, `connections`).

mod app;
mod blocking;
mod builder;
mod cli;
mod compile;
mod component_logs;
mod connections;
mod engine;
mod expressions;
mod factor;
mod factors;
mod key_value;
mod labels;
mod link;
mod manifest;
mod metrics;
mod outbound_http;
mod reuse;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod toolchain;
mod trigger;
mod up;
mod variables;
mod wasi;
mod watch;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::manifest::LoadedManifest;

/// mimalloc rather than glibc's malloc: every request makes and drops a store, its instance
/// state and its HTTP types on whichever worker runs it; measured on the guarded read
/// (`bench/side-by-side.sh`), the host spends a fifth less CPU per request with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(args) => builder::build_all(&LoadedManifest::load(&args.manifest())?),
        Command::Up(args) => up::run(&args),
        Command::Watch(mut args) => {
            args.build = true;
            args.watch = true;
            up::run(&args)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The modules form layers: no module imports one that imports it back, directly or
    /// through others. (`cargo test -p inventory-host no_module_imports`)
    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let graph = module_graph::graph(&src, &["crate::"], &["main"]);
        assert!(graph.len() > 10, "{graph:?}");
        assert!(graph["trigger"].contains("factors"), "{graph:?}");
        let cycles = module_graph::cycles(&graph);
        assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
    }
}
