//! Stock levels (`stock_levels`): a product's stock at one location, with its own version.
//! Every write that changes a level goes through here, inside the caller's write
//! transaction; `products::refresh` then recomputes the product's totals from its levels.

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

/// The levels of each of `product_ids` that exists (a product without levels maps to none),
/// active locations' and inactive ones', in one statement.
pub fn read(db: &Db, product_ids: &[i64]) -> Result<HashMap<i64, Vec<LevelState>>, StoreError> {
    let marks = vec!["?"; product_ids.len()].join(", ");
    let params: Vec<Value> = product_ids.iter().copied().map(Value::Integer).collect();
    let result = db.query(
        &format!(
            concat!(
                "SELECT p.id, s.location_id, s.stock, ",
                level_reserved!(),
                ", l.priority, l.active FROM products p \
                 LEFT JOIN stock_levels s ON s.product_id = p.id \
                 LEFT JOIN locations l ON l.id = s.location_id \
                 WHERE p.id IN ({marks}) ORDER BY p.id, s.location_id"
            ),
            marks = marks
        ),
        &params,
    )?;
    let mut found: HashMap<i64, Vec<LevelState>> = HashMap::new();
    for row in rows(&result) {
        let levels = found.entry(row.int(0)?).or_default();
        if let Some(location_id) = row.opt_text(1)? {
            levels.push(LevelState {
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

/// Moves each level's stock by its `delta` (the levels exist: `create` makes one), and bumps
/// the version of every level in `touched` whose stock does not move (a hold's, a
/// release's), in one statement each.
pub fn apply(tx: &Tx<'_>, moves: &[Move], touched: &[(i64, String)]) -> Result<(), StoreError> {
    // The common case, one level moved: a plain update by its key.
    if let ([one], []) = (moves, touched) {
        return tx.exec(
            "UPDATE stock_levels SET stock = stock + ?, version = version + 1 \
             WHERE product_id = ? AND location_id = ?",
            &[
                Value::Integer(one.delta),
                Value::Integer(one.product_id),
                Value::Text(one.location_id.clone()),
            ],
        );
    }
    if !moves.is_empty() {
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
        )?;
    }
    if !touched.is_empty() {
        let mut params = Vec::with_capacity(touched.len() * 2);
        for (product_id, location_id) in touched {
            params.extend([
                Value::Integer(*product_id),
                Value::Text(location_id.clone()),
            ]);
        }
        let values = vec!["(?, ?)"; touched.len()].join(", ");
        tx.exec(
            &format!(
                "UPDATE stock_levels SET version = version + 1 \
                 WHERE (product_id, location_id) IN (VALUES {values})"
            ),
            &params,
        )?;
    }
    Ok(())
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
