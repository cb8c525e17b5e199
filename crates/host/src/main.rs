//! `inventory-host`: runs a Spin app from its `spin.toml` on Wasmtime, where the spin CLI is
//! not installed. Its commands mirror `spin build`, `spin up` and `spin watch`.
//!
//! The modules follow Spin's own split: `manifest` (every declaration), `app` (loading),
//! `link` (component dependencies), one module per host interface (`sqlite`, `key_value`,
//! `variables`, `outbound`), `state` (the per-request store), `server` (the HTTP trigger).

mod app;
mod bindings;
mod builder;
mod cli;
mod connections;
mod engine;
mod key_value;
mod link;
mod manifest;
mod outbound;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod state;
mod token;
mod up;
mod variables;
mod watch;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::manifest::LoadedManifest;

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
        Command::Token(args) => {
            println!("{}", token::sign(&args)?);
            Ok(())
        }
    }
}
