//! Body validation: the domain's parsers, every broken field reported at once; what they
//! accept becomes the interface's record by the conversions of `guard_records!`.

use inventory_domain::reservation::{Extension, NewReservation, PartialCommit};
use inventory_domain::stock::{BatchDeduct, Deduct, Restock};
use inventory_domain::{FieldError, NewProduct, ProductPatch};
use serde_json::{Map, Value};

use crate::exports::inventory::guard::validation as wit;
use wit::{FieldError as WitFieldError, ValidationError};

inventory_domain::guard_records!(wit);

/// A domain type's parser: every broken field at once.
type Parse<T> = fn(&Map<String, Value>) -> Result<T, Vec<FieldError>>;

/// Parses `body` as a JSON object into `T`, then into its record `R`.
pub fn validate<T, R: From<T>>(body: &[u8], parse: Parse<T>) -> Result<R, ValidationError> {
    parse(&object(body)?).map(R::from).map_err(fields)
}

pub fn new_product(body: &[u8]) -> Result<wit::NewProduct, ValidationError> {
    validate(body, NewProduct::parse)
}

pub fn product_patch(body: &[u8]) -> Result<wit::ProductPatch, ValidationError> {
    validate(body, ProductPatch::parse)
}

pub fn deduct(body: &[u8]) -> Result<wit::Deduct, ValidationError> {
    validate(body, Deduct::parse)
}

pub fn restock(body: &[u8]) -> Result<wit::Restock, ValidationError> {
    validate(body, Restock::parse)
}

pub fn batch_deduct(body: &[u8]) -> Result<wit::BatchDeduct, ValidationError> {
    validate(body, BatchDeduct::parse)
}

pub fn new_reservation(body: &[u8]) -> Result<wit::NewReservation, ValidationError> {
    validate(body, NewReservation::parse)
}

pub fn partial_commit(body: &[u8]) -> Result<wit::PartialCommit, ValidationError> {
    validate(body, PartialCommit::parse)
}

pub fn extension(body: &[u8]) -> Result<wit::Extension, ValidationError> {
    validate(body, Extension::parse)
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ValidationError::Malformed(
            "the request body must be a JSON object".into(),
        )),
        Err(err) => Err(ValidationError::Malformed(format!(
            "the request body is not valid JSON: {err}"
        ))),
    }
}

fn fields(errors: Vec<FieldError>) -> ValidationError {
    ValidationError::Fields(
        errors
            .into_iter()
            .map(|e| WitFieldError {
                field: e.field,
                message: e.message,
            })
            .collect(),
    )
}
