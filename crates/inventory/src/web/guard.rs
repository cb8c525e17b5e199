//! The HTTP components' side of the guard (`wit/guard.wit`): its imports, and the mapping of
//! its answers to pipeline types. The guard itself is a separate component, composed in by
//! the host (`[component.<id>.dependencies]`).

use serde_json::{Map, Value};

use crate::domain::stock::{BatchDeduct, Deduct, Restock};
use crate::domain::{NewProduct, Price, ProductPatch};
use crate::problem::{ApiError, FieldError};

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

/// `POST /product`: the body checked by the guard, then typed by the domain.
pub fn new_product(body: &[u8]) -> Result<NewProduct, ApiError> {
    let p = validation::validate_new_product(body).map_err(rejected)?;
    let mut fields = Map::new();
    fields.insert("name".into(), p.name.into());
    fields.insert("description".into(), p.description.into());
    fields.insert(
        "price".into(),
        Price::from_cents(p.price_cents).to_json().into(),
    );
    fields.insert("stock".into(), p.stock.into());
    fields.insert("category_id".into(), p.category_id.into());
    fields.insert("sku".into(), p.sku.into());
    NewProduct::parse(&fields).map_err(disagreement)
}

/// `PUT`/`PATCH /product/{id}`: the fields present, checked by the guard.
pub fn product_patch(body: &[u8]) -> Result<ProductPatch, ApiError> {
    let p = validation::validate_product_patch(body).map_err(rejected)?;
    let mut fields = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            fields.insert(name.into(), value);
        }
    };
    put("name", p.name.map(Value::from));
    put("description", p.description.map(Value::from));
    put(
        "price",
        p.price_cents
            .map(|c| Value::Number(Price::from_cents(c).to_json())),
    );
    put("stock", p.stock.map(Value::from));
    put("category_id", p.category_id.map(Value::from));
    put("sku", p.sku.map(Value::from));
    ProductPatch::parse(&fields).map_err(disagreement)
}

/// `POST /product/{id}/deduct`.
pub fn deduct(body: &[u8]) -> Result<Deduct, ApiError> {
    let d = validation::validate_deduct(body).map_err(rejected)?;
    let mut fields = Map::new();
    fields.insert("quantity".into(), d.quantity.into());
    fields.insert("order_id".into(), d.order_id.into());
    Deduct::parse(&fields).map_err(disagreement)
}

/// `POST /product/{id}/restock`.
pub fn restock(body: &[u8]) -> Result<Restock, ApiError> {
    let r = validation::validate_restock(body).map_err(rejected)?;
    let mut fields = Map::new();
    fields.insert("quantity".into(), r.quantity.into());
    if let Some(order_id) = r.order_id {
        fields.insert("order_id".into(), order_id.into());
    }
    fields.insert("reason".into(), r.reason.into());
    Restock::parse(&fields).map_err(disagreement)
}

/// `POST /stock/deduct`.
pub fn batch_deduct(body: &[u8]) -> Result<BatchDeduct, ApiError> {
    let b = validation::validate_batch_deduct(body).map_err(rejected)?;
    let lines: Vec<Value> = b
        .lines
        .into_iter()
        .map(|l| serde_json::json!({"product_id": l.product_id, "quantity": l.quantity}))
        .collect();
    let mut fields = Map::new();
    fields.insert("order_id".into(), b.order_id.into());
    fields.insert("lines".into(), lines.into());
    BatchDeduct::parse(&fields).map_err(disagreement)
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

/// The domain re-types what the guard accepted; if they ever disagree, the guard and this
/// component were built from different rules, which is a deployment fault.
fn disagreement(errors: Vec<FieldError>) -> ApiError {
    ApiError::Internal(format!(
        "the guard accepted a body the domain refuses: {errors:?}"
    ))
}
