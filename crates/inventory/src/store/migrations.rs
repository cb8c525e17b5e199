//! Schema migrations: the numbered files in `migrations/`, compiled in, each applied once and
//! in order by the app itself, so `spin up` and every Spin host need no extra step.
//!
//! `PRAGMA user_version` holds the last applied number, so the check on each request is one
//! cheap read; `schema_migrations` records what ran and when.

use spin_sdk::sqlite::Value;

use crate::store::db::{rows, Db, StoreError};

/// (number, name, SQL), in order: every file of `migrations/`, compiled in by `build.rs`.
/// A new migration is a new file there.
const MIGRATIONS: &[(i64, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(number, _, _)| *number)
}

fn user_version(db: &Db) -> Result<i64, StoreError> {
    let result = db.query("PRAGMA user_version", &[])?;
    let version = rows(&result).next().map_or(Ok(0), |row| row.int(0));
    version
}

/// Brings the schema up to date. Concurrent first requests serialize on the write lock and
/// re-read the version inside it, so each migration runs once.
pub fn migrate(db: &Db) -> Result<(), StoreError> {
    if user_version(db)? >= latest() {
        return Ok(());
    }
    db.transaction(|db| {
        let current = user_version(db)?;
        for (number, name, sql) in MIGRATIONS.iter().filter(|(n, _, _)| *n > current) {
            for statement in split_statements(sql) {
                db.exec(statement, &[])?;
            }
            db.exec(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                &[Value::Integer(*number), Value::Text((*name).to_owned())],
            )?;
            // PRAGMA takes no parameters; the number is ours, not input.
            db.exec(&format!("PRAGMA user_version = {number}"), &[])?;
        }
        Ok(())
    })
}

/// Splits a SQL file into statements at `;` outside quotes and comments. (Migrations hold no
/// triggers, whose bodies would contain `;`.)
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

fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with("--")
    })
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
    fn migrations_are_numbered_in_order_and_each_has_statements() {
        let mut previous = 0;
        for (number, name, sql) in MIGRATIONS {
            assert_eq!(*number, previous + 1, "{name}");
            assert!(name.starts_with(&format!("{number:04}_")), "{name}");
            assert!(!split_statements(sql).is_empty(), "{name}");
            previous = *number;
        }
    }
}
