//! What holds hold (`hold_allocations`): each hold's units, per product and location, in the
//! order taken, and the units held at a level or of a product (`level_reserved!`,
//! `reserved!`). An allocation holds while its `holds_until` is in the future, by the
//! database's clock, so an expired hold stops counting the instant it expires, with no job to
//! run.

use crate::store::spin::Value;

use crate::domain::allocation::Allocation;
use crate::domain::stock::ProductTotal;

use crate::store::db::{StoreError, Tx};

/// A level's `reserved`: the units of allocations that still hold it, as a SQL expression
/// over a row of `stock_levels` named `s`. A macro, so that SQL built with `concat!` can name
/// it.
macro_rules! level_reserved {
    () => {
        concat!(
            "(SELECT coalesce(sum(a.quantity), 0) FROM hold_allocations a \
              WHERE a.product_id = s.product_id AND a.location_id = s.location_id \
              AND a.holds_until > ",
            now_ms!(),
            ")"
        )
    };
}
pub(crate) use level_reserved;

/// A product and a number of its units: a line of a request, or what a commit takes of a
/// product.
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

/// A hold's line: a product, its units, and where they are held, in the order taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine {
    pub product_id: i64,
    pub quantity: i64,
    pub allocations: Vec<Allocation>,
}

/// Writes `reservation`'s allocations (`lines`), holding until `until` (Unix ms), in one
/// statement.
pub fn hold(
    tx: &Tx<'_>,
    reservation: &str,
    lines: &[HeldLine],
    until: i64,
) -> Result<(), StoreError> {
    let mut params = vec![Value::Text(reservation.to_owned()), Value::Integer(until)];
    let mut values = Vec::new();
    for line in lines {
        for allocation in &line.allocations {
            params.push(Value::Integer(line.product_id));
            params.push(Value::Text(allocation.location_id.clone()));
            params.push(Value::Integer(allocation.quantity));
            let n = params.len();
            values.push(format!("(?1, ?{}, ?{}, ?{}, ?2)", n - 2, n - 1, n));
        }
    }
    if values.is_empty() {
        return Ok(());
    }
    let values = values.join(", ");
    tx.exec(
        &format!(
            "INSERT INTO hold_allocations (reservation_id, product_id, location_id, quantity, \
             holds_until) VALUES {values}"
        ),
        &params,
    )
}

/// The allocations of `reservation` hold nothing any more; `committed` says what its commit
/// took at each product's locations (none: it was released, or expired).
pub fn end(tx: &Tx<'_>, reservation: &str, committed: &[HeldLine]) -> Result<(), StoreError> {
    let mut params = vec![Value::Text(reservation.to_owned())];
    let mut cases = String::new();
    for line in committed {
        for allocation in &line.allocations {
            params.push(Value::Integer(line.product_id));
            params.push(Value::Text(allocation.location_id.clone()));
            params.push(Value::Integer(allocation.quantity));
            let n = params.len();
            cases.push_str(&format!(
                " WHEN product_id = ?{} AND location_id = ?{} THEN ?{}",
                n - 2,
                n - 1,
                n
            ));
        }
    }
    let committed = if cases.is_empty() {
        "committed".to_owned()
    } else {
        format!("CASE{cases} ELSE 0 END")
    };
    tx.exec(
        &format!(
            "UPDATE hold_allocations SET holds_until = NULL, committed = {committed} \
             WHERE reservation_id = ?1"
        ),
        &params,
    )
}

/// The allocations of `reservation` now hold until `until` (Unix ms).
pub fn extend(tx: &Tx<'_>, reservation: &str, until: i64) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE hold_allocations SET holds_until = ? WHERE reservation_id = ?",
        &[Value::Integer(until), Value::Text(reservation.to_owned())],
    )
}

/// A hold's allocations, in the order taken, as one JSON value (`[[product, location,
/// quantity], ...]`), for a query of holds to read with each hold (`parse_lines`):
/// `hold_id` is the SQL naming the hold's id.
macro_rules! held_lines {
    ($hold_id:literal) => {
        concat!(
            "(SELECT json_group_array(json_array(product_id, location_id, quantity)) \
             FROM (SELECT product_id, location_id, quantity FROM hold_allocations \
             WHERE reservation_id = ",
            $hold_id,
            " ORDER BY rowid))"
        )
    };
}
pub(crate) use held_lines;

/// The lines `held_lines!` read, one per product in the order first taken, each with where
/// its units are held.
pub fn parse_lines(json: &str) -> Result<Vec<HeldLine>, StoreError> {
    let rows: Vec<(i64, String, i64)> = serde_json::from_str(json)
        .map_err(|err| StoreError::Corrupt(format!("a hold's allocations: {err}")))?;
    let mut held: Vec<HeldLine> = Vec::new();
    for (product_id, location_id, quantity) in rows {
        let allocation = Allocation {
            location_id,
            quantity,
        };
        match held.iter_mut().find(|line| line.product_id == product_id) {
            Some(line) => {
                line.quantity += quantity;
                line.allocations.push(allocation);
            }
            None => held.push(HeldLine {
                product_id,
                quantity,
                allocations: vec![allocation],
            }),
        }
    }
    Ok(held)
}

/// Removes the allocations of the holds `reservations`.
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
        &format!("DELETE FROM hold_allocations WHERE reservation_id IN ({marks})"),
        &params,
    )
}
