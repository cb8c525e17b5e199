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
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each top-level module and the top-level modules it names (`crate::<module>`).
    fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let mut files: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
        for entry in std::fs::read_dir(src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut stack = vec![path];
                while let Some(dir) = stack.pop() {
                    for entry in std::fs::read_dir(dir).unwrap() {
                        let path = entry.unwrap().path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if path.extension().is_some_and(|e| e == "rs") {
                            files.entry(name.clone()).or_default().push(path);
                        }
                    }
                }
            } else if path.extension().is_some_and(|e| e == "rs") && name != "main" {
                files.entry(name).or_default().push(path);
            }
        }
        let modules: BTreeSet<String> = files.keys().cloned().collect();
        files
            .iter()
            .map(|(module, paths)| {
                let mut uses = BTreeSet::new();
                for path in paths {
                    let text = std::fs::read_to_string(path).unwrap();
                    for (index, _) in text.match_indices("crate::") {
                        let rest = &text[index + "crate::".len()..];
                        let named: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        let names: Vec<String> = if named.is_empty() && rest.starts_with('{') {
                            // `use crate::{a, b::c}`
                            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                            group
                                .split(',')
                                .map(|part| part.trim().split("::").next().unwrap().to_owned())
                                .collect()
                        } else {
                            vec![named]
                        };
                        uses.extend(
                            names
                                .into_iter()
                                .filter(|n| modules.contains(n) && n != module),
                        );
                    }
                }
                (module.clone(), uses)
            })
            .collect()
    }

    /// A cycle through `from`, if it is on one: the modules in import order.
    fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
        let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
        let mut seen = BTreeSet::new();
        while let Some((module, path)) = stack.pop() {
            for next in graph.get(&module).into_iter().flatten() {
                if next == from {
                    return Some([path.clone(), vec![next.clone()]].concat());
                }
                if seen.insert(next.clone()) {
                    stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
                }
            }
        }
        None
    }

    /// The modules form layers: no module imports one that imports it back, directly or
    /// through others. (`cargo test -p inventory-host no_module_imports`)
    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(graph.len() > 10, "{graph:?}");
        assert!(graph["trigger"].contains("factors"), "{graph:?}");
        let cycles: Vec<String> = graph
            .keys()
            .filter_map(|module| cycle_from(&graph, module))
            .map(|cycle| cycle.join(" -> "))
            .collect();
        assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
    }
}
