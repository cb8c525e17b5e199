//! The inventory service's shared library, linked into every HTTP component. Three layers,
//! each depending only on the ones below it:
//!
//! - [`edge`]: the one seam with the Spin SDK (spin-sdk 7 or 5, by feature): the entry point,
//!   bodies, outbound requests, timers, randomness;
//! - [`web`]: the request pipeline (context, routing, the guard's stages, problem+json, the
//!   access log, paging, idempotent writes); what a component's routes are written against;
//! - [`store`]: the database (Spin SQLite), its migrations and one module per table group
//!   (products, stock changes, the ledger, idempotency records);
//! - [`domain`]: the request types, valid by construction (the `inventory-domain` crate,
//!   shared with the guard component).
//!
//! Where things go:
//!
//! - a new route: a line of the component's `ROUTES` and its handler, in `routes.rs`;
//! - a new product field: the domain crate (`product.rs`: its type, its rules, its line in
//!   `product_records!`), its member of the records in `wit/guard.wit`, a migration file in
//!   `migrations/`, `store/products.rs`, and `api/openapi.json`;
//! - a new event type: a variant of `store::events::EventType`, its `data`, and the store
//!   function of the change that writes it.

// spin-sdk 5 under the name spin-sdk 7 has in the default build (`edge`).
#[cfg(feature = "wasip2")]
extern crate spin_sdk_wasip2 as spin_sdk;

pub use inventory_domain as domain;
pub mod edge;
pub mod ids;
pub mod store;
pub mod time;
pub mod web;

pub use web::http::{Req, Resp};
pub use web::problem::{ApiError, FieldError};
pub use web::routing::{Access, Call, Handler, Route};

/// An instance may serve many requests, several at once (WASI 0.3 hosts reuse instances):
/// nothing of one request may outlive it in a global. The app and the guard keep request
/// state in values a request owns (`web::Context`, `store::Db`); a global, if one is ever
/// needed, must be a cache keyed by its inputs and say so where this test allows it.
#[cfg(test)]
mod reuse_safety {
    use std::path::{Path, PathBuf};

    /// What may hold state across requests of one instance.
    const GLOBALS: [&str; 8] = [
        "static mut",
        "thread_local!",
        "OnceLock",
        "LazyLock",
        "lazy_static",
        "once_cell",
        "static ref",
        "AtomicU",
    ];

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_request_state_lives_in_a_global() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for dir in [
            "crates/inventory/src",
            "crates/domain/src",
            "crates/jwt/src",
            "components",
        ] {
            sources(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "{} source files", files.len());
        let mut found = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            // This file names them.
            if text.contains("mod reuse_safety") {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let atomic_static =
                    code.trim_start().starts_with("static ") && code.contains("Atomic");
                if GLOBALS.iter().any(|g| code.contains(g)) || atomic_static {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "state that outlives a request:\n{}",
            found.join("\n")
        );
    }
}
