//! The `idempotency_keys` table: one stored response per (subject, key), kept at least
//! [`RETENTION_SECONDS`], swept a few rows at a time by the writes themselves.

use spin_sdk::sqlite::Value;

use crate::store::db::{rows, Db, StoreError};

/// Keys are kept at least this long.
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;
/// Expired keys deleted per write, so clean-up never makes one request slow.
const SWEEP_BATCH: i64 = 32;

/// The response stored for a key, and the fingerprint of the request that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

pub fn lookup(db: &Db, subject: &str, key: &str) -> Result<Option<StoredResponse>, StoreError> {
    let result = db.query(
        "SELECT fingerprint, status, body FROM idempotency_keys \
         WHERE subject = ? AND key = ?",
        &[Value::Text(subject.to_owned()), Value::Text(key.to_owned())],
    )?;
    let found = rows(&result)
        .next()
        .map(|row| -> Result<_, StoreError> {
            let status = u16::try_from(row.int(1)?)
                .map_err(|_| StoreError::Corrupt("a stored status is out of range".into()))?;
            Ok(StoredResponse {
                fingerprint: row.text(0)?,
                status,
                body: row.text(2)?,
            })
        })
        .transpose();
    found
}

/// Stores the response for `key`, created at `now` (Unix seconds).
pub fn record(
    db: &Db,
    subject: &str,
    key: &str,
    response: &StoredResponse,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            Value::Text(subject.to_owned()),
            Value::Text(key.to_owned()),
            Value::Text(response.fingerprint.clone()),
            Value::Integer(i64::from(response.status)),
            Value::Text(response.body.clone()),
            Value::Integer(now),
        ],
    )
}

/// Deletes a few keys past their retention; every stock write calls it.
pub fn sweep(db: &Db, now: i64) -> Result<(), StoreError> {
    db.exec(
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
        &[
            Value::Integer(now - RETENTION_SECONDS),
            Value::Integer(SWEEP_BATCH),
        ],
    )
}
