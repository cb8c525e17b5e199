//! Idempotency keys for stock writes (`Idempotency-Key`, API.md "Stock").
//!
//! A key belongs to the client that sent it (the token's subject). The first request with a
//! key runs and its response (status and body) is stored in the same transaction as its
//! effect; a retry with the same request gets that response again and changes nothing;
//! another request under the same key is 422. The transaction is `BEGIN IMMEDIATE`, so of two
//! concurrent requests with one key the second waits for the first, then finds its record.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spin_sdk::sqlite::Value as Sql;

use crate::db::{rows, Db, StoreError};
use crate::http::{header, Req, Resp};
use crate::problem::ApiError;

pub const HEADER: &str = "idempotency-key";
/// Marks a response that is a replay of a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Keys are kept at least this long.
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;
/// Expired keys deleted per write, so clean-up never makes one request slow.
const SWEEP_BATCH: i64 = 32;
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
pub fn run_once(
    db: &Db,
    subject: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    request_id: &str,
    operation: impl FnOnce(&Db) -> Result<Resp, ApiError>,
) -> Result<Resp, ApiError> {
    db.transaction(|db| {
        let now = unix_now(db)?;
        sweep(db, now)?;
        if let Some((stored_fingerprint, status, body)) = lookup(db, subject, key)? {
            if stored_fingerprint != fingerprint {
                return Err(ApiError::IdempotencyConflict);
            }
            return Ok(replay(status, body));
        }
        let resp = match operation(db) {
            Ok(resp) => resp,
            Err(err) if err.status() < 500 => err.into_response(request_id),
            Err(err) => return Err(err),
        };
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        db.exec(
            "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Sql::Text(subject.to_owned()),
                Sql::Text(key.as_str().to_owned()),
                Sql::Text(fingerprint.to_owned()),
                Sql::Integer(i64::from(resp.status)),
                Sql::Text(body),
                Sql::Integer(now),
            ],
        )?;
        Ok(resp)
    })
}

fn lookup(
    db: &Db,
    subject: &str,
    key: &IdempotencyKey,
) -> Result<Option<(String, u16, String)>, StoreError> {
    let result = db.query(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE subject = ? AND key = ?",
        &[
            Sql::Text(subject.to_owned()),
            Sql::Text(key.as_str().to_owned()),
        ],
    )?;
    let found = rows(&result)
        .next()
        .map(|row| -> Result<_, StoreError> {
            let status = u16::try_from(row.int(1)?)
                .map_err(|_| StoreError::Corrupt("a stored status is out of range".into()))?;
            Ok((row.text(0)?, status, row.text(2)?))
        })
        .transpose();
    found
}

fn replay(status: u16, body: String) -> Resp {
    let content_type = if status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut resp = Resp::new(status);
    resp.body = body.into_bytes();
    resp.set_header(header::CONTENT_TYPE, content_type);
    resp.set_header(REPLAYED_HEADER, "true");
    resp
}

/// Deletes a few keys past their retention; every stock write calls it.
fn sweep(db: &Db, now: i64) -> Result<(), StoreError> {
    db.exec(
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
        &[
            Sql::Integer(now - RETENTION_SECONDS),
            Sql::Integer(SWEEP_BATCH),
        ],
    )
}

fn unix_now(db: &Db) -> Result<i64, StoreError> {
    let result = db.query("SELECT CAST(strftime('%s', 'now') AS INTEGER)", &[])?;
    let now = rows(&result)
        .next()
        .map(|row| row.int(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("the clock query returned no row".into()))?;
    Ok(now)
}
