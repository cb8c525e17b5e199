//! What holds hold (`reservation_lines`): each hold's lines, and a product's units held
//! (`reserved!`). A line holds while its `holds_until` is in the future, by the database's
//! clock, so an expired hold stops counting the instant it expires, with no job to run.

use crate::store::spin::Value;

use crate::domain::stock::ProductTotal;

use crate::store::db::{StoreError, Tx};

/// A product's `reserved`: the units of holds' lines that still hold it, as a SQL expression
/// over a row of `products`. A macro, so that SQL built with `concat!` can name it.
macro_rules! reserved {
    () => {
        concat!(
            "(SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l \
              WHERE l.product_id = products.id AND l.holds_until > ",
            now_ms!(),
            ")"
        )
    };
}
pub(crate) use reserved;

/// A product and a number of its units: a line of a hold, or of any taking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product_id: i64,
    pub quantity: i64,
}

impl From<&ProductTotal> for Line {
    fn from(total: &ProductTotal) -> Self {
        Self {
            product_id: total.product_id.get(),
            quantity: total.quantity,
        }
    }
}

/// A request's lines (one per product, `totals`), as lines.
pub fn lines_of(totals: &[ProductTotal]) -> Vec<Line> {
    totals.iter().map(Line::from).collect()
}

/// Writes `reservation`'s lines, holding until `until` (Unix ms), in one statement.
pub fn hold(tx: &Tx<'_>, reservation: &str, lines: &[Line], until: i64) -> Result<(), StoreError> {
    let mut params = vec![Value::Text(reservation.to_owned()), Value::Integer(until)];
    let mut values = Vec::with_capacity(lines.len());
    for line in lines {
        params.push(Value::Integer(line.product_id));
        params.push(Value::Integer(line.quantity));
        values.push(format!(
            "(?1, ?{}, ?{}, ?2)",
            params.len() - 1,
            params.len()
        ));
    }
    let values = values.join(", ");
    tx.exec(
        &format!(
            "INSERT INTO reservation_lines (reservation_id, product_id, quantity, holds_until) \
             VALUES {values}"
        ),
        &params,
    )
}

/// The lines of `reservation` hold nothing any more; `committed` says what its commit took
/// of each product (none: it was released, or expired).
pub fn end(tx: &Tx<'_>, reservation: &str, committed: &[Line]) -> Result<(), StoreError> {
    let mut params = vec![Value::Text(reservation.to_owned())];
    let committed = if committed.is_empty() {
        "committed".to_owned()
    } else {
        quantities("product_id", committed, &mut params)
    };
    tx.exec(
        &format!(
            "UPDATE reservation_lines SET holds_until = NULL, committed = {committed} \
             WHERE reservation_id = ?1"
        ),
        &params,
    )
}

/// Each line's quantity as a SQL expression over a row naming its product in `column`
/// (`CASE column WHEN ?n THEN ?m ... ELSE 0 END`), its parameters appended to `params`:
/// each line's product, then its quantity.
pub fn quantities(column: &str, lines: &[Line], params: &mut Vec<Value>) -> String {
    let mut cases = String::new();
    for line in lines {
        params.push(Value::Integer(line.product_id));
        params.push(Value::Integer(line.quantity));
        cases.push_str(&format!(
            " WHEN ?{} THEN ?{}",
            params.len() - 1,
            params.len()
        ));
    }
    format!("CASE {column}{cases} ELSE 0 END")
}

/// The lines of `reservation` now hold until `until` (Unix ms).
pub fn extend(tx: &Tx<'_>, reservation: &str, until: i64) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE reservation_lines SET holds_until = ? WHERE reservation_id = ?",
        &[Value::Integer(until), Value::Text(reservation.to_owned())],
    )
}

/// A hold's lines, in the order they were named, as one JSON value (`[[product, quantity],
/// ...]`), for a query of holds to read with each hold (`parse_lines`): `hold_id` is the SQL
/// naming the hold's id.
macro_rules! held_lines {
    ($hold_id:literal) => {
        concat!(
            "(SELECT json_group_array(json_array(product_id, quantity)) FROM (SELECT product_id, \
             quantity FROM reservation_lines WHERE reservation_id = ",
            $hold_id,
            " ORDER BY rowid))"
        )
    };
}
pub(crate) use held_lines;

/// The lines `held_lines!` read.
pub fn parse_lines(json: &str) -> Result<Vec<Line>, StoreError> {
    let pairs: Vec<(i64, i64)> = serde_json::from_str(json)
        .map_err(|err| StoreError::Corrupt(format!("a hold's lines: {err}")))?;
    Ok(pairs
        .into_iter()
        .map(|(product_id, quantity)| Line {
            product_id,
            quantity,
        })
        .collect())
}

/// Removes the lines of the holds `reservations`.
pub fn forget(tx: &Tx<'_>, reservations: &[String]) -> Result<(), StoreError> {
    if reservations.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; reservations.len()].join(", ");
    let params: Vec<Value> = reservations
        .iter()
        .map(|id| Value::Text(id.clone()))
        .collect();
    tx.exec(
        &format!("DELETE FROM reservation_lines WHERE reservation_id IN ({marks})"),
        &params,
    )
}
