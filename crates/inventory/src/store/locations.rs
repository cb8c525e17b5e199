//! Locations (`locations`): warehouses and stores, with the priority that orders them and
//! whether they are active. `default` always exists, and is never deactivated or deleted.
//!
//! Deactivating, reactivating or deleting a location changes the totals of every product with
//! a level there: each gets a new `version`, its `stock` recomputed (`products::refresh`), and
//! a `product.updated` event, in the same transaction.

use std::collections::HashSet;

use serde::Serialize;

use crate::store::spin::Value;

use crate::domain::location::{LocationPatch, NewLocation};
use crate::store::db::{now_ms, rows, where_all, Db, Row, StoreError, Tx, NOW};
use crate::store::held::level_reserved;
use crate::store::levels::DEFAULT_LOCATION;
use crate::store::outbox;
use crate::store::products;

/// A location, as clients see it (`api/openapi.json`, `Location`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub id: String,
    pub name: String,
    pub priority: i64,
    pub active: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, name, priority, active, version, created_at, updated_at";

fn from_row(row: &Row<'_>) -> Result<Location, StoreError> {
    Ok(Location {
        id: row.text(0)?,
        name: row.text(1)?,
        priority: row.int(2)?,
        active: row.int(3)? == 1,
        version: row.int(4)?,
        created_at: row.text(5)?,
        updated_at: row.text(6)?,
    })
}

fn one(db: &Db, sql: &str, params: &[Value]) -> Result<Option<Location>, StoreError> {
    let result = db.query(sql, params)?;
    let location = rows(&result).next().map(|row| from_row(&row)).transpose();
    location
}

/// Which of `ids` exist and are active.
pub fn active_of(db: &Db, ids: &[String]) -> Result<HashSet<String>, StoreError> {
    let marks = vec!["?"; ids.len()].join(", ");
    let params: Vec<Value> = ids.iter().map(|id| Value::Text(id.clone())).collect();
    let result = db.query(
        &format!("SELECT id FROM locations WHERE active = 1 AND id IN ({marks})"),
        &params,
    )?;
    rows(&result).map(|row| row.text(0)).collect()
}

/// How creating a location ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Done(Location),
    /// A location with this id exists.
    Exists,
}

pub fn create(tx: &Tx<'_>, new: &NewLocation) -> Result<Created, StoreError> {
    let created = one(
        tx,
        &format!(
            "INSERT INTO locations (id, name, priority, active, version, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 1, {NOW}, {NOW}) ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
        ),
        &[
            Value::Text(new.id.as_str().to_owned()),
            Value::Text(new.name.as_str().to_owned()),
            Value::Integer(new.priority.get()),
            Value::Integer(i64::from(new.active)),
        ],
    )?;
    Ok(created.map_or(Created::Exists, Created::Done))
}

pub fn get(db: &Db, id: &str) -> Result<Option<Location>, StoreError> {
    one(
        db,
        &format!("SELECT {COLUMNS} FROM locations WHERE id = ?"),
        &[Value::Text(id.to_owned())],
    )
}

/// A page of locations by priority, then id, and how many match.
pub fn list(
    db: &Db,
    active: Option<bool>,
    page: i64,
    limit: i64,
) -> Result<(Vec<Location>, i64), StoreError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(active) = active {
        conditions.push("active = ?");
        params.push(Value::Integer(i64::from(active)));
    }
    let from = format!("locations{}", where_all(&conditions));
    let (result, total) = db.page(COLUMNS, &from, "priority, id", &params, (page, limit))?;
    let items = rows(&result)
        .map(|row| from_row(&row))
        .collect::<Result<_, _>>()?;
    Ok((items, total))
}

/// How a change or a delete of a location ended. Only `Done` changed anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Done(T),
    NotFound,
    /// The location is at another version than the one the client named: as it is.
    Stale(Box<Location>),
    /// `default` is never deactivated or deleted.
    Default,
    /// This many levels there still have stock.
    Stocked(i64),
    /// Active holds have this many units there.
    Held(i64),
}

/// Applies `patch` if the location exists at one of the `expected` versions (any when
/// `None`). A change of `active` gives every product with a level there a new version, its
/// totals recomputed, and a `product.updated` event.
pub fn update(
    tx: &Tx<'_>,
    id: &str,
    patch: &LocationPatch,
    expected: Option<&[i64]>,
) -> Result<Outcome<Location>, StoreError> {
    let Some(before) = get(tx, id)? else {
        return Ok(Outcome::NotFound);
    };
    if id == DEFAULT_LOCATION && patch.active == Some(false) {
        return Ok(Outcome::Default);
    }
    if expected.is_some_and(|versions| !versions.contains(&before.version)) {
        return Ok(Outcome::Stale(Box::new(before)));
    }
    let mut sets = Vec::new();
    let mut params = Vec::new();
    if let Some(name) = &patch.name {
        sets.push("name = ?, ");
        params.push(Value::Text(name.as_str().to_owned()));
    }
    if let Some(priority) = patch.priority {
        sets.push("priority = ?, ");
        params.push(Value::Integer(priority.get()));
    }
    if let Some(active) = patch.active {
        sets.push("active = ?, ");
        params.push(Value::Integer(i64::from(active)));
    }
    params.push(Value::Text(id.to_owned()));
    let after = one(
        tx,
        &format!(
            "UPDATE locations SET {}version = version + 1, updated_at = {NOW} WHERE id = ? \
             RETURNING {COLUMNS}",
            sets.concat()
        ),
        &params,
    )?
    .ok_or_else(|| StoreError::Corrupt("UPDATE returned no row".into()))?;
    if after.active != before.active {
        products_changed(tx, id)?;
    }
    Ok(Outcome::Done(after))
}

/// Deletes a location, and its empty levels, if it exists at one of the `expected` versions,
/// no level there has stock and no active hold has units there.
pub fn delete(tx: &Tx<'_>, id: &str, expected: Option<&[i64]>) -> Result<Outcome<()>, StoreError> {
    let Some(location) = get(tx, id)? else {
        return Ok(Outcome::NotFound);
    };
    if id == DEFAULT_LOCATION {
        return Ok(Outcome::Default);
    }
    if expected.is_some_and(|versions| !versions.contains(&location.version)) {
        return Ok(Outcome::Stale(Box::new(location)));
    }
    let result = tx.query(
        concat!(
            "SELECT coalesce(sum(s.stock > 0), 0), coalesce(sum(",
            level_reserved!(),
            "), 0) FROM stock_levels s WHERE s.location_id = ?"
        ),
        &[Value::Text(id.to_owned())],
    )?;
    let (stocked, held) = rows(&result)
        .next()
        .map(|row| Ok::<_, StoreError>((row.int(0)?, row.int(1)?)))
        .transpose()?
        .unwrap_or((0, 0));
    if stocked > 0 {
        return Ok(Outcome::Stocked(stocked));
    }
    if held > 0 {
        return Ok(Outcome::Held(held));
    }
    let changed = product_ids_at(tx, id)?;
    tx.exec(
        "DELETE FROM stock_levels WHERE location_id = ?",
        &[Value::Text(id.to_owned())],
    )?;
    tx.exec(
        "DELETE FROM locations WHERE id = ?",
        &[Value::Text(id.to_owned())],
    )?;
    tell_products(tx, &changed)?;
    Ok(Outcome::Done(()))
}

/// The products with a level at `location`.
fn product_ids_at(db: &Db, location: &str) -> Result<Vec<i64>, StoreError> {
    let result = db.query(
        "SELECT product_id FROM stock_levels WHERE location_id = ? ORDER BY product_id",
        &[Value::Text(location.to_owned())],
    )?;
    rows(&result).map(|row| row.int(0)).collect()
}

/// Every product with a level at `location`: new totals and version, and `product.updated`.
fn products_changed(tx: &Tx<'_>, location: &str) -> Result<(), StoreError> {
    let ids = product_ids_at(tx, location)?;
    tell_products(tx, &ids)
}

fn tell_products(tx: &Tx<'_>, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let after = products::refresh(tx, ids)?;
    let events: Vec<_> = after.iter().map(products::Product::updated_event).collect();
    outbox::write(tx, &events)
}
