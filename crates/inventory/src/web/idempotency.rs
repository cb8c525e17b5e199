//! Writes, each one transaction, and their answers kept for retries (`Idempotency-Key`;
//! README "Stock for the order service").
//!
//! A handler begins a write (`begin`), hands the transaction to the store, renders the
//! store's answer, and ends the write with that answer (`Write::answer`), which keeps it and
//! commits: data goes down to the store, answers come up, and nothing below calls back up.
//!
//! A key belongs to the client that sent it (the token's subject). The first request with a
//! key runs and its answer (status and body) is kept in the same transaction as its effect;
//! a retry with the same request gets that answer again (`StoredAnswer`, replayed by
//! `replay`) and changes nothing; another request under the same key is 422. The
//! transaction is `BEGIN IMMEDIATE`, so of two concurrent requests with one key the second
//! waits for the first, then finds its answer.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::limits::MAX_IDEMPOTENCY_KEY_CHARS;
use crate::store::db::Tx;
use crate::store::idempotency::{self as answers, StoredAnswer};
use crate::web::http::{header, status, Req, Resp};
use crate::web::problem::ApiError;
use crate::web::routing::Call;

pub const HEADER: &str = "idempotency-key";
/// Marks a response that is a replay of a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A client's key for one request: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// From the request's header; missing or malformed is 400.
    pub fn from_request(req: &Req) -> Result<Self, ApiError> {
        let raw = req.header(HEADER).ok_or_else(|| {
            ApiError::InvalidRequest("the Idempotency-Key header is required".into())
        })?;
        let fits = (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&raw.len());
        if fits && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::InvalidRequest(format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible \
                     ASCII characters"
            )))
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
}

/// A write begun: a fresh one, or the answer a key already has.
pub enum Begun<'a> {
    Fresh(Write<'a>),
    Replayed(Resp),
}

/// A write in progress: its transaction, and the key its answer is kept under, if any.
pub struct Write<'a> {
    tx: Tx<'a>,
    once: Option<&'a Idempotent>,
    request_id: &'a str,
}

/// Begins a write in one transaction: at most once for the key when `once` has one (its
/// answer is replayed, and nothing runs), as often as it is sent otherwise.
pub fn begin<'a>(call: &'a Call<'a>, once: Option<&'a Idempotent>) -> Result<Begun<'a>, ApiError> {
    let tx = call.db()?.begin()?;
    if let Some(once) = once {
        if let Some(stored) = answers::lookup(&tx, &once.subject, once.key())? {
            if stored.fingerprint != once.fingerprint {
                return Err(ApiError::IdempotencyConflict);
            }
            // Nothing to write: the transaction rolls back as it drops.
            return Ok(Begun::Replayed(replay(stored, &once.path)));
        }
    }
    Ok(Begun::Fresh(Write {
        tx,
        once,
        request_id: &call.ctx.request_id,
    }))
}

/// Begins a write that no key makes idempotent (it is safe to send again as it is).
pub fn unkeyed<'a>(call: &'a Call<'a>) -> Result<Write<'a>, ApiError> {
    Ok(Write {
        tx: call.db()?.begin()?,
        once: None,
        request_id: &call.ctx.request_id,
    })
}

impl<'a> Write<'a> {
    /// The write's transaction, for the store.
    pub fn tx(&self) -> &Tx<'a> {
        &self.tx
    }

    /// Ends the write with its answer: kept for the key (a client error too, so a retry
    /// gets the same refusal) and committed with the change; a server error is not kept and
    /// rolls the change back, so a retry runs again.
    pub fn answer(self, answer: Result<Resp, ApiError>) -> Result<Resp, ApiError> {
        let resp = match answer {
            Ok(resp) => resp,
            Err(err) if status::is_client_error(err.status()) => err.into_response(self.request_id),
            Err(err) => return Err(err),
        };
        if let Some(once) = self.once {
            let kept = StoredAnswer {
                fingerprint: once.fingerprint.clone(),
                status: resp.status,
                body: String::from_utf8_lossy(&resp.body).into_owned(),
            };
            answers::record(&self.tx, &once.subject, once.key(), &kept)?;
        }
        self.tx.commit()?;
        Ok(resp)
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

/// A kept answer, given again and marked as a replay. A 201 names what it created at
/// `Location`: the request's `path` and the created resource's `id` (`POST /reservations`
/// -> `/reservations/res_...`), as the first answer did.
fn replay(stored: StoredAnswer, path: &str) -> Resp {
    let location = (stored.status == status::CREATED)
        .then(|| created_id(&stored.body))
        .flatten()
        .map(|id| format!("{path}/{id}"));
    let mut resp = answered(stored.status, stored.body);
    if let Some(location) = &location {
        resp.set_header(header::LOCATION, location);
    }
    resp.set_header(REPLAYED_HEADER, "true");
    resp
}

/// An answer kept as its status and body (the replay of a key, or a hold's commit given to
/// a second commit): a problem's media type for an error, JSON otherwise.
pub fn answered(status: u16, body: String) -> Resp {
    let content_type = if status >= status::BAD_REQUEST {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut resp = Resp::new(status);
    resp.body = body.into_bytes();
    resp.set_header(header::CONTENT_TYPE, content_type);
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
