//! The store's one error type: SQLite failures mapped once, into what the layers above need
//! to tell apart.

use crate::store::spin::SqliteError;

/// Storage failures, as the layers above need to tell them apart.
#[derive(Debug)]
pub enum StoreError {
    /// A uniqueness or check constraint refused the change (`products.sku`).
    Conflict { constraint: String },
    /// The database cannot be reached or is busy beyond its timeout.
    Unavailable(String),
    /// A row did not have the shape the code expects: a bug, not bad input.
    Corrupt(String),
    /// Any other SQLite failure.
    Query(String),
    /// The app's configuration (a variable the store reads) is unusable.
    Misconfigured(String),
    /// The schema could not be brought up to date: a migration failed (and was rolled back).
    SchemaBehind(MigrationFailure),
}

/// A migration that failed: requests are refused until `retry_at` (`store::migrations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFailure {
    /// The file's name without `.sql` (`0005_notifier_clock`).
    pub name: String,
    /// SQLite's message.
    pub error: String,
    /// When the next attempt may be made (Unix ms, the database's clock).
    pub retry_at: i64,
    /// This request made the attempt that failed (its log line carries the failure);
    /// `false`: it was refused by a failure recorded before.
    pub fresh: bool,
}

impl From<SqliteError> for StoreError {
    fn from(err: SqliteError) -> Self {
        match err {
            SqliteError::Io(text) => classify(text),
            other => Self::Unavailable(format!("{other:?}")),
        }
    }
}

/// Maps SQLite's message texts, the only detail the interface carries, to our kinds.
fn classify(text: String) -> StoreError {
    if let Some(rest) = text.strip_prefix("UNIQUE constraint failed: ") {
        let constraint = rest.split([' ', ',']).next().unwrap_or(rest).to_owned();
        return StoreError::Conflict { constraint };
    }
    if text.contains("database is locked") || text.contains("unable to open") {
        return StoreError::Unavailable(text);
    }
    StoreError::Query(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_violation_names_its_constraint() {
        let err = classify("UNIQUE constraint failed: products.sku".into());
        assert!(matches!(err, StoreError::Conflict { constraint } if constraint == "products.sku"));
    }

    #[test]
    fn a_locked_database_is_unavailable() {
        assert!(matches!(
            classify("database is locked".into()),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn other_failures_keep_their_text() {
        assert!(
            matches!(classify("no such table: x".into()), StoreError::Query(t) if t == "no such table: x")
        );
    }
}
