//! `inventory-host`: runs a Spin app from its `spin.toml` on Wasmtime, where the spin CLI is
//! not installed. Its commands mirror `spin build` and `spin up`.

mod app;
mod bindings;
mod builder;
mod deps;
mod kv;
mod manifest;
mod outbound;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod state;
mod token;
mod variables;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};

use crate::app::{App, AppOptions};
use crate::manifest::LoadedManifest;
use crate::server::ServeOptions;

#[derive(Parser)]
#[command(version, about = "Run a Spin app from its spin.toml on Wasmtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every component with its `[component.<id>.build] command`, like `spin build`.
    Build {
        /// The manifest, or a directory holding `spin.toml`.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
    },
    /// Serve the app over HTTP, like `spin up`.
    Up(UpArgs),
    /// Print an access token the app accepts, signed with its JWT variables (for local use).
    Token(token::TokenArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Build the components before serving.
    #[arg(long)]
    build: bool,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// A SQL statement, or `@FILE` of statements, to run on the default database before serving.
    #[arg(long = "sqlite", value_name = "@FILE|STATEMENT")]
    sqlite: Vec<String>,
    /// Where each store label lives (`[sqlite_database.<label>]`, `[key_value_store.<label>]`).
    #[arg(long = "runtime-config-file", value_name = "FILE")]
    runtime_config: Option<PathBuf>,
    /// Set an application variable, overriding `SPIN_VARIABLE_<NAME>` and the default.
    #[arg(long = "variable", value_name = "KEY=VALUE", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// The directory for the app's state (default: `.spin` beside the manifest).
    #[arg(long = "state-dir", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Instances that may run at once; further requests wait for a free one.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_instances: u32,
    /// How long one request may run, in seconds.
    #[arg(long = "request-timeout", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// The most linear memory one instance may use, in MiB.
    #[arg(long = "max-memory-mib", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_memory_mib: u64,
}

fn parse_variable(text: &str) -> Result<(String, String)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("expected KEY=VALUE, found `{text}`"))?;
    Ok((key.to_owned(), value.to_owned()))
}

fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("spin.toml")
    } else {
        path.to_path_buf()
    }
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build { manifest } => {
            builder::build_all(&LoadedManifest::load(&manifest_path(&manifest))?)
        }
        Command::Up(args) => up(args),
        Command::Token(args) => {
            let loaded = LoadedManifest::load(&manifest_path(&args.manifest))?;
            let variables = crate::variables::AppVariables::resolve(
                &loaded.manifest.variables,
                &args.variables,
                |name| std::env::var(name).ok(),
            )?;
            println!("{}", token::sign(&args, &variables)?);
            Ok(())
        }
    }
}

fn up(args: UpArgs) -> Result<()> {
    let manifest = manifest_path(&args.manifest);
    if args.build {
        builder::build_all(&LoadedManifest::load(&manifest)?)?;
    }
    let options = AppOptions {
        manifest,
        state_dir: args.state_dir,
        runtime_config: args.runtime_config,
        sqlite_statements: args.sqlite,
        variables: args.variables,
        max_instances: args.max_instances,
        max_memory_bytes: usize::try_from(args.max_memory_mib * 1024 * 1024)?,
    };
    let app = App::load(&options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        print_routes(&app, addr);
        let serve = ServeOptions {
            max_instances: args.max_instances,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
        };
        server::serve(app, listener, serve, shutdown_signal()).await
    })
}

fn print_routes(app: &App, addr: SocketAddr) {
    use std::io::Write;
    let mut out = String::new();
    out.push_str(&format!("Serving http://{addr}\nAvailable Routes:\n"));
    for route in app.router.routes() {
        let Some(component) = app.components.get(route.component) else {
            continue;
        };
        let wildcard = if route.raw().ends_with("...") {
            " (wildcard)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {}: http://{addr}{}{wildcard}\n",
            component.id,
            route.without_wildcard()
        ));
    }
    let mut stdout = std::io::stdout().lock();
    // Tests and scripts wait for these lines: flush them now.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
