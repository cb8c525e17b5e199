//! The one edge error type, rendered as RFC 9457 `application/problem+json`.

use serde_json::json;

use crate::domain::stock::Shortfall;
use crate::store::error::MigrationFailure;
use crate::store::StoreError;
use crate::web::http::{header, status, Resp};

pub use crate::domain::FieldError;

/// Everything a request can fail with. Only this type renders error responses.
#[derive(Debug)]
pub enum ApiError {
    /// 400: a malformed request (bad JSON, a bad id, a bad query parameter).
    InvalidRequest(String),
    /// 422: well-formed, but these fields break the rules.
    Validation(Vec<FieldError>),
    /// 401: no valid credentials; the reason is logged, never returned.
    Unauthorized(String),
    /// 403: valid credentials without the scope the route needs.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 405, with the methods the path does allow.
    MethodNotAllowed(Vec<&'static str>),
    /// 409.
    Conflict(String),
    /// 409: a product's `stock` set where it has no level or several: each level is set
    /// on its own.
    LocationRequired,
    /// 409: not enough stock for one product; nothing changed.
    InsufficientStock {
        requested: i64,
        available: i64,
        by_location: Vec<(String, i64)>,
    },
    /// 409: a batch with short lines, every one of them listed; nothing changed.
    InsufficientStockLines(Vec<Shortfall>),
    /// 409: the hold is no longer active (or, for a release, already committed);
    /// `reservation_status` says what it is (`status` is the problem's HTTP status).
    ReservationInactive { status: &'static str },
    /// 422: an `Idempotency-Key` reused for another request.
    IdempotencyConflict,
    /// 412: `If-Match` named a version that is no longer current.
    PreconditionFailed(String),
    /// 428: the change must be conditional (`If-Match` with a version).
    PreconditionRequired(String),
    /// 413.
    PayloadTooLarge(usize),
    /// 415.
    UnsupportedMediaType,
    /// 429: over the rate limit; the client may retry after this many seconds.
    RateLimited { retry_after: u64 },
    /// 503: a dependency (the database) does not answer.
    Unavailable(String),
    /// 503: the database schema could not be brought up to date; until the next attempt
    /// every request is refused, with `Retry-After` saying when that is.
    SchemaBehind(MigrationFailure),
    /// 500: the whole cause is logged; the client gets a generic body.
    Internal(String),
}

impl ApiError {
    /// 404 naming the products of a request's lines that do not exist: nothing was
    /// `changed` ("deducted", "held").
    pub fn unknown_products(ids: &[i64], changed: &str) -> Self {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        Self::NotFound(format!(
            "no product with id {}; nothing was {changed}",
            ids.join(", ")
        ))
    }

    /// 422 for lines (by index into `wants`) naming a location that does not exist or is
    /// inactive: each named by its field (`lines[2].location_id`; for a single deduct, whose
    /// body is its one line, `location_id`).
    pub fn unusable_locations(
        refused: &[(usize, String)],
        wants: &[crate::domain::allocation::Want],
        single: bool,
    ) -> Self {
        use crate::domain::allocation::Source;
        let errors = refused
            .iter()
            .map(|(index, location)| {
                let field = match wants.get(*index).map(|want| &want.source) {
                    Some(Source::Among(_)) => "locations",
                    _ => "location_id",
                };
                let field = if single {
                    field.to_owned()
                } else {
                    format!("lines[{index}].{field}")
                };
                crate::domain::FieldError::new(
                    field,
                    format!("location {location} does not exist or is inactive"),
                )
            })
            .collect();
        Self::Validation(errors)
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => status::BAD_REQUEST,
            Self::Unauthorized(_) => status::UNAUTHORIZED,
            Self::Forbidden(_) => status::FORBIDDEN,
            Self::NotFound(_) => status::NOT_FOUND,
            Self::MethodNotAllowed(_) => status::METHOD_NOT_ALLOWED,
            Self::Conflict(_)
            | Self::LocationRequired
            | Self::InsufficientStock { .. }
            | Self::InsufficientStockLines(_)
            | Self::ReservationInactive { .. } => status::CONFLICT,
            Self::IdempotencyConflict => status::UNPROCESSABLE_CONTENT,
            Self::PreconditionFailed(_) => status::PRECONDITION_FAILED,
            Self::PreconditionRequired(_) => status::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge(_) => status::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => status::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => status::UNPROCESSABLE_CONTENT,
            Self::RateLimited { .. } => status::TOO_MANY_REQUESTS,
            Self::Internal(_) => status::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::SchemaBehind(_) => status::SERVICE_UNAVAILABLE,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidRequest(_) => ("invalid-request", "Invalid request"),
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::LocationRequired => ("location-required", "Location required"),
            Self::InsufficientStock { .. } | Self::InsufficientStockLines(_) => {
                ("insufficient-stock", "Insufficient stock")
            }
            Self::ReservationInactive { .. } => ("reservation-inactive", "Reservation not active"),
            Self::IdempotencyConflict => ("idempotency-conflict", "Idempotency key reused"),
            Self::PreconditionFailed(_) => ("precondition-failed", "Precondition failed"),
            Self::PreconditionRequired(_) => ("precondition-required", "Precondition required"),
            Self::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable(_) | Self::SchemaBehind(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::InvalidRequest(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PreconditionFailed(d)
            | Self::PreconditionRequired(d) => d.clone(),
            Self::Forbidden(d) => d.clone(),
            Self::LocationRequired => "the product has no one stock level to set: set each \
                 level with PUT /product/{id}/stock/{location_id}; nothing was changed"
                .into(),
            Self::Validation(errors) => format!("{} field(s) are invalid", errors.len()),
            Self::InsufficientStock {
                requested,
                available,
                ..
            } => format!("{requested} requested, {available} available; nothing was changed"),
            Self::InsufficientStockLines(lines) => format!(
                "{} line(s) cannot be served; nothing was changed",
                lines.len()
            ),
            Self::ReservationInactive { status } => {
                format!("the reservation is {status}; nothing was changed")
            }
            Self::IdempotencyConflict => "this Idempotency-Key was used for a different request; \
                 use a new key for a new request"
                .into(),
            Self::Unauthorized(_) => "a valid bearer token is required".into(),
            Self::MethodNotAllowed(allow) => format!("allowed methods: {}", allow.join(", ")),
            Self::PayloadTooLarge(limit) => {
                format!("the request body is larger than {limit} bytes")
            }
            Self::UnsupportedMediaType => "the request body must be application/json".into(),
            Self::RateLimited { retry_after } => {
                format!("the rate limit is used up; retry in {retry_after} s")
            }
            Self::Unavailable(_) => "a store the service needs does not answer; retry later".into(),
            Self::SchemaBehind(failure) => format!(
                "the database schema could not be brought up to date (migration {} failed and \
                 was rolled back); nothing was changed; the service tries again in {} s",
                failure.name,
                retry_after(failure)
            ),
            Self::Internal(_) => "an unexpected error occurred".into(),
        }
    }

    /// What the access log should say about the failure, when it is not in the response.
    /// A failed migration's message is logged by the request whose attempt failed, not by
    /// every request it refuses (at most once per attempt, one attempt every 30 s).
    pub fn log_cause(&self) -> Option<String> {
        match self {
            Self::Unauthorized(cause) | Self::Unavailable(cause) | Self::Internal(cause) => {
                Some(cause.clone())
            }
            Self::SchemaBehind(failure) if failure.fresh => Some(format!(
                "migration {}.sql failed and was rolled back, the database is as it was: {}; \
                 every request is answered 503 until the next attempt, in {} s",
                failure.name,
                failure.error,
                retry_after(failure)
            )),
            Self::SchemaBehind(failure) => Some(format!(
                "the schema is not up to date: migration {}.sql failed (logged by the request \
                 that tried it); next attempt in {} s",
                failure.name,
                retry_after(failure)
            )),
            _ => None,
        }
    }

    pub fn into_response(self, request_id: &str) -> Resp {
        let status = self.status();
        let (slug, title) = self.slug_and_title();
        let mut body = json!({
            "type": format!("https://inventory.example/problems/{slug}"),
            "title": title,
            "status": status,
            "detail": self.detail(),
            "request_id": request_id,
        });
        if let Some(object) = body.as_object_mut() {
            match &self {
                Self::Validation(errors) => {
                    let errors: Vec<_> = errors
                        .iter()
                        .map(|e| json!({"field": e.field, "message": e.message}))
                        .collect();
                    object.insert("errors".into(), errors.into());
                }
                Self::InsufficientStock {
                    requested,
                    available,
                    by_location,
                } => {
                    object.insert("requested".into(), json!(requested));
                    object.insert("available".into(), json!(available));
                    object.insert("by_location".into(), by_location_json(by_location));
                }
                Self::ReservationInactive { status } => {
                    object.insert("reservation_status".into(), json!(status));
                }
                Self::InsufficientStockLines(lines) => {
                    let lines: Vec<_> = lines
                        .iter()
                        .map(|l| {
                            json!({"product_id": l.product_id, "requested": l.requested,
                                   "available": l.available,
                                   "by_location": by_location_json(&l.by_location)})
                        })
                        .collect();
                    object.insert("lines".into(), lines.into());
                }
                _ => {}
            }
        }
        let mut resp = Resp::json(status, &body);
        resp.set_header(header::CONTENT_TYPE, "application/problem+json");
        match self {
            Self::MethodNotAllowed(allow) => resp.set_header(header::ALLOW, &allow.join(", ")),
            Self::Unauthorized(_) => resp.set_header(header::WWW_AUTHENTICATE, "Bearer"),
            Self::RateLimited { retry_after } => {
                resp.set_header(header::RETRY_AFTER, &retry_after.to_string());
            }
            // A store that does not answer is usually busy or restarting: a second is
            // long enough to be worth a retry and short enough not to stall an order.
            Self::Unavailable(_) => resp.set_header(header::RETRY_AFTER, "1"),
            Self::SchemaBehind(failure) => {
                resp.set_header(header::RETRY_AFTER, &retry_after(&failure).to_string());
            }
            _ => {}
        }
        resp
    }
}

/// A short line's candidates, in the order they would be tried, with what each has.
fn by_location_json(by_location: &[(String, i64)]) -> serde_json::Value {
    by_location
        .iter()
        .map(|(location_id, available)| json!({"location_id": location_id, "available": available}))
        .collect()
}

/// Whole seconds until a failed migration is tried again, at least 1.
fn retry_after(failure: &MigrationFailure) -> i64 {
    let millis = failure.retry_at - crate::time::now_millis();
    (millis + 999).div_euclid(1000).max(1)
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { constraint } if constraint == "products.sku" => {
                Self::Conflict("a product with this sku already exists".into())
            }
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::SchemaBehind(failure) => Self::SchemaBehind(failure),
            other => Self::Internal(format!("{other:?}")),
        }
    }
}
