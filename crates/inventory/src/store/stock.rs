//! Stock changes for the order service: deduct, batch deduct, restock.
//!
//! Every function here runs inside the caller's write transaction (`BEGIN IMMEDIATE`, see
//! `web::idempotency::run_once`) and changes stock only with a conditional `UPDATE` (`...
//! WHERE stock >= ?`), so no interleaving of instances can sell what is not there; each change
//! writes its ledger row and its events in the same transaction.

use spin_sdk::sqlite::Value;

use crate::domain::stock::{ProductTotal, Shortfall};
use crate::domain::MAX_STOCK;
use crate::store::db::{rows, Db, StoreError, NOW};
use crate::store::events::{StockCause, StockChange};
use crate::store::ledger::{self, Movement};
use crate::store::outbox;

/// How a single-product change ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StockOutcome {
    /// Done; the product's stock after the change.
    Done {
        stock: i64,
    },
    NotFound,
    /// Not enough stock (deduct) or too much (restock past the maximum); nothing changed.
    Refused {
        current: i64,
    },
}

/// A change's ledger context.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub order_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

/// Takes `quantity` from a product if it has that many.
pub fn deduct(
    db: &Db,
    product_id: i64,
    quantity: i64,
    context: &Context<'_>,
) -> Result<StockOutcome, StoreError> {
    change(
        db,
        product_id,
        -quantity,
        "stock >= ?",
        quantity,
        StockCause::Deducted,
        context,
    )
}

/// Gives `quantity` back to a product, up to the maximum stock.
pub fn restock(
    db: &Db,
    product_id: i64,
    quantity: i64,
    reason: &str,
    context: &Context<'_>,
) -> Result<StockOutcome, StoreError> {
    change(
        db,
        product_id,
        quantity,
        "stock <= ?",
        MAX_STOCK - quantity,
        StockCause::Restocked { reason },
        context,
    )
}

/// Adds `delta` to the stock where `guard` (with `bound`) holds, and records the change.
fn change(
    db: &Db,
    product_id: i64,
    delta: i64,
    guard: &str,
    bound: i64,
    cause: StockCause<'_>,
    context: &Context<'_>,
) -> Result<StockOutcome, StoreError> {
    let result = db.query(
        &format!(
            "UPDATE products SET stock = stock + ?, version = version + 1, updated_at = {NOW} \
             WHERE id = ? AND {guard} RETURNING stock, version, sku"
        ),
        &[
            Value::Integer(delta),
            Value::Integer(product_id),
            Value::Integer(bound),
        ],
    )?;
    let changed = rows(&result)
        .next()
        .map(|row| Ok::<_, StoreError>((row.int(0)?, row.int(1)?, row.opt_text(2)?)))
        .transpose()?;
    let Some((stock, version, sku)) = changed else {
        return Ok(match current_stock(db, product_id)? {
            Some(current) => StockOutcome::Refused { current },
            None => StockOutcome::NotFound,
        });
    };
    let change = StockChange {
        product_id,
        sku: sku.as_deref(),
        before: stock - delta,
        after: stock,
        version,
    };
    record(db, &change, cause, context)?;
    Ok(StockOutcome::Done { stock })
}

/// What every change of stock writes, by any route, in the change's transaction: its
/// ledger row, and its events (`change.events`).
pub fn record(
    db: &Db,
    change: &StockChange<'_>,
    cause: StockCause<'_>,
    context: &Context<'_>,
) -> Result<(), StoreError> {
    ledger::record(
        db,
        &Movement {
            product_id: change.product_id,
            delta: change.after - change.before,
            stock_after: change.after,
            reason: cause.reason(),
            order_id: context.order_id,
            idempotency_key: context.idempotency_key,
        },
    )?;
    let threshold = db.outbox_config()?.low_stock_threshold;
    outbox::write(db, &change.events(cause, context.order_id, threshold))
}

fn current_stock(db: &Db, product_id: i64) -> Result<Option<i64>, StoreError> {
    let result = db.query(
        "SELECT stock FROM products WHERE id = ?",
        &[Value::Integer(product_id)],
    )?;
    let stock = rows(&result).next().map(|row| row.int(0)).transpose();
    stock
}

/// How a batch deduct ended. Only `Done` changed anything.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Each product's stock after the deduct, in the order of `totals`.
    Done(Vec<(i64, i64)>),
    /// These products do not exist.
    NotFound(Vec<i64>),
    /// Every line that cannot be served.
    Short(Vec<Shortfall>),
}

/// Deducts every product's total or none: all are checked before any changes.
pub fn deduct_batch(
    db: &Db,
    totals: &[ProductTotal],
    context: &Context<'_>,
) -> Result<BatchOutcome, StoreError> {
    let mut missing = Vec::new();
    let mut short = Vec::new();
    for total in totals {
        let (id, requested) = (total.product_id.get(), total.quantity);
        match current_stock(db, id)? {
            None => missing.push(id),
            Some(available) if available < requested => short.push(Shortfall {
                product_id: id,
                requested,
                available,
            }),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Ok(BatchOutcome::NotFound(missing));
    }
    if !short.is_empty() {
        return Ok(BatchOutcome::Short(short));
    }
    let mut done = Vec::with_capacity(totals.len());
    for total in totals {
        let id = total.product_id.get();
        match deduct(db, id, total.quantity, context)? {
            StockOutcome::Done { stock } => done.push((id, stock)),
            // The transaction holds the write lock, so what was checked above still holds.
            other => {
                return Err(StoreError::Corrupt(format!(
                    "product {id} changed inside a write transaction: {other:?}"
                )))
            }
        }
    }
    Ok(BatchOutcome::Done(done))
}
