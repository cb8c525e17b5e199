//! The stock ledger: an append-only row per change of a level's stock, written in the
//! change's own transaction together with the change's events, so a level's deltas always
//! sum to its stock and every change is told. Every route that changes a product's
//! quantities records the change here: a taking, a restock and a release write it and record
//! it at once (`write`), the rest record what they wrote (`record`).

use crate::store::spin::Value;
use serde::Serialize;

use crate::store::db::{opt_text, rows, Db, StoreError, Tx, NOW};
use crate::store::events::{Event, LevelChange, StockCause, StockChange};
use crate::store::outbox;

/// A change's ledger context.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub order_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// The transfer a change is half of.
    pub transfer_id: Option<&'a str>,
}

/// The events of a write that are not about quantities, told with its changes' own: before
/// them (a product's `product.updated` comes before its `stock.set`) or after them (a hold's
/// `reservation.*` comes after its products' `stock.*`).
pub enum Told {
    Before(Vec<Event>),
    After(Vec<Event>),
}

impl Told {
    pub fn nothing() -> Self {
        Self::After(Vec::new())
    }
}

/// Records changes of products' quantities the caller has written, each with its cause: a
/// ledger row for each level whose stock moved, and every change's events with the write's
/// own (`told`), in one statement each. (A taking writes and records at once: `write`.)
pub fn record(
    tx: &Tx<'_>,
    changes: &[(StockChange<'_>, StockCause<'_>)],
    context: &Context<'_>,
    told: Told,
) -> Result<(), StoreError> {
    // One row per level whose stock moved.
    let mut params = Vec::new();
    let mut count = 0;
    for (change, cause) in changes.iter().filter(|(_, cause)| cause.moves_stock()) {
        for level in change.levels.iter().filter(|level| level.delta() != 0) {
            params.extend([
                Value::Integer(change.product_id),
                Value::Text(level.location_id.clone()),
                Value::Integer(level.delta()),
                Value::Integer(level.stock.1),
                Value::Text(cause.reason().to_owned()),
                opt_text(context.order_id),
                opt_text(context.idempotency_key),
                opt_text(context.transfer_id),
            ]);
            count += 1;
        }
    }
    if count > 0 {
        let values = vec![format!("(?, ?, ?, ?, ?, ?, ?, ?, {NOW})"); count].join(", ");
        tx.exec(
            &format!(
                "INSERT INTO stock_ledger (product_id, location_id, delta, stock_after, reason, \
                 order_id, idempotency_key, transfer_id, at) VALUES {values}"
            ),
            &params,
        )?;
    }
    tell(tx, changes, context, told)
}

/// Writes changes of products' quantities that the caller computed from what it read in this
/// transaction, and records them, in one statement (`INSERT INTO stock_writes`, whose
/// trigger is in migration 0007): each changed level's stock moved and its version on (a
/// level whose stock does not move, a hold's, too), a ledger row for each level whose stock
/// moved, each product's `stock` set to its total after and its version on; then every
/// change's events with the write's own (`told`), as `record` tells them. A change's
/// `version` must be its product's version before, plus one.
pub fn write(
    tx: &Tx<'_>,
    changes: &[(StockChange<'_>, StockCause<'_>)],
    context: &Context<'_>,
    told: Told,
) -> Result<(), StoreError> {
    let mut params = Vec::new();
    let mut count = 0;
    let mut products = Vec::with_capacity(changes.len());
    for (change, cause) in changes {
        let reason = cause.moves_stock().then(|| cause.reason());
        // The product's row: its first level's (or one of its own, if it changed none).
        let mut product_stock = (!products.contains(&change.product_id)).then_some(change.stock.1);
        products.push(change.product_id);
        let levels: Vec<Option<&LevelChange>> = match change.levels.as_slice() {
            [] => vec![None],
            levels => levels.iter().map(Some).collect(),
        };
        for level in levels {
            params.extend([
                Value::Integer(change.product_id),
                level.map_or(Value::Null, |l| Value::Text(l.location_id.clone())),
                Value::Integer(level.map_or(0, LevelChange::delta)),
                Value::Integer(level.map_or(0, |l| l.stock.1)),
                product_stock.take().map_or(Value::Null, Value::Integer),
                opt_text(reason),
                opt_text(context.order_id),
                opt_text(context.idempotency_key),
                opt_text(context.transfer_id),
            ]);
            count += 1;
        }
    }
    if count > 0 {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; count].join(", ");
        tx.exec(
            &format!(
                "INSERT INTO stock_writes (product_id, location_id, delta, stock_after, \
                 product_stock, reason, order_id, idempotency_key, transfer_id) VALUES {values}"
            ),
            &params,
        )?;
    }
    tell(tx, changes, context, told)
}

/// Every change's events, with the write's own (`told`), into the outbox.
fn tell(
    tx: &Tx<'_>,
    changes: &[(StockChange<'_>, StockCause<'_>)],
    context: &Context<'_>,
    told: Told,
) -> Result<(), StoreError> {
    let threshold = tx.outbox_config()?.low_stock_threshold;
    let own = changes
        .iter()
        .flat_map(|(change, cause)| change.events(*cause, context.order_id, threshold));
    let events: Vec<Event> = match told {
        Told::Before(mut events) => {
            events.extend(own);
            events
        }
        Told::After(events) => own.chain(events).collect(),
    };
    outbox::write(tx, &events)
}

/// One recorded change, as clients see it (`api/openapi.json`, `Movement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub location_id: String,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    pub order_id: Option<String>,
    pub transfer_id: Option<String>,
    pub at: String,
}

/// A page of a product's ledger (at `location`, if named), newest first, and the number of
/// entries.
pub fn page(
    db: &Db,
    product_id: i64,
    location: Option<&str>,
    page: i64,
    limit: i64,
) -> Result<(Vec<LedgerEntry>, i64), StoreError> {
    let mut params = vec![Value::Integer(product_id)];
    let from = match location {
        Some(location) => {
            params.push(Value::Text(location.to_owned()));
            "stock_ledger WHERE product_id = ? AND location_id = ?"
        }
        None => "stock_ledger WHERE product_id = ?",
    };
    let (result, total) = db.page(
        "id, location_id, delta, stock_after, reason, order_id, transfer_id, at",
        from,
        "id DESC",
        &params,
        (page, limit),
    )?;
    let entries = rows(&result)
        .map(|row| {
            Ok(LedgerEntry {
                id: row.int(0)?,
                location_id: row.text(1)?,
                delta: row.int(2)?,
                stock_after: row.int(3)?,
                reason: row.text(4)?,
                order_id: row.opt_text(5)?,
                transfer_id: row.opt_text(6)?,
                at: row.text(7)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((entries, total))
}
