//! The guard: the shared component library every HTTP component imports (`wit/guard.wit`).
//!
//! It verifies bearer tokens, validates request bodies and counts requests against the rate
//! limit. It reads its configuration from the importing component's variables and counts in
//! its key-value store, which it inherits through `dependencies_inherit_configuration`.

// `export!` expands to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

// spin-sdk 5 (WASI 0.2) in both builds of the app: a library component composed into each
// HTTP component, WASI 0.2 or 0.3 alike.
extern crate spin_sdk_wasip2 as spin_sdk;

mod auth;
mod config;
mod limit;
mod validation;

wit_bindgen::generate!({
    path: "../../wit",
    world: "inventory:guard/guard",
});

use exports::inventory::guard::auth::{AuthError, Principal};
use exports::inventory::guard::rate_limit::{Decision, RateLimitError};
struct Guard;

impl exports::inventory::guard::auth::Guest for Guard {
    fn verify(token: String) -> Result<Principal, AuthError> {
        auth::verify(&token)
    }
}

// `impl validation::Guest for Guard`: `validation.rs`, from the list of request bodies.

impl exports::inventory::guard::rate_limit::Guest for Guard {
    fn check(client: String) -> Result<Decision, RateLimitError> {
        limit::check(&client)
    }
}

export!(Guard);
