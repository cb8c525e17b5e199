//! `up` (and `watch`): load the app, bind, print the routes, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::app::{App, AppOptions, LiveApp};
use crate::cli::UpArgs;
use crate::manifest::LoadedManifest;
use crate::metrics;
use crate::reuse::ReuseOptions;
use crate::server::{self, ServeOptions};
use crate::trigger::TriggerOptions;
use crate::watch;

pub fn run(args: &UpArgs) -> Result<()> {
    let manifest = args.manifest();
    if args.build {
        crate::builder::build_all(&LoadedManifest::load(&manifest)?)?;
    }
    let options = AppOptions {
        manifest,
        state_dir: args.state_dir.clone(),
        runtime_config: args.runtime_config.clone(),
        sqlite_statements: args.sqlite.clone(),
        variables: args.variables.clone(),
        max_instances: args.max_instances,
        max_memory_bytes: usize::try_from(args.max_memory_mib * 1024 * 1024)?,
        cache_dir: args.cache_dir.clone(),
        perfmap: args.profile == Some(crate::cli::Profile::Perfmap),
        log_dir: args.log_dir.clone(),
        follow: args.follow(),
    };
    // Every check of the manifest and the runtime config happens here, before the listener
    // exists; a Redis server is first reached by the first request that uses it, as on Spin.
    let app = App::load(&options)?;
    let live = Arc::new(LiveApp::new(app));
    if args.watch {
        watch::spawn(
            options.clone(),
            Arc::clone(&live),
            Duration::from_millis(args.debounce_ms),
        )?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listen = args.listen;
    let serve = ServeOptions {
        trigger: TriggerOptions {
            max_instances: args.max_instances,
            reuse: Arc::new(ReuseOptions {
                max_reuse: args.max_instance_reuse_count,
                max_concurrent: args.max_instance_concurrent_reuse_count,
                request_timeout: args.request_timeout,
                idle_timeout: args.idle_instance_timeout,
                retire_memory_bytes: usize::try_from(
                    args.instance_memory_retire_mib
                        .unwrap_or(args.max_memory_mib / 2)
                        .max(1)
                        * 1024
                        * 1024,
                )?,
            }),
            queue_timeout: Duration::from_secs(args.queue_timeout_secs),
        },
        max_connections: args
            .max_connections
            .map_or_else(server::default_max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
        header_timeout: Duration::from_secs(args.header_timeout_secs),
    };
    let metrics_listen = args.metrics_listen;
    runtime.block_on(async move {
        if let Some(addr) = metrics_listen {
            let listener = metrics::bind(addr).await?;
            println!(
                "Serving metrics on http://{}/metrics",
                listener.local_addr()?
            );
            tokio::spawn(metrics::serve(listener));
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        print_routes(&live.get(), addr);
        let served = server::serve(live, listener, serve, shutdown_signal()).await;
        crate::component_logs::flush();
        served
    })
}

/// The routes, as `spin up` prints them.
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
        if let Some(description) = &component.description {
            out.push_str(&format!("    {description}\n"));
        }
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
