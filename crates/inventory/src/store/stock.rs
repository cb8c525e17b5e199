//! Taking stock: the one path of every route that takes units (a deduct, a batch deduct, a
//! hold, a hold's commit), and restock and release, which give them back.
//!
//! A taking runs in the caller's write transaction (`BEGIN IMMEDIATE`), in steps:
//!
//! 1. `allocate`: where each line's units come from. Today a product has one stock, and
//!    each line takes from it; stock per location makes this the step that chooses the
//!    locations, the same for every kind of taking.
//! 2. `apply`: every line taken, or none, in one statement that checks what it takes as it
//!    takes it (`... WHERE stock - quantity - reserved >= 0`, holds counted in the same
//!    statement), so no interleaving of instances can sell what is not there. A hold writes
//!    its lines first and takes the units out of `available` only; a commit takes them out of
//!    the stock on hand, then its hold's lines stop holding them.
//! 3. If it took nothing, `explain` reads why (no such product, or how many there are for
//!    the line), and nothing has changed.
//! 4. Every line's ledger row and events, recorded at once (`ledger::record`), with the
//!    write's own events (`told`).
//!
//! Each statement is a call into the host and costs a request time: the common case, a
//! taking that fits, is two statements whatever its number of lines (and a hold's lines).

use std::collections::HashMap;

use crate::store::spin::Value;

use crate::domain::stock::Shortfall;
use crate::domain::MAX_STOCK;
use crate::store::db::{now_ms, rows, Db, StoreError, Tx, NOW};
use crate::store::events::{Event, StockCause};
pub use crate::store::held::Line;
use crate::store::held::{self, reserved};
use crate::store::ledger::{self, Context, Told};
use crate::store::products::{self, Product};

/// How a taking takes its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How<'a> {
    /// Sold: the units leave the stock.
    Deduct,
    /// Held for a checkout until `until` (Unix ms): the units leave `available` only.
    Hold { reservation: &'a str, until: i64 },
    /// A hold's units sold: they leave the stock on hand, which must cover them (no other
    /// hold had these units), and the hold's lines (`held`) stop holding. A line of 0 takes
    /// nothing: the hold's units of that product are given back (a partial commit that did
    /// not name it).
    Commit {
        reservation: &'a str,
        held: &'a [Line],
    },
}

/// A taking: its lines (one per product), how, its ledger context, and the events of the
/// write that are not about quantities (a hold's `reservation.*`), told with the lines'.
pub struct Taking<'a> {
    pub lines: &'a [Line],
    pub how: How<'a>,
    pub context: Context<'a>,
    pub told: Vec<Event>,
}

/// One product's quantities after a taking, and how many units it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub quantity: i64,
}

/// Why a taking took nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// These products do not exist.
    NotFound(Vec<i64>),
    /// Every line that wants more than there is for it.
    Short(Vec<Shortfall>),
}

/// Takes every line or none (see the module's documentation): the lines as they are after.
pub fn take(tx: &Tx<'_>, taking: Taking<'_>) -> Result<Result<Vec<Taken>, Refusal>, StoreError> {
    let allocations = allocate(taking.lines);
    let Some(after) = apply(tx, &allocations, taking.how)? else {
        return explain(tx, taking.lines, taking.how).map(Err);
    };
    let mut changes = Vec::with_capacity(allocations.len());
    let mut taken = Vec::with_capacity(allocations.len());
    for line in &allocations {
        let product = after.get(&line.product_id).ok_or_else(|| {
            StoreError::Corrupt(format!("product {} changed in a taking", line.product_id))
        })?;
        let (cause, stock, reserved) = match taking.how {
            How::Deduct => (
                StockCause::Deducted,
                product.stock + line.quantity,
                product.reserved,
            ),
            How::Hold { .. } => (
                StockCause::Held,
                product.stock,
                product.reserved - line.quantity,
            ),
            How::Commit { held, .. } => {
                let held = held_of(held, line.product_id);
                let cause = match line.quantity {
                    0 => StockCause::Released,
                    _ => StockCause::Deducted,
                };
                (
                    cause,
                    product.stock + line.quantity,
                    product.reserved + held,
                )
            }
        };
        changes.push((product.changed_from(stock, reserved), cause));
        taken.push(Taken {
            product_id: product.id,
            stock: product.stock,
            reserved: product.reserved,
            available: product.available,
            quantity: line.quantity,
        });
    }
    ledger::record(tx, &changes, &taking.context, Told::After(taking.told))?;
    Ok(Ok(taken))
}

/// Step 1: where each line's units come from (today: its product's one stock).
fn allocate(lines: &[Line]) -> Vec<Line> {
    lines.to_vec()
}

/// Step 2: every line taken, or none; the products after, by id (`None`: none was taken).
fn apply(
    tx: &Tx<'_>,
    lines: &[Line],
    how: How<'_>,
) -> Result<Option<HashMap<i64, Product>>, StoreError> {
    // The parameters: each product's id, then (where the stock moves) its quantity.
    let mut params = Vec::with_capacity(lines.len() * 2);
    let taken = match how {
        How::Hold { .. } => {
            params.extend(lines.iter().map(|line| Value::Integer(line.product_id)));
            String::new()
        }
        How::Deduct | How::Commit { .. } => held::quantities("id", lines, &mut params),
    };
    let stride = params.len() / lines.len().max(1);
    let ids: Vec<String> = (0..lines.len())
        .map(|i| format!("?{}", stride * i + 1))
        .collect();
    let ids = ids.join(", ");
    // What is left after the taking, which must not go below 0: of `available` for a sale
    // or a hold (a hold's lines are written first, so `reserved` counts them), of the stock
    // on hand for a commit.
    let (sets, left) = match how {
        How::Deduct => (
            format!("stock = stock - {taken}, "),
            format!("stock - {taken} - {}", reserved!()),
        ),
        How::Hold { reservation, until } => {
            held::hold(tx, reservation, lines, until)?;
            (String::new(), format!("stock - {}", reserved!()))
        }
        How::Commit { .. } => (
            format!("stock = stock - {taken}, "),
            format!("stock - {taken}"),
        ),
    };
    // One line fits or not as it is taken; several are taken only if every one fits.
    let fits = match lines.len() {
        1 => format!("{left} >= 0"),
        count => {
            format!("(SELECT count(*) FROM products WHERE id IN ({ids}) AND {left} >= 0) = {count}")
        }
    };
    let result = tx.query(
        &format!(
            "UPDATE products SET {sets}version = version + 1, updated_at = {NOW} \
             WHERE id IN ({ids}) AND {fits} RETURNING {}",
            products::COLUMNS
        ),
        &params,
    )?;
    let mut after: HashMap<i64, Product> = rows(&result)
        .map(|row| Product::from_row(&row).map(|product| (product.id, product)))
        .collect::<Result<_, _>>()?;
    if after.len() != lines.len() {
        if let How::Hold { reservation, .. } = how {
            // The lines written for it hold nothing, and are not kept.
            held::forget(tx, &[reservation.to_owned()])?;
        }
        return Ok(None);
    }
    if let How::Commit { reservation, held } = how {
        held::end(tx, reservation, lines)?;
        // The hold's lines counted in `reserved` when the stock was taken; they hold no more.
        for product in after.values_mut() {
            product.reserved -= held_of(held, product.id);
            product.available = (product.stock - product.reserved).max(0);
        }
    }
    Ok(Some(after))
}

/// The units `lines` hold of `product_id`.
fn held_of(lines: &[Line], product_id: i64) -> i64 {
    lines
        .iter()
        .filter(|line| line.product_id == product_id)
        .map(|line| line.quantity)
        .sum()
}

/// Step 3: why a taking of `lines` took nothing.
fn explain(db: &Db, lines: &[Line], how: How<'_>) -> Result<Refusal, StoreError> {
    let ids: Vec<i64> = lines.iter().map(|line| line.product_id).collect();
    let found = quantities(db, &ids)?;
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() {
        return Ok(Refusal::NotFound(missing));
    }
    let short: Vec<Shortfall> = lines
        .iter()
        .filter_map(|line| {
            let (stock, reserved) = found.get(&line.product_id).copied()?;
            let there = match how {
                How::Commit { .. } => stock,
                How::Deduct | How::Hold { .. } => (stock - reserved).max(0),
            };
            (there < line.quantity).then_some(Shortfall {
                product_id: line.product_id,
                requested: line.quantity,
                available: there,
            })
        })
        .collect();
    if short.is_empty() {
        return Err(StoreError::Corrupt(
            "a taking that fits took nothing inside its write transaction".into(),
        ));
    }
    Ok(Refusal::Short(short))
}

/// Each product's `(stock, reserved)`, for those of `ids` that exist.
fn quantities(db: &Db, ids: &[i64]) -> Result<HashMap<i64, (i64, i64)>, StoreError> {
    let marks = vec!["?"; ids.len()].join(", ");
    let params: Vec<Value> = ids.iter().copied().map(Value::Integer).collect();
    let result = db.query(
        &format!(
            "SELECT id, stock, {} FROM products WHERE id IN ({marks})",
            reserved!()
        ),
        &params,
    )?;
    rows(&result)
        .map(|row| Ok((row.int(0)?, (row.int(1)?, row.int(2)?))))
        .collect()
}

/// How a restock ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Restock {
    /// Done; the product after it.
    Done(Product),
    NotFound,
    /// The stock would pass the maximum; nothing changed. `stock` is what is on hand.
    TooMuch {
        stock: i64,
    },
}

/// Gives `quantity` back to a product, up to the maximum stock.
pub fn restock(
    tx: &Tx<'_>,
    product_id: i64,
    quantity: i64,
    reason: &str,
    context: &Context<'_>,
) -> Result<Restock, StoreError> {
    let changed = products::one(
        tx,
        &format!(
            "UPDATE products SET stock = stock + ?, version = version + 1, updated_at = {NOW} \
             WHERE id = ? AND stock <= ? RETURNING {}",
            products::COLUMNS
        ),
        &[
            Value::Integer(quantity),
            Value::Integer(product_id),
            Value::Integer(MAX_STOCK - quantity),
        ],
    )?;
    let Some(product) = changed else {
        return Ok(match products::get(tx, product_id)? {
            Some(current) => Restock::TooMuch {
                stock: current.stock,
            },
            None => Restock::NotFound,
        });
    };
    let change = product.changed_from(product.stock - quantity, product.reserved);
    ledger::record(
        tx,
        &[(change, StockCause::Restocked { reason })],
        context,
        Told::nothing(),
    )?;
    Ok(Restock::Done(product))
}

/// A hold's units given back without a sale: its `lines` stop holding, each product's
/// version moves on (so its ETag and events follow), and the change is recorded with the
/// write's own events (`told`).
pub fn give_back(
    tx: &Tx<'_>,
    reservation: &str,
    lines: &[Line],
    told: Vec<Event>,
    context: &Context<'_>,
) -> Result<(), StoreError> {
    held::end(tx, reservation, &[])?;
    let marks = vec!["?"; lines.len()].join(", ");
    let params: Vec<Value> = lines
        .iter()
        .map(|line| Value::Integer(line.product_id))
        .collect();
    let result = tx.query(
        &format!(
            "UPDATE products SET version = version + 1, updated_at = {NOW} \
             WHERE id IN ({marks}) RETURNING {}",
            products::COLUMNS
        ),
        &params,
    )?;
    let after: Vec<Product> = rows(&result)
        .map(|row| Product::from_row(&row))
        .collect::<Result<_, _>>()?;
    // Before, the stock was the same, and the hold's units were held too.
    let changes: Vec<_> = after
        .iter()
        .filter_map(|product| {
            let line = lines.iter().find(|line| line.product_id == product.id)?;
            let change = product.changed_from(product.stock, product.reserved + line.quantity);
            Some((change, StockCause::Released))
        })
        .collect();
    ledger::record(tx, &changes, context, Told::After(told))
}
