//! Stock levels (`stock_levels`): a product's stock at one location, with its own version.
//! A taking, a restock and a release write their levels with their ledger rows and their
//! products' totals, in one statement (`ledger::write`). The other writes of a level
//! (counts, transfers, a new product's first level, a deleted one's) go through here, inside
//! the caller's write transaction, and `products::refresh` then recomputes the product's
//! totals from its levels.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::store::spin::Value;

use crate::domain::allocation::Level;
use crate::store::db::{now_ms, rows, Db, StoreError, Tx};
use crate::store::held::level_reserved;

/// The location every installation has, where stock goes when no location is named.
pub const DEFAULT_LOCATION: &str = "default";

/// A product's stock at its active locations, as a SQL expression over a row of `products`:
/// what `products.stock` keeps.
macro_rules! active_total {
    () => {
        "(SELECT coalesce(sum(s.stock), 0) FROM stock_levels s JOIN locations l \
          ON l.id = s.location_id WHERE s.product_id = products.id AND l.active = 1)"
    };
}
pub(crate) use active_total;

/// A product's levels at active locations, as one JSON value (`[[location, stock, reserved],
/// ...]`), as a SQL expression over a row of `products`.
macro_rules! active_levels {
    () => {
        concat!(
            "(SELECT json_group_array(json_array(s.location_id, s.stock, ",
            level_reserved!(),
            ")) FROM stock_levels s JOIN locations l ON l.id = s.location_id \
              WHERE s.product_id = products.id AND l.active = 1)"
        )
    };
}
pub(crate) use active_levels;

/// Whether anything of a product is available at an active location, as a SQL condition over
/// a row of `products`.
macro_rules! any_available {
    () => {
        concat!(
            "EXISTS (SELECT 1 FROM stock_levels s JOIN locations l ON l.id = s.location_id \
              WHERE s.product_id = products.id AND l.active = 1 AND s.stock > ",
            level_reserved!(),
            ")"
        )
    };
}
pub(crate) use any_available;

/// A level as a write finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelState {
    pub location_id: String,
    pub priority: i64,
    pub active: bool,
    pub stock: i64,
    pub reserved: i64,
}

impl LevelState {
    /// `stock - reserved`, never below 0.
    pub fn available(&self) -> i64 {
        (self.stock - self.reserved).max(0)
    }

    /// As the allocation step sees it.
    pub fn for_allocation(&self) -> Level {
        Level {
            location_id: self.location_id.clone(),
            priority: self.priority,
            active: self.active,
            available: self.available(),
        }
    }
}

/// A product as a write of stock finds it: its sku and version, and its levels, active
/// locations' and inactive ones' (none: it has no level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stocked {
    pub sku: Option<String>,
    pub version: i64,
    pub levels: Vec<LevelState>,
}

/// Each of `product_ids` that exists, with its levels, in one statement.
pub fn read(db: &Db, product_ids: &[i64]) -> Result<HashMap<i64, Stocked>, StoreError> {
    let marks = vec!["?"; product_ids.len()].join(", ");
    let params: Vec<Value> = product_ids.iter().copied().map(Value::Integer).collect();
    let result = db.query(
        &format!(
            concat!(
                "SELECT p.id, s.location_id, s.stock, ",
                level_reserved!(),
                ", l.priority, l.active, p.sku, p.version FROM products p \
                 LEFT JOIN stock_levels s ON s.product_id = p.id \
                 LEFT JOIN locations l ON l.id = s.location_id \
                 WHERE p.id IN ({marks}) ORDER BY p.id, s.location_id"
            ),
            marks = marks
        ),
        &params,
    )?;
    let mut found: HashMap<i64, Stocked> = HashMap::new();
    for row in rows(&result) {
        let product = match found.entry(row.int(0)?) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Stocked {
                sku: row.opt_text(6)?,
                version: row.int(7)?,
                levels: Vec::new(),
            }),
        };
        if let Some(location_id) = row.opt_text(1)? {
            product.levels.push(LevelState {
                location_id,
                stock: row.int(2)?,
                reserved: row.int(3)?,
                priority: row.int(4)?,
                active: row.int(5)? == 1,
            });
        }
    }
    Ok(found)
}

/// A level as clients see it (`api/openapi.json`, `Level`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LevelView {
    pub location_id: String,
    /// Whether its location is active (an inactive one's level counts in no total).
    pub active: bool,
    pub stock: i64,
    pub reserved: i64,
    /// `stock - reserved`, never below 0.
    pub available: i64,
    pub version: i64,
}

/// Every level of a product, inactive locations' too, by location id (one: `location`).
pub fn views(
    db: &Db,
    product_id: i64,
    location: Option<&str>,
) -> Result<Vec<LevelView>, StoreError> {
    let mut params = vec![Value::Integer(product_id)];
    let only = match location {
        Some(location) => {
            params.push(Value::Text(location.to_owned()));
            " AND s.location_id = ?"
        }
        None => "",
    };
    let result = db.query(
        &format!(
            concat!(
                "SELECT s.location_id, l.active, s.stock, ",
                level_reserved!(),
                ", s.version FROM stock_levels s JOIN locations l ON l.id = s.location_id \
                 WHERE s.product_id = ?{only} ORDER BY s.location_id"
            ),
            only = only
        ),
        &params,
    )?;
    rows(&result)
        .map(|row| {
            let (stock, reserved) = (row.int(2)?, row.int(3)?);
            Ok(LevelView {
                location_id: row.text(0)?,
                active: row.int(1)? == 1,
                stock,
                reserved,
                available: (stock - reserved).max(0),
                version: row.int(4)?,
            })
        })
        .collect()
}

/// A change of one level's stock: `delta` units at `location_id` of `product_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub product_id: i64,
    pub location_id: String,
    pub delta: i64,
}

/// Moves each level's stock by its `delta` and its version on (the levels exist: `create`
/// makes one), in one statement. A transfer's; a taking writes its levels with its ledger
/// rows (`ledger::write`).
pub fn apply(tx: &Tx<'_>, moves: &[Move]) -> Result<(), StoreError> {
    if moves.is_empty() {
        return Ok(());
    }
    let mut params = Vec::with_capacity(moves.len() * 3);
    let mut cases = String::new();
    let mut values = Vec::with_capacity(moves.len());
    for change in moves {
        params.extend([
            Value::Integer(change.product_id),
            Value::Text(change.location_id.clone()),
            Value::Integer(change.delta),
        ]);
        let n = params.len();
        cases.push_str(&format!(
            " WHEN product_id = ?{} AND location_id = ?{} THEN ?{n}",
            n - 2,
            n - 1
        ));
        values.push(format!("(?{}, ?{})", n - 2, n - 1));
    }
    tx.exec(
        &format!(
            "UPDATE stock_levels SET stock = stock + CASE{cases} ELSE 0 END, \
             version = version + 1 WHERE (product_id, location_id) IN (VALUES {})",
            values.join(", ")
        ),
        &params,
    )
}

/// Makes a product's level at `location_id`, with `stock`.
pub fn create(
    tx: &Tx<'_>,
    product_id: i64,
    location_id: &str,
    stock: i64,
) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO stock_levels (product_id, location_id, stock) VALUES (?, ?, ?)",
        &[
            Value::Integer(product_id),
            Value::Text(location_id.to_owned()),
            Value::Integer(stock),
        ],
    )
}

/// Makes a product's level at `location_id` empty and at version 0, for a write of stock
/// (`ledger::write`) to fill, which brings it to version 1.
pub fn create_empty(tx: &Tx<'_>, product_id: i64, location_id: &str) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO stock_levels (product_id, location_id, stock, version) VALUES (?, ?, 0, 0)",
        &[
            Value::Integer(product_id),
            Value::Text(location_id.to_owned()),
        ],
    )
}

/// Sets a level's stock (a count): the level, if there is one.
pub fn set(tx: &Tx<'_>, product_id: i64, location_id: &str, stock: i64) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE stock_levels SET stock = ?, version = version + 1 \
         WHERE product_id = ? AND location_id = ?",
        &[
            Value::Integer(stock),
            Value::Integer(product_id),
            Value::Text(location_id.to_owned()),
        ],
    )
}

/// Removes one level.
pub fn remove(tx: &Tx<'_>, product_id: i64, location_id: &str) -> Result<(), StoreError> {
    tx.exec(
        "DELETE FROM stock_levels WHERE product_id = ? AND location_id = ?",
        &[
            Value::Integer(product_id),
            Value::Text(location_id.to_owned()),
        ],
    )
}

/// Removes every level of a product (it is deleted).
pub fn forget(tx: &Tx<'_>, product_id: i64) -> Result<(), StoreError> {
    tx.exec(
        "DELETE FROM stock_levels WHERE product_id = ?",
        &[Value::Integer(product_id)],
    )
}
