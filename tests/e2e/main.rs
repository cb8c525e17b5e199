//! End-to-end tests: the real host binary running the real wasm components from the
//! repository's `spin.toml`, a fresh SQLite state directory per app, real HTTP on loopback.

mod app;
mod common;
mod host;
mod products;
