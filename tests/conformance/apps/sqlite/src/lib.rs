//! Spin's SQLite (`fermyon:spin/sqlite@2.0.0`) as a component sees it: a database the
//! manifest does not grant is `access-denied`; in `default`, a table is created, a row
//! inserted, and read back by a parameterised query with its column names.

// `generate!` and `export!` expand to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

use conformance_helper::{check, check_eq, Failure};

wit_bindgen::generate!({
    path: "../../wit",
    world: "local:conformance/sqlite",
    generate_all,
});

use fermyon::spin::sqlite::{Connection, Error, Value};

conformance_helper::exercise!(exercise);

fn exercise() -> Result<(), Failure> {
    check(
        matches!(Connection::open("forbidden"), Err(Error::AccessDenied)),
        || "a database the manifest does not grant opened".to_owned(),
    )?;
    let db = Connection::open("default").map_err(Failure::of)?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS entries (key TEXT NOT NULL, value TEXT NOT NULL)",
        &[],
    )
    .map_err(Failure::of)?;
    db.execute(
        "INSERT INTO entries (key, value) VALUES ('colour', 'blue')",
        &[],
    )
    .map_err(Failure::of)?;
    let result = db
        .execute(
            "SELECT * FROM entries WHERE key = ?",
            &[Value::Text("colour".into())],
        )
        .map_err(Failure::of)?;
    check_eq("rows", result.rows.len(), 1)?;
    check_eq("columns", result.columns.len(), 2)?;
    let column = |name: &str| {
        result
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Failure(format!("no column {name}")))
    };
    let (key, value) = (column("key")?, column("value")?);
    let row = result
        .rows
        .first()
        .map(|r| r.values.as_slice())
        .unwrap_or_default();
    check(
        matches!(row.get(key), Some(Value::Text(k)) if k == "colour"),
        || format!("key: {:?}", row.get(key)),
    )?;
    check(
        matches!(row.get(value), Some(Value::Text(v)) if v == "blue"),
        || format!("value: {:?}", row.get(value)),
    )
}
