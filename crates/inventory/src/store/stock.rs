//! Stock changes for the order service: deduct, batch deduct, restock.
//!
//! Every function here runs inside the caller's write transaction (`BEGIN IMMEDIATE`, see
//! `web::idempotency::run_once`) and changes stock only with a conditional `UPDATE` (`...
//! WHERE stock - reserved >= ?`: what is available, holds counted, in the same statement),
//! so no interleaving of instances can sell what is not there; each change writes its
//! ledger row and its events in the same transaction.

use spin_sdk::sqlite::Value;

use crate::domain::stock::{ProductTotal, Shortfall};
use crate::domain::MAX_STOCK;
use crate::store::db::{now_ms, Db, StoreError, NOW};
use crate::store::events::{StockCause, StockChange};
use crate::store::ledger::{self, Movement};
use crate::store::outbox;
use crate::store::products::{self, reserved, Product};

/// How a single-product change ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StockOutcome {
    /// Done; the product after the change.
    Done(Product),
    NotFound,
    /// Not enough available (deduct) or too much stock (restock past the maximum); nothing
    /// changed. `current` is what was available (deduct) or on hand (restock).
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
    const AVAILABLE_ENOUGH: &str = concat!("stock - ", reserved!(), " >= ?");
    change(
        db,
        product_id,
        -quantity,
        AVAILABLE_ENOUGH,
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
    let changed = products::one(
        db,
        &format!(
            "UPDATE products SET stock = stock + ?, version = version + 1, updated_at = {NOW} \
             WHERE id = ? AND {guard} RETURNING {}",
            products::COLUMNS
        ),
        &[
            Value::Integer(delta),
            Value::Integer(product_id),
            Value::Integer(bound),
        ],
    )?;
    let Some(product) = changed else {
        return Ok(match products::get(db, product_id)? {
            Some(current) if delta < 0 => StockOutcome::Refused {
                current: current.available,
            },
            Some(current) => StockOutcome::Refused {
                current: current.stock,
            },
            None => StockOutcome::NotFound,
        });
    };
    let change = StockChange::of(&product, product.stock - delta, product.reserved);
    record(db, &change, cause, context)?;
    Ok(StockOutcome::Done(product))
}

/// What every change of a product's quantities writes, by any route, in the change's
/// transaction: its ledger row if the stock moved, and its events (`change.events`).
pub fn record(
    db: &Db,
    change: &StockChange<'_>,
    cause: StockCause<'_>,
    context: &Context<'_>,
) -> Result<(), StoreError> {
    if cause.moves_stock() {
        ledger::record(
            db,
            &Movement {
                product_id: change.product_id,
                delta: change.delta(),
                stock_after: change.stock.1,
                reason: cause.reason(),
                order_id: context.order_id,
                idempotency_key: context.idempotency_key,
            },
        )?;
    }
    let threshold = db.outbox_config()?.low_stock_threshold;
    outbox::write(db, &change.events(cause, context.order_id, threshold))
}

/// How a batch deduct ended. Only `Done` changed anything.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Each product after the deduct, in the order of `totals`.
    Done(Vec<Product>),
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
    match check_available(db, totals)? {
        Availability::Enough => {}
        Availability::NotFound(ids) => return Ok(BatchOutcome::NotFound(ids)),
        Availability::Short(lines) => return Ok(BatchOutcome::Short(lines)),
    }
    let mut done = Vec::with_capacity(totals.len());
    for total in totals {
        let id = total.product_id.get();
        match deduct(db, id, total.quantity, context)? {
            StockOutcome::Done(product) => done.push(product),
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

/// Whether every product of `totals` has that much available.
pub enum Availability {
    Enough,
    /// These products do not exist.
    NotFound(Vec<i64>),
    /// Every product that has less available than asked.
    Short(Vec<Shortfall>),
}

/// Checks every product of `totals` before anything changes (inside the caller's write
/// transaction, so what it finds still holds when the changes are made).
pub fn check_available(db: &Db, totals: &[ProductTotal]) -> Result<Availability, StoreError> {
    let mut missing = Vec::new();
    let mut short = Vec::new();
    for total in totals {
        let (id, requested) = (total.product_id.get(), total.quantity);
        match products::get(db, id)? {
            None => missing.push(id),
            Some(product) if product.available < requested => short.push(Shortfall {
                product_id: id,
                requested,
                available: product.available,
            }),
            Some(_) => {}
        }
    }
    Ok(if !missing.is_empty() {
        Availability::NotFound(missing)
    } else if !short.is_empty() {
        Availability::Short(short)
    } else {
        Availability::Enough
    })
}
