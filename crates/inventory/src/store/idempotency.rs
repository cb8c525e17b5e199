//! The `idempotency_keys` table: the answer given to a client's keyed request, one per
//! (subject, key), kept at least 24 hours. Each kept answer's insert deletes a few keys past
//! that, in SQL (the trigger `idempotency_keys_sweep`, migration 0007), so clean-up never
//! makes one request slow and costs no statement of its own.

use crate::store::spin::Value;

use crate::store::db::{rows, Db, StoreError, Tx};

/// The database's clock in Unix seconds, as `created_at` holds it.
const NOW_SECONDS: &str = "CAST(strftime('%s', 'now') AS INTEGER)";

/// An answer kept for a retry: its status and body, and the fingerprint of the request that
/// got it (a retry must be the same request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

pub fn lookup(db: &Db, subject: &str, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
    let result = db.query(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE subject = ? AND key = ?",
        &[Value::Text(subject.to_owned()), Value::Text(key.to_owned())],
    )?;
    let found = rows(&result)
        .next()
        .map(|row| -> Result<_, StoreError> {
            let status = u16::try_from(row.int(1)?)
                .map_err(|_| StoreError::Corrupt("a stored status is out of range".into()))?;
            Ok(StoredAnswer {
                fingerprint: row.text(0)?,
                status,
                body: row.text(2)?,
            })
        })
        .transpose();
    found
}

/// Keeps `answer` for `key`, in the transaction of the write it answers.
pub fn record(
    tx: &Tx<'_>,
    subject: &str,
    key: &str,
    answer: &StoredAnswer,
) -> Result<(), StoreError> {
    tx.exec(
        &format!(
            "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at) \
             VALUES (?, ?, ?, ?, ?, {NOW_SECONDS})"
        ),
        &[
            Value::Text(subject.to_owned()),
            Value::Text(key.to_owned()),
            Value::Text(answer.fingerprint.clone()),
            Value::Integer(i64::from(answer.status)),
            Value::Text(answer.body.clone()),
        ],
    )
}
