//! The HTTP components' side of the guard (`wit/guard.wit`): its imports, and the one place
//! its answers become pipeline and domain types. The guard itself is a separate component,
//! composed in by Spin (or this project's host) from `[component.<id>.dependencies]`.
//!
//! A request body is parsed once, by the guard, with the domain's rules; its typed record
//! becomes the domain value by the conversions of `inventory_domain::guard_records!`, the
//! same the guard made it with, and is not checked again.

use crate::web::problem::{ApiError, FieldError};

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "inventory:guard/guarded",
    });
}

pub use bindings::inventory::guard::auth::{AuthError, Principal};
pub use bindings::inventory::guard::rate_limit::Decision;
use bindings::inventory::guard::rate_limit::RateLimitError;
use bindings::inventory::guard::validation::{self, ValidationError};

inventory_domain::guard_records!(validation);
use bindings::inventory::guard::{auth, rate_limit};

/// Verifies a bearer token. A refused token is 401 (its reason goes to the log only); a
/// broken key configuration is the service's fault, 500.
pub fn verify(token: &str) -> Result<Principal, ApiError> {
    auth::verify(token).map_err(|err| match err {
        AuthError::Misconfigured(cause) => {
            ApiError::Internal(format!("the JWT configuration is unusable: {cause}"))
        }
        refused => ApiError::Unauthorized(format!("token refused: {}", reason(&refused))),
    })
}

/// Why a token was refused, for the log: the kind only, never text that could quote a claim.
fn reason(err: &AuthError) -> String {
    match err {
        AuthError::TooLarge => "too large".into(),
        AuthError::Malformed(_) => "malformed".into(),
        AuthError::BadSignature(_) => "bad signature or algorithm".into(),
        AuthError::Expired => "expired".into(),
        AuthError::NotYetValid => "not yet valid".into(),
        AuthError::MissingClaim(claim) => format!("missing claim {claim}"),
        AuthError::WrongIssuer => "wrong issuer".into(),
        AuthError::WrongAudience => "wrong audience".into(),
        AuthError::WrongType(_) => "not an access token (typ)".into(),
        AuthError::Misconfigured(_) => "misconfigured".into(),
    }
}

/// Counts one request for `client`. A store that does not answer refuses the request.
pub fn check_rate(client: &str) -> Result<Decision, ApiError> {
    rate_limit::check(client).map_err(|err| match err {
        RateLimitError::Store(cause) => {
            ApiError::Unavailable(format!("rate-limit counters: {cause}"))
        }
        RateLimitError::Misconfigured(cause) => {
            ApiError::Internal(format!("the rate limit configuration is unusable: {cause}"))
        }
    })
}

/// The guard's validation of each request body of `request_bodies!`: the body as its domain
/// type, or the request's 400/422.
macro_rules! body_checks {
    ($($(#[$doc:meta])* $name:ident, $function:ident, $record:ident, $domain:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(body: &[u8]) -> Result<$domain, ApiError> {
                validated(validation::$function(body))
            }
        )*
    };
}

inventory_domain::request_bodies!(body_checks);

/// The guard's answer: its record as the domain type, or the request's 400/422.
fn validated<R, T: From<R>>(answer: Result<R, ValidationError>) -> Result<T, ApiError> {
    answer.map(T::from).map_err(rejected)
}

fn rejected(err: ValidationError) -> ApiError {
    match err {
        ValidationError::Malformed(detail) => ApiError::InvalidRequest(detail),
        ValidationError::Fields(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError::new(e.field, e.message))
                .collect(),
        ),
    }
}
