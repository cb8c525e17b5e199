//! Idempotent stock writes (`Idempotency-Key`; README "Stock for the order service").
//!
//! A key belongs to the client that sent it (the token's subject). The first request with a
//! key runs and its response (status and body) is stored in the same transaction as its
//! effect; a retry with the same request gets that response again and changes nothing;
//! another request under the same key is 422. The transaction is `BEGIN IMMEDIATE`, so of two
//! concurrent requests with one key the second waits for the first, then finds its record.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::store::db::Db;
use crate::store::idempotency::{self as records, StoredResponse};
use crate::web::http::{header, status, Req, Resp};
use crate::web::problem::ApiError;
use crate::web::routing::Call;

pub const HEADER: &str = "idempotency-key";
/// Marks a response that is a replay of a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_CHARS: usize = 255;

/// A client's key for one request: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// From the request's header; missing or malformed is 400.
    pub fn from_request(req: &Req) -> Result<Self, ApiError> {
        let raw = req.header(HEADER).ok_or_else(|| {
            ApiError::InvalidRequest("the Idempotency-Key header is required".into())
        })?;
        if (1..=MAX_KEY_CHARS).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::InvalidRequest(
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A write made at most once per key: the key, its owner (the token's subject) and the
/// request's fingerprint.
pub struct Idempotent {
    key: IdempotencyKey,
    subject: String,
    fingerprint: String,
    /// The request's path as the handler parsed it: a replayed 201's resource lives below it.
    path: String,
}

impl Idempotent {
    /// For a write that needs an `Idempotency-Key` (missing is 400). `path` is the request's
    /// path as the handler parsed it, ids in canonical form.
    pub fn required(call: &Call<'_>, path: &str) -> Result<Self, ApiError> {
        Ok(Self {
            key: IdempotencyKey::from_request(call.req)?,
            subject: call.ctx.sub.clone().ok_or_else(|| {
                ApiError::Internal("an idempotent write reached its handler unauthenticated".into())
            })?,
            fingerprint: fingerprint(call.req, path),
            path: path.to_owned(),
        })
    }

    /// For a write that is safe to retry as it is but honours a key when one is sent.
    pub fn optional(call: &Call<'_>, path: &str) -> Result<Option<Self>, ApiError> {
        if call.req.header_values(HEADER).next().is_none() {
            return Ok(None);
        }
        Self::required(call, path).map(Some)
    }

    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    /// Runs `operation` at most once for this key (`run_once`), in the request's database.
    pub fn run(
        &self,
        call: &Call<'_>,
        operation: impl FnOnce(&Db) -> Result<Resp, ApiError>,
    ) -> Result<Resp, ApiError> {
        run_once(call.db()?, self, &call.ctx.request_id, operation)
    }
}

/// Runs `operation` in one write transaction: at most once for the key when `once` has one.
pub fn write(
    call: &Call<'_>,
    once: Option<&Idempotent>,
    operation: impl FnOnce(&Db) -> Result<Resp, ApiError>,
) -> Result<Resp, ApiError> {
    match once {
        Some(once) => once.run(call, operation),
        None => call.db()?.transaction(operation),
    }
}

/// What identifies "the same request": method, the path as the handler understood it
/// (`/product/7/deduct` for `/product/07/deduct`), and the body as canonical JSON (members
/// sorted, whitespace dropped), hashed.
pub fn fingerprint(req: &Req, path: &str) -> String {
    let body = serde_json::from_slice::<Value>(&req.body)
        .map(|v| canonical(&v).to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(&req.body).into_owned());
    let mut hash = Sha256::new();
    hash.update(req.method.as_str());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(body.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Value> = keys
                .into_iter()
                .filter_map(|k| map.get(k).map(|v| (k.clone(), canonical(v))))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Runs `operation` at most once per (subject, key) in one write transaction with its record.
///
/// A request that fails with a client error after reaching the operation (404, 409) is
/// recorded too, so a retry gets the same answer; a server error is not recorded and its
/// transaction rolls back, so a retry runs again.
fn run_once(
    db: &Db,
    once: &Idempotent,
    request_id: &str,
    operation: impl FnOnce(&Db) -> Result<Resp, ApiError>,
) -> Result<Resp, ApiError> {
    db.transaction(|db| {
        let now = db.unix_now()?;
        records::sweep(db, now)?;
        if let Some(stored) = records::lookup(db, &once.subject, once.key())? {
            if stored.fingerprint != once.fingerprint {
                return Err(ApiError::IdempotencyConflict);
            }
            return Ok(replay(stored, &once.path));
        }
        let resp = match operation(db) {
            Ok(resp) => resp,
            Err(err) if status::is_client_error(err.status()) => err.into_response(request_id),
            Err(err) => return Err(err),
        };
        let stored = StoredResponse {
            fingerprint: once.fingerprint.clone(),
            status: resp.status,
            body: String::from_utf8_lossy(&resp.body).into_owned(),
        };
        records::record(db, &once.subject, once.key(), &stored, now)?;
        Ok(resp)
    })
}

/// The stored response again. A 201 names what it created at `Location`: the request's
/// `path` and the created resource's `id` (`POST /reservations` -> `/reservations/res_...`),
/// as the first response did.
fn replay(stored: StoredResponse, path: &str) -> Resp {
    let content_type = if stored.status >= status::BAD_REQUEST {
        "application/problem+json"
    } else {
        "application/json"
    };
    let location = (stored.status == status::CREATED)
        .then(|| created_id(&stored.body))
        .flatten()
        .map(|id| format!("{path}/{id}"));
    let mut resp = Resp::new(stored.status);
    resp.body = stored.body.into_bytes();
    resp.set_header(header::CONTENT_TYPE, content_type);
    if let Some(location) = &location {
        resp.set_header(header::LOCATION, location);
    }
    resp.set_header(REPLAYED_HEADER, "true");
    resp
}

/// The `id` member of a created resource's JSON, as text.
fn created_id(body: &str) -> Option<String> {
    match serde_json::from_str::<Value>(body).ok()?.get("id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}
