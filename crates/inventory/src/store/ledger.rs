//! The stock ledger: an append-only row per change of a product's stock, written in the
//! change's own transaction, so a product's deltas always sum to its stock.

use spin_sdk::sqlite::Value;

use crate::store::db::{opt_text, rows, Db, StoreError, NOW};

/// One change of stock, about to be recorded.
pub struct Movement<'a> {
    pub product_id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

/// Appends `movement`; call it inside the transaction that changed the stock.
pub fn record(db: &Db, movement: &Movement<'_>) -> Result<(), StoreError> {
    db.exec(
        &format!(
            "INSERT INTO stock_movements (product_id, delta, stock_after, reason, order_id, idempotency_key, at) \
             VALUES (?, ?, ?, ?, ?, ?, {NOW})"
        ),
        &[
            Value::Integer(movement.product_id),
            Value::Integer(movement.delta),
            Value::Integer(movement.stock_after),
            Value::Text(movement.reason.to_owned()),
            opt_text(movement.order_id),
            opt_text(movement.idempotency_key),
        ],
    )
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    pub order_id: Option<String>,
    pub at: String,
}

/// A page of a product's ledger, newest first, and the number of entries.
pub fn page(
    db: &Db,
    product_id: i64,
    page: i64,
    limit: i64,
) -> Result<(Vec<LedgerEntry>, i64), StoreError> {
    let (result, total) = db.page(
        "id, delta, stock_after, reason, order_id, at",
        "stock_movements WHERE product_id = ?",
        "id DESC",
        &[Value::Integer(product_id)],
        (page, limit),
    )?;
    let entries = rows(&result)
        .map(|row| {
            Ok(LedgerEntry {
                id: row.int(0)?,
                delta: row.int(1)?,
                stock_after: row.int(2)?,
                reason: row.text(3)?,
                order_id: row.opt_text(4)?,
                at: row.text(5)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((entries, total))
}
