//! The guard: the shared component library every HTTP component imports (`wit/guard.wit`).
//!
//! It verifies bearer tokens, validates request bodies and counts requests against the rate
//! limit. It reads its configuration from the importing component's variables and counts in
//! its key-value store, which it inherits through `dependencies_inherit_configuration`.

// `export!` expands to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

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
use exports::inventory::guard::validation::{
    BatchDeduct, Deduct, Extension, NewProduct, NewReservation, PartialCommit, ProductPatch,
    Restock, ValidationError,
};

struct Guard;

impl exports::inventory::guard::auth::Guest for Guard {
    fn verify(token: String) -> Result<Principal, AuthError> {
        auth::verify(&token)
    }
}

impl exports::inventory::guard::validation::Guest for Guard {
    fn validate_new_product(body: Vec<u8>) -> Result<NewProduct, ValidationError> {
        validation::new_product(&body)
    }

    fn validate_product_patch(body: Vec<u8>) -> Result<ProductPatch, ValidationError> {
        validation::product_patch(&body)
    }

    fn validate_deduct(body: Vec<u8>) -> Result<Deduct, ValidationError> {
        validation::deduct(&body)
    }

    fn validate_restock(body: Vec<u8>) -> Result<Restock, ValidationError> {
        validation::restock(&body)
    }

    fn validate_batch_deduct(body: Vec<u8>) -> Result<BatchDeduct, ValidationError> {
        validation::batch_deduct(&body)
    }

    fn validate_new_reservation(body: Vec<u8>) -> Result<NewReservation, ValidationError> {
        validation::new_reservation(&body)
    }

    fn validate_partial_commit(body: Vec<u8>) -> Result<PartialCommit, ValidationError> {
        validation::partial_commit(&body)
    }

    fn validate_extension(body: Vec<u8>) -> Result<Extension, ValidationError> {
        validation::extension(&body)
    }
}

impl exports::inventory::guard::rate_limit::Guest for Guard {
    fn check(client: String) -> Result<Decision, RateLimitError> {
        limit::check(&client)
    }
}

export!(Guard);
