//! End-to-end tests: the real host binary running the real wasm components from the
//! repository's `spin.toml`, a fresh SQLite state directory per app, real HTTP on loopback.

// Test code: a failed expectation is meant to panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod app;
mod common;
mod conformance;
mod contract;
mod deploy;
mod events;
mod guard;
mod hardening;
mod host;
mod locations;
mod metrics;
mod migrations;
mod openapi;
mod openapi_lint;
mod order_service;
mod products;
mod python;
mod receiver;
mod redis_server;
mod replicas;
mod reservations;
mod reuse;
mod statements;
mod stock;
mod watch;
