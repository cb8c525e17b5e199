//! Writes of one product's levels that are not takings: a count of one level (`count`), a
//! level removed (`remove`), and units moved between two locations (`transfer`). Each runs
//! in the caller's write transaction, recomputes the product's totals from its levels, and
//! records its ledger rows and events with it.

use serde::Serialize;

use crate::store::spin::Value;

use crate::domain::location::NewTransfer;
use crate::domain::MAX_STOCK;
use crate::ids;
use crate::store::db::{rows, StoreError, Tx, NOW};
use crate::store::events::{LevelChange, StockCause};
use crate::store::ledger::{self, Context, Told};
use crate::store::levels::{self, LevelState, LevelView, Move};
use crate::store::locations;
use crate::store::products::{self, Product, Totals};

/// The prefix of a transfer's id (`trf_...`).
const TRANSFER_PREFIX: &str = "trf";

/// Whether `id` could be a transfer's id.
pub fn is_transfer_id(id: &str) -> bool {
    ids::is_prefixed(TRANSFER_PREFIX, id)
}

/// The condition a count is made on (`If-Match` / `If-None-Match: *`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The level exists at one of these versions.
    Versions(Vec<i64>),
    /// The level does not exist yet.
    Absent,
}

/// How a count, a removal or a transfer ended. Only `Done` and `Created` changed anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Done(T),
    /// Done, and the level was made.
    Created(T),
    /// No such product (`None`), or no such location (its id).
    NotFound(Option<String>),
    /// The condition does not hold: the level as it is, if there is one.
    Stale(Option<LevelView>),
    /// The level still has stock, or active holds: it stays.
    Busy {
        stock: i64,
        reserved: i64,
    },
    /// A location named that cannot be used (inactive, or a transfer's `to` missing), with
    /// the field that named it.
    Unusable(&'static str, String),
    /// More than the level can give, or take: what it can.
    Short {
        available: i64,
    },
}

/// The product's levels as a write finds them (`None`: no such product).
fn level_of(tx: &Tx<'_>, product_id: i64) -> Result<Option<Vec<LevelState>>, StoreError> {
    Ok(levels::read(tx, &[product_id])?
        .remove(&product_id)
        .map(|product| product.levels))
}

fn refreshed(tx: &Tx<'_>, product_id: i64) -> Result<Product, StoreError> {
    products::refresh(tx, &[product_id])?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt(format!("product {product_id} is gone")))
}

/// Counts one level: sets its stock on `condition` (creating it when `Absent`). One ledger
/// row, one `stock.set`. An inactive location may be counted.
pub fn count(
    tx: &Tx<'_>,
    product_id: i64,
    location_id: &str,
    stock: i64,
    condition: &Condition,
) -> Result<Outcome<LevelView>, StoreError> {
    let Some(before) = level_of(tx, product_id)? else {
        return Ok(Outcome::NotFound(None));
    };
    if locations::get(tx, location_id)?.is_none() {
        return Ok(Outcome::NotFound(Some(location_id.to_owned())));
    }
    let current = levels::views(tx, product_id, Some(location_id))?
        .into_iter()
        .next();
    let created = match (condition, &current) {
        (Condition::Absent, None) => true,
        (Condition::Versions(versions), Some(level)) if versions.contains(&level.version) => false,
        _ => return Ok(Outcome::Stale(current)),
    };
    if created {
        levels::create(tx, product_id, location_id, stock)?;
    } else {
        levels::set(tx, product_id, location_id, stock)?;
    }
    let product = refreshed(tx, product_id)?;
    let (was, reserved) = current
        .as_ref()
        .map_or((0, 0), |level| (level.stock, level.reserved));
    let change = LevelChange {
        location_id: location_id.to_owned(),
        stock: (was, stock),
        reserved: (reserved, reserved),
    };
    let changes = [(
        product.changed_from(Totals::of_active(&before), vec![change]),
        StockCause::Set,
    )];
    ledger::record(tx, &changes, &Context::default(), Told::nothing())?;
    let after = levels::views(tx, product_id, Some(location_id))?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("a counted level is gone".into()))?;
    Ok(if created {
        Outcome::Created(after)
    } else {
        Outcome::Done(after)
    })
}

/// Removes an empty level: no stock, and no active hold there.
pub fn remove(tx: &Tx<'_>, product_id: i64, location_id: &str) -> Result<Outcome<()>, StoreError> {
    let Some(before) = level_of(tx, product_id)? else {
        return Ok(Outcome::NotFound(None));
    };
    let Some(level) = before.iter().find(|l| l.location_id == location_id) else {
        return Ok(Outcome::NotFound(Some(location_id.to_owned())));
    };
    if level.stock > 0 || level.reserved > 0 {
        return Ok(Outcome::Busy {
            stock: level.stock,
            reserved: level.reserved,
        });
    }
    levels::remove(tx, product_id, location_id)?;
    refreshed(tx, product_id)?;
    Ok(Outcome::Done(()))
}

/// A transfer, as clients see it (`api/openapi.json`, `Transfer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub id: String,
    pub product_id: i64,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    pub reason: String,
    pub created_at: String,
    /// Both levels after it, `from` first (absent when read back later).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<TransferredLevel>,
}

/// A level after a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferredLevel {
    pub location_id: String,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
}

/// Moves `quantity` unheld units of a product from one location (which may be inactive: that
/// is how a closed location is emptied) to another, active one, creating its level if
/// absent: two ledger rows with the transfer's id, one `stock.transferred`.
pub fn transfer(
    tx: &Tx<'_>,
    new: &NewTransfer,
    context: &Context<'_>,
) -> Result<Outcome<Transfer>, StoreError> {
    let (product_id, quantity) = (new.product_id.get(), new.quantity.get());
    let (from, to) = (new.from.as_str(), new.to.as_str());
    let Some(before) = level_of(tx, product_id)? else {
        return Ok(Outcome::NotFound(None));
    };
    if locations::get(tx, from)?.is_none() {
        return Ok(Outcome::Unusable("from", from.to_owned()));
    }
    if !locations::active_of(tx, &[to.to_owned()])?.contains(to) {
        return Ok(Outcome::Unusable("to", to.to_owned()));
    }
    let at = |location: &str| before.iter().find(|l| l.location_id == location);
    let source = at(from);
    let available = source.map_or(0, LevelState::available);
    if available < quantity {
        return Ok(Outcome::Short { available });
    }
    let target = at(to);
    let target_stock = target.map_or(0, |l| l.stock);
    if target_stock > MAX_STOCK - quantity {
        return Ok(Outcome::Short {
            available: (MAX_STOCK - target_stock).max(0),
        });
    }
    let id = ids::prefixed(TRANSFER_PREFIX);
    let result = tx.query(
        &format!(
            "INSERT INTO transfers (id, product_id, from_location, to_location, quantity, \
             reason, created_at) VALUES (?, ?, ?, ?, ?, ?, {NOW}) RETURNING created_at"
        ),
        &[
            Value::Text(id.clone()),
            Value::Integer(product_id),
            Value::Text(from.to_owned()),
            Value::Text(to.to_owned()),
            Value::Integer(quantity),
            Value::Text(new.reason.as_str().to_owned()),
        ],
    )?;
    let created_at = rows(&result)
        .next()
        .map(|row| row.text(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    let mut moves = vec![Move {
        product_id,
        location_id: from.to_owned(),
        delta: -quantity,
    }];
    if target.is_some() {
        moves.push(Move {
            product_id,
            location_id: to.to_owned(),
            delta: quantity,
        });
    } else {
        levels::create(tx, product_id, to, quantity)?;
    }
    levels::apply(tx, &moves)?;
    let product = refreshed(tx, product_id)?;
    let level = |location: &str, state: Option<&LevelState>, delta: i64| {
        let (stock, reserved) = state.map_or((0, 0), |l| (l.stock, l.reserved));
        LevelChange {
            location_id: location.to_owned(),
            stock: (stock, stock + delta),
            reserved: (reserved, reserved),
        }
    };
    let changed = vec![level(from, source, -quantity), level(to, target, quantity)];
    let levels: Vec<TransferredLevel> = changed
        .iter()
        .map(|l| TransferredLevel {
            location_id: l.location_id.clone(),
            stock: l.stock.1,
            reserved: l.reserved.1,
            available: (l.stock.1 - l.reserved.1).max(0),
        })
        .collect();
    let cause = StockCause::Transferred {
        transfer_id: &id,
        from,
        to,
        quantity,
        reason: new.reason.as_str(),
    };
    let changes = [(
        product.changed_from(Totals::of_active(&before), changed),
        cause,
    )];
    let context = Context {
        transfer_id: Some(&id),
        ..*context
    };
    ledger::record(tx, &changes, &context, Told::nothing())?;
    Ok(Outcome::Created(Transfer {
        id: id.clone(),
        product_id,
        from: from.to_owned(),
        to: to.to_owned(),
        quantity,
        reason: new.reason.as_str().to_owned(),
        created_at,
        levels,
    }))
}

/// The transfer `id`, if there is one.
pub fn get_transfer(tx: &crate::store::Db, id: &str) -> Result<Option<Transfer>, StoreError> {
    let result = tx.query(
        "SELECT id, product_id, from_location, to_location, quantity, reason, created_at \
         FROM transfers WHERE id = ?",
        &[Value::Text(id.to_owned())],
    )?;
    let transfer = rows(&result)
        .next()
        .map(|row| {
            Ok(Transfer {
                id: row.text(0)?,
                product_id: row.int(1)?,
                from: row.text(2)?,
                to: row.text(3)?,
                quantity: row.int(4)?,
                reason: row.text(5)?,
                created_at: row.text(6)?,
                levels: Vec::new(),
            })
        })
        .transpose();
    transfer
}
