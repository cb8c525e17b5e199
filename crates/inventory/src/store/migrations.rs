//! Schema migrations: the numbered files in `migrations/`, compiled in, applied by the app
//! itself in order, so `spin up` and every Spin host need no extra step.
//!
//! Every file is idempotent as plain SQL and records itself in `schema_migrations` as its
//! last statement (README "Migrations"), so a file an operator applied by hand (`spin up
//! --sqlite @migrations/...`) counts as applied, and applying one again changes nothing.
//! The runner applies the files `schema_migrations` does not list, each in a transaction of
//! its own, so a file that fails leaves the database as it was. `PRAGMA user_version`
//! holds the number up to which every file is applied, so the check on each request is one
//! cheap read (`Db::read_clock`).
//!
//! A failure is recorded (`schema_migration_failure`, a table of the runner's own) with
//! when to try again: until then every request is refused as [`StoreError::SchemaBehind`]
//! without trying, and the one request that tries, and fails, carries SQLite's message
//! ([`MigrationFailure::fresh`]), so the log says it once per attempt, not once per request.

use crate::store::spin::Value;

use crate::store::db::{now_ms, rows, Db};
use crate::store::error::MigrationFailure;
use crate::store::error::StoreError;

/// (number, name, SQL), in order: every file of `migrations/`, compiled in by `build.rs`.
/// A new migration is a new file there.
const MIGRATIONS: &[(i64, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// How long after a failed attempt the next one is made.
pub const RETRY_MILLIS: i64 = 30_000;

pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(number, _, _)| *number)
}

/// Brings the schema up to date: applies every file `schema_migrations` does not list, in
/// order, each in its own write transaction. Concurrent first requests serialize on the
/// write lock and look again inside it, so each file runs once.
pub fn migrate(db: &Db) -> Result<(), StoreError> {
    let attempt = claim_attempt(db)?;
    let applied = applied(db)?;
    for (number, name, sql) in MIGRATIONS.iter().filter(|(n, _, _)| !applied.contains(n)) {
        let result = db.transaction(|db| {
            if applied_one(db, *number)? {
                return Ok(());
            }
            split_statements(sql)
                .into_iter()
                .try_for_each(|statement| db.exec(statement, &[]))
        });
        match result {
            Ok(()) => {}
            // Busy or unreachable: not the file's failure; the next request tries again.
            Err(err @ StoreError::Unavailable(_)) => return Err(err),
            Err(err) => {
                return Err(StoreError::SchemaBehind(record_failure(
                    db, attempt, name, err,
                )?))
            }
        }
    }
    // PRAGMA takes no parameters; the number is ours, not input.
    db.exec(&format!("PRAGMA user_version = {}", latest()), &[])?;
    if table_exists(db, FAILURE_TABLE)? {
        db.exec(&format!("DELETE FROM {FAILURE_TABLE}"), &[])?;
    }
    Ok(())
}

const FAILURE_TABLE: &str = "schema_migration_failure";

/// The runner's own record of the last failed attempt (at most one row). Made by the runner
/// when an attempt first fails, not by a migration file: a file that fails is rolled back.
const FAILURE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migration_failure (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    name     TEXT    NOT NULL,
    error    TEXT    NOT NULL,
    retry_at INTEGER NOT NULL
)";

/// Whether this request may try the files: `Err` with the failure that stands, when the
/// last attempt failed and its retry time has not come (or another request has claimed the
/// retry); past that time, this request claims the retry (one request at a time).
fn claim_attempt(db: &Db) -> Result<Attempt, StoreError> {
    if !table_exists(db, FAILURE_TABLE)? {
        return Ok(Attempt::First);
    }
    let Some((failure, due)) = recorded_failure(db)? else {
        return Ok(Attempt::First);
    };
    if due {
        let claimed = db.query(
            concat!(
                "UPDATE schema_migration_failure SET retry_at = ",
                now_ms!(),
                " + ?1 WHERE retry_at = ?2 RETURNING 1"
            ),
            &[
                Value::Integer(RETRY_MILLIS),
                Value::Integer(failure.retry_at),
            ],
        )?;
        if !claimed.rows.is_empty() {
            return Ok(Attempt::Retry);
        }
    }
    Err(StoreError::SchemaBehind(failure))
}

/// How this request came to try the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// No failure is recorded.
    First,
    /// After a failure, this request claimed the retry.
    Retry,
}

/// The failure recorded, if any, and whether its retry time has come.
fn recorded_failure(db: &Db) -> Result<Option<(MigrationFailure, bool)>, StoreError> {
    let result = db.query(
        concat!(
            "SELECT name, error, retry_at, retry_at <= ",
            now_ms!(),
            " FROM schema_migration_failure"
        ),
        &[],
    )?;
    let failure = rows(&result)
        .next()
        .map(|row| {
            let failure = MigrationFailure {
                name: row.text(0)?,
                error: row.text(1)?,
                retry_at: row.int(2)?,
                fresh: false,
            };
            Ok::<_, StoreError>((failure, row.int(3)? != 0))
        })
        .transpose();
    failure
}

/// Records that `name` failed with `err` (its transaction rolled back), to be tried again
/// in [`RETRY_MILLIS`]. The failure is this request's to report (`fresh`) if it claimed the
/// retry, or if it is the first to record a first attempt's failure: of concurrent first
/// attempts, one reports.
fn record_failure(
    db: &Db,
    attempt: Attempt,
    name: &str,
    err: StoreError,
) -> Result<MigrationFailure, StoreError> {
    let error = match err {
        StoreError::Query(text) | StoreError::Corrupt(text) => text,
        other => format!("{other:?}"),
    };
    db.exec(FAILURE_TABLE_SQL, &[])?;
    let result = db.query(
        concat!(
            "INSERT INTO schema_migration_failure (id, name, error, retry_at) VALUES (1, ?1, ?2, ",
            now_ms!(),
            " + ?3) ON CONFLICT (id) DO UPDATE SET name = ?1, error = ?2, retry_at = ",
            now_ms!(),
            " + ?3 WHERE ?4 RETURNING retry_at"
        ),
        &[
            Value::Text(name.to_owned()),
            Value::Text(error.clone()),
            Value::Integer(RETRY_MILLIS),
            Value::Integer((attempt == Attempt::Retry).into()),
        ],
    )?;
    if let Some(retry_at) = rows(&result).next().map(|row| row.int(0)).transpose()? {
        return Ok(MigrationFailure {
            name: name.to_owned(),
            error,
            retry_at,
            fresh: true,
        });
    }
    recorded_failure(db)?
        .map(|(failure, _)| failure)
        .ok_or_else(|| StoreError::Corrupt("a recorded migration failure vanished".into()))
}

/// The numbers `schema_migrations` lists: the files applied, by the runner or by hand.
fn applied(db: &Db) -> Result<Vec<i64>, StoreError> {
    if !table_exists(db, "schema_migrations")? {
        return Ok(Vec::new());
    }
    let result = db.query("SELECT version FROM schema_migrations", &[])?;
    let applied = rows(&result).map(|row| row.int(0)).collect();
    applied
}

fn applied_one(db: &Db, number: i64) -> Result<bool, StoreError> {
    Ok(table_exists(db, "schema_migrations")?
        && !db
            .query(
                "SELECT 1 FROM schema_migrations WHERE version = ?",
                &[Value::Integer(number)],
            )?
            .rows
            .is_empty())
}

fn table_exists(db: &Db, name: &str) -> Result<bool, StoreError> {
    let result = db.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        &[Value::Text(name.to_owned())],
    )?;
    Ok(!result.rows.is_empty())
}

/// Splits a SQL file into statements at `;` outside quotes and comments, but for the `;`s
/// inside a trigger's body (`CREATE TRIGGER ... BEGIN ...; ...; END`).
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let bytes = sql.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' => {
                i += 1;
                while bytes.get(i).is_some_and(|&c| c != b) {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b';' if sql.get(start..i).is_some_and(in_trigger_body) => {}
            b';' => {
                if let Some(statement) = sql
                    .get(start..i)
                    .map(str::trim)
                    .filter(|s| !only_comments(s))
                {
                    statements.push(statement);
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(tail) = sql
        .get(start..)
        .map(str::trim)
        .filter(|s| !only_comments(s))
    {
        statements.push(tail);
    }
    statements
}

/// Whether `text`, a statement up to a `;`, is a trigger whose body has not ended: one more
/// `BEGIN` or `CASE` than `END` (a body's statements may hold `CASE ... END`).
fn in_trigger_body(text: &str) -> bool {
    let mut tokens = text
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|token| !token.is_empty())
        .map(str::to_ascii_uppercase);
    let trigger = tokens.next().as_deref() == Some("CREATE")
        && matches!(
            tokens.next().as_deref(),
            Some("TRIGGER" | "TEMP" | "TEMPORARY")
        );
    if !trigger {
        return false;
    }
    let open = tokens.fold(0i64, |open, token| match token.as_str() {
        "BEGIN" | "CASE" => open + 1,
        "END" => open - 1,
        _ => open,
    });
    open > 0
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with("--")
    })
}

/// A statement without its leading comments, its words upper-cased and single-spaced.
#[cfg(test)]
fn words(statement: &str) -> String {
    statement
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_quotes_and_comments() {
        let sql = "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nINSERT INTO a VALUES ('b;c');\n-- trailing\n";
        assert_eq!(
            split_statements(sql),
            vec![
                "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';')",
                "INSERT INTO a VALUES ('b;c')"
            ]
        );
    }

    #[test]
    fn a_trigger_is_one_statement_whatever_its_body_holds() {
        let sql = "-- a trigger; then a table\nCREATE TRIGGER IF NOT EXISTS t AFTER INSERT ON a\nBEGIN\n    UPDATE b SET n = CASE WHEN n > 0 THEN n - 1 ELSE 0 END; -- end;\n    DELETE FROM c;\nEND;\nCREATE TABLE d (x)";
        let statements = split_statements(sql);
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert!(
            statements[0].ends_with("DELETE FROM c;\nEND"),
            "{statements:?}"
        );
        assert_eq!(statements[1], "CREATE TABLE d (x)");
    }

    #[test]
    fn migrations_are_numbered_in_order_and_each_has_statements() {
        let mut previous = 0;
        for (number, name, sql) in MIGRATIONS {
            assert_eq!(*number, previous + 1, "{name}");
            assert!(name.starts_with(&format!("{number:04}_")), "{name}");
            assert!(!split_statements(sql).is_empty(), "{name}");
            previous = *number;
        }
    }

    /// The rule of README "Migrations": a file must be safe to apply again, as plain SQL.
    /// `tests/e2e/migrations.rs` applies every file twice to hold them to it; this names the
    /// statements that cannot be.
    #[test]
    fn no_migration_alters_drops_or_renames() {
        for (_, name, sql) in MIGRATIONS {
            for statement in split_statements(sql) {
                let words = words(statement);
                for refused in ["ALTER ", "DROP ", "RENAME "] {
                    assert!(
                        !words.starts_with(refused) && !words.contains(&format!(" {refused}")),
                        "{name}: `{words}`: no ALTER, DROP or RENAME in a migration file; a \
                         schema change is a new table (README \"Migrations\")"
                    );
                }
                if words.starts_with("CREATE ") {
                    assert!(words.contains(" IF NOT EXISTS "), "{name}: `{words}`");
                }
            }
        }
    }

    #[test]
    fn every_migration_records_itself_last() {
        for (number, name, sql) in MIGRATIONS {
            let last = split_statements(sql).last().map(|s| words(s));
            let record = format!(
                "INSERT OR IGNORE INTO SCHEMA_MIGRATIONS (VERSION, NAME, APPLIED_AT) VALUES \
                 ({number}, '{}', STRFTIME('%Y-%M-%DT%H:%M:%SZ', 'NOW'))",
                name.to_uppercase()
            );
            assert_eq!(last.as_deref(), Some(record.as_str()), "{name}");
        }
    }
}
