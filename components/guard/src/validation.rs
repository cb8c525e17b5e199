//! Body validation: the domain's parsers, every broken field reported at once; what they
//! accept becomes the interface's record by the conversions of `guard_records!`.

use inventory_domain::FieldError;
use serde_json::{Map, Value};

use crate::exports::inventory::guard::validation as wit;
use wit::{FieldError as WitFieldError, ValidationError};

inventory_domain::guard_records!(wit);

/// A domain type's parser: every broken field at once.
type Parse<T> = fn(&Map<String, Value>) -> Result<T, Vec<FieldError>>;

/// Parses `body` as a JSON object into `T`, then into its record `R`.
fn validate<T, R: From<T>>(body: &[u8], parse: Parse<T>) -> Result<R, ValidationError> {
    parse(&object(body)?).map(R::from).map_err(fields)
}

/// The interface's functions, one per body of `request_bodies!`.
macro_rules! validators {
    ($($(#[$doc:meta])* $name:ident, $function:ident, $record:ident, $domain:ty;)*) => {
        impl wit::Guest for crate::Guard {
            $(
                $(#[$doc])*
                fn $function(body: Vec<u8>) -> Result<wit::$record, ValidationError> {
                    validate(&body, <$domain>::parse)
                }
            )*
        }
    };
}

inventory_domain::request_bodies!(validators);

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
