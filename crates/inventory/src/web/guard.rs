//! The HTTP components' side of the guard (`wit/guard.wit`): its imports, and the one place
//! its answers become pipeline and domain types. The guard itself is a separate component,
//! composed in by Spin (or this project's host) from `[component.<id>.dependencies]`.
//!
//! A request body is parsed once, by the guard. Its typed record is turned into domain values
//! here with the domain's own constructors: no JSON is rebuilt, and since those constructors
//! check their invariants, a guard built from other rules cannot hand a handler a value the
//! domain would refuse (that is a deployment fault: 500, logged).

use std::fmt::Display;

use crate::domain::stock::{
    BatchDeduct, Deduct, DeductLine, OrderId, ProductId, Quantity, Restock, RestockReason,
};
use crate::domain::{
    CategoryId, Description, NewProduct, Price, ProductName, ProductPatch, Sku, Stock,
};
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

/// `POST /product`.
pub fn new_product(body: &[u8]) -> Result<NewProduct, ApiError> {
    let p = validation::validate_new_product(body).map_err(rejected)?;
    Ok(NewProduct {
        name: checked("name", ProductName::new(&p.name))?,
        description: checked("description", Description::new(p.description))?,
        price: checked("price", Price::try_from_cents(p.price_cents))?,
        stock: checked("stock", Stock::new(p.stock))?,
        category_id: checked(
            "category_id",
            p.category_id.map(CategoryId::new).transpose(),
        )?,
        sku: checked("sku", p.sku.map(Sku::new).transpose())?,
    })
}

/// `PUT`/`PATCH /product/{id}`: the fields present, at least one.
pub fn product_patch(body: &[u8]) -> Result<ProductPatch, ApiError> {
    let p = validation::validate_product_patch(body).map_err(rejected)?;
    let patch = ProductPatch {
        name: checked("name", p.name.map(|n| ProductName::new(&n)).transpose())?,
        description: checked(
            "description",
            p.description.map(Description::new).transpose(),
        )?,
        price: checked(
            "price",
            p.price_cents.map(Price::try_from_cents).transpose(),
        )?,
        stock: checked("stock", p.stock.map(Stock::new).transpose())?,
        category_id: checked(
            "category_id",
            p.category_id
                .map(|c| c.map(CategoryId::new).transpose())
                .transpose(),
        )?,
        sku: checked(
            "sku",
            p.sku.map(|s| s.map(Sku::new).transpose()).transpose(),
        )?,
    };
    if patch.is_empty() {
        return checked("", Err(crate::domain::EMPTY_PATCH));
    }
    Ok(patch)
}

/// `POST /product/{id}/deduct`.
pub fn deduct(body: &[u8]) -> Result<Deduct, ApiError> {
    let d = validation::validate_deduct(body).map_err(rejected)?;
    Ok(Deduct {
        quantity: checked("quantity", Quantity::new(d.quantity))?,
        order_id: checked("order_id", OrderId::new(d.order_id))?,
    })
}

/// `POST /product/{id}/restock`.
pub fn restock(body: &[u8]) -> Result<Restock, ApiError> {
    let r = validation::validate_restock(body).map_err(rejected)?;
    Ok(Restock {
        quantity: checked("quantity", Quantity::new(r.quantity))?,
        order_id: checked("order_id", r.order_id.map(OrderId::new).transpose())?,
        reason: checked("reason", RestockReason::new(r.reason))?,
    })
}

/// `POST /stock/deduct`.
pub fn batch_deduct(body: &[u8]) -> Result<BatchDeduct, ApiError> {
    let b = validation::validate_batch_deduct(body).map_err(rejected)?;
    let lines = b
        .lines
        .into_iter()
        .map(|line| {
            Ok(DeductLine {
                product_id: checked("lines.product_id", ProductId::new(line.product_id))?,
                quantity: checked("lines.quantity", Quantity::new(line.quantity))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let order_id = checked("order_id", OrderId::new(b.order_id))?;
    BatchDeduct::new(order_id, lines).map_err(|e| disagreement(&e.field, e.message))
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

/// A value the guard accepted, as the domain types it.
fn checked<T, E: Display>(field: &str, result: Result<T, E>) -> Result<T, ApiError> {
    result.map_err(|err| disagreement(field, err))
}

/// The guard and this component were built from different rules: a deployment fault.
fn disagreement(field: &str, err: impl Display) -> ApiError {
    ApiError::Internal(format!(
        "the guard accepted `{field}` but the domain refuses it ({err}): the guard and this \
         component were built from different versions"
    ))
}
