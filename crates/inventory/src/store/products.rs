//! The product catalogue, and a product's own events. Every write runs in the caller's
//! transaction with its events (the outbox); one that changes stock also writes the ledger.

use crate::store::spin::Value;
use serde::{Serialize, Serializer};

use serde_json::json;

use crate::domain::{NewProduct, Price, ProductPatch};
use crate::store::db::{now_ms, opt_int, opt_text, rows, where_all, Db, Row, StoreError, Tx, NOW};
use crate::store::events::{Event, EventType, LevelChange, StockCause, StockChange};
use crate::store::held::level_reserved;
use crate::store::ledger::{self, Context, Told};
use crate::store::levels::{self, active_levels, active_total, any_available, DEFAULT_LOCATION};
use crate::store::outbox;

/// A stored product, which serializes as clients see it (`api/openapi.json`, `Product`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: i64,
    pub sku: Option<String>,
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "price_number")]
    pub price: Price,
    /// On hand.
    pub stock: i64,
    /// Held by active holds that have not expired, as of the query.
    pub reserved: i64,
    /// What can be sold or held: the sum of its levels' `available`.
    pub available: i64,
    pub category_id: Option<i64>,
    pub version: i64,
    /// Its levels at active locations, by location id; the totals above are their sums.
    pub by_location: Vec<LevelView>,
    pub created_at: String,
    pub updated_at: String,
}

/// A product's level at an active location, as product views list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelView {
    pub location_id: String,
    pub stock: i64,
    pub reserved: i64,
    /// `stock - reserved`, never below 0.
    pub available: i64,
}

/// A product's `stock`, `reserved` and `available`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
}

impl Totals {
    /// The sums over levels of `(stock, reserved)`.
    pub fn of(levels: impl IntoIterator<Item = (i64, i64)>) -> Self {
        levels
            .into_iter()
            .fold(Self::default(), |sum, (stock, reserved)| Self {
                stock: sum.stock + stock,
                reserved: sum.reserved + reserved,
                available: sum.available + (stock - reserved).max(0),
            })
    }
}

impl Totals {
    /// The sums over the levels at active locations (inactive ones count in no total).
    pub fn of_active(levels: &[levels::LevelState]) -> Self {
        Self::of(
            levels
                .iter()
                .filter(|level| level.active)
                .map(|level| (level.stock, level.reserved)),
        )
    }
}

/// A product's columns, in `Product::from_row`'s order.
pub const COLUMNS: &str = concat!(
    "id, sku, name, description, price_cents, ",
    active_levels!(),
    ", category_id, version, created_at, updated_at"
);

impl Product {
    pub(crate) fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        let levels: Vec<(String, i64, i64)> = serde_json::from_str(&row.text(5)?)
            .map_err(|err| StoreError::Corrupt(format!("a product's levels: {err}")))?;
        let mut by_location: Vec<LevelView> = levels
            .into_iter()
            .map(|(location_id, stock, reserved)| LevelView {
                location_id,
                stock,
                reserved,
                available: (stock - reserved).max(0),
            })
            .collect();
        by_location.sort_by(|a, b| a.location_id.cmp(&b.location_id));
        let totals = Totals::of(by_location.iter().map(|l| (l.stock, l.reserved)));
        Ok(Self {
            id: row.int(0)?,
            sku: row.opt_text(1)?,
            name: row.text(2)?,
            description: row.text(3)?,
            price: Price::from_checked(row.int(4)?),
            stock: totals.stock,
            reserved: totals.reserved,
            available: totals.available,
            category_id: row.opt_int(6)?,
            version: row.int(7)?,
            by_location,
            created_at: row.text(8)?,
            updated_at: row.text(9)?,
        })
    }

    /// The product as seen from `locations` only: its levels there, and their sums.
    pub fn narrowed(mut self, locations: &[String]) -> Self {
        self.by_location
            .retain(|level| locations.contains(&level.location_id));
        let totals = Totals::of(self.by_location.iter().map(|l| (l.stock, l.reserved)));
        self.stock = totals.stock;
        self.reserved = totals.reserved;
        self.available = totals.available;
        self
    }

    /// The product's totals.
    pub fn totals(&self) -> Totals {
        Totals {
            stock: self.stock,
            reserved: self.reserved,
            available: self.available,
        }
    }

    /// The change that left the product as it is, from its totals before it, with the levels
    /// it changed.
    pub fn changed_from(&self, before: Totals, levels: Vec<LevelChange>) -> StockChange<'_> {
        StockChange {
            product_id: self.id,
            sku: self.sku.as_deref(),
            stock: (before.stock, self.stock),
            reserved: (before.reserved, self.reserved),
            available: (before.available, self.available),
            version: self.version,
            levels,
        }
    }

    /// `product.created` / `product.updated`: the product as it now is.
    fn event(&self, kind: EventType) -> Event {
        Event::new(
            kind,
            self.id,
            json!({
                "product_id": self.id,
                "sku": self.sku,
                "name": self.name,
                "price": self.price.to_json(),
                "stock": self.stock,
                "category_id": self.category_id,
                "version": self.version,
            }),
        )
    }

    /// `product.updated`, for a change of its totals without a change of its stock (a
    /// location of it deactivated, reactivated or deleted).
    pub fn updated_event(&self) -> Event {
        self.event(EventType::ProductUpdated)
    }

    /// `product.deleted`: the product as it was, one version on.
    fn deleted_event(&self) -> Event {
        Event::new(
            EventType::ProductDeleted,
            self.id,
            json!({"product_id": self.id, "sku": self.sku, "version": self.version + 1}),
        )
    }
}

/// A price is a JSON number (`12.5`), exact.
fn price_number<S: Serializer>(price: &Price, serializer: S) -> Result<S::Ok, S::Error> {
    price.to_json().serialize(serializer)
}

/// The product a query returns, if any.
pub fn one(db: &Db, sql: &str, params: &[Value]) -> Result<Option<Product>, StoreError> {
    let result = db.query(sql, params)?;
    let product = rows(&result)
        .next()
        .map(|row| Product::from_row(&row))
        .transpose();
    product
}

/// Why a conditional write did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome<T> {
    Done(T),
    NotFound,
    /// The product exists at another version than the one the client named: as it is.
    VersionMismatch(Box<Product>),
    /// Active holds have this many of its units: it cannot go while they may be committed.
    Held(i64),
    /// A stock to set, on a product with no level or several: name the level to set.
    LocationRequired,
    /// A stock to set, on the product's one level, without naming the version it was read
    /// at (`expected`).
    VersionRequired,
}

/// Creates a product with its one level at `new.location_id` (`default` when `None`), which
/// the caller has found active.
pub fn create(tx: &Tx<'_>, new: &NewProduct) -> Result<Product, StoreError> {
    let location = new
        .location_id
        .as_ref()
        .map_or(DEFAULT_LOCATION, |l| l.as_str());
    let product = one(
        tx,
        &format!(
            "INSERT INTO products (sku, name, description, price_cents, stock, category_id, version, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 1, {NOW}, {NOW}) RETURNING {COLUMNS}"
        ),
        &[
            opt_text(new.sku.as_ref().map(|s| s.as_str())),
            Value::Text(new.name.as_str().to_owned()),
            Value::Text(new.description.as_str().to_owned()),
            Value::Integer(new.price.cents()),
            Value::Integer(new.stock.get()),
            opt_int(new.category_id.map(|c| c.get())),
        ],
    )?
    .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    // Its one level; it has no holds yet.
    let stock = new.stock.get();
    levels::create(tx, product.id, location, stock)?;
    let product = Product {
        stock,
        reserved: 0,
        available: stock,
        by_location: vec![LevelView {
            location_id: location.to_owned(),
            stock,
            reserved: 0,
            available: stock,
        }],
        ..product
    };
    let created = product.event(EventType::ProductCreated);
    let level = LevelChange {
        location_id: location.to_owned(),
        stock: (0, stock),
        reserved: (0, 0),
    };
    let change = product.changed_from(Totals::default(), vec![level]);
    ledger::record(
        tx,
        &[(change, StockCause::Created)],
        &Context::default(),
        Told::Before(vec![created]),
    )?;
    Ok(product)
}

pub fn get(db: &Db, id: i64) -> Result<Option<Product>, StoreError> {
    one(
        db,
        &format!("SELECT {COLUMNS} FROM products WHERE id = ?"),
        &[Value::Integer(id)],
    )
}

/// Applies `patch`, bumping the version, if the product exists at one of the `expected`
/// versions (any version when `None`). A stock change sets the product's only level and is
/// written to the ledger as a `set`; a product with no level or several has no one stock to
/// set (`LocationRequired`, before the version is looked at), and a stock change needs an
/// `expected` version (`VersionRequired`).
pub fn update(
    tx: &Tx<'_>,
    id: i64,
    patch: &ProductPatch,
    expected: Option<&[i64]>,
) -> Result<WriteOutcome<Product>, StoreError> {
    let Some(before) = get(tx, id)? else {
        return Ok(WriteOutcome::NotFound);
    };
    let mut level = None;
    if let Some(stock) = patch.stock {
        let found = levels::read(tx, &[id])?;
        match found.get(&id).map(|product| product.levels.as_slice()) {
            Some([only]) => level = Some((only.clone(), stock.get())),
            _ => return Ok(WriteOutcome::LocationRequired),
        }
        if expected.is_none() {
            return Ok(WriteOutcome::VersionRequired);
        }
    }
    if expected.is_some_and(|versions| !versions.contains(&before.version)) {
        return Ok(WriteOutcome::VersionMismatch(Box::new(before)));
    }
    if let Some((level, stock)) = &level {
        levels::set(tx, id, &level.location_id, *stock)?;
    }
    let (sets, mut params) = assignments(patch);
    params.push(Value::Integer(id));
    let sql = format!(
        "UPDATE products SET {}version = version + 1, updated_at = {NOW} WHERE id = ? RETURNING {COLUMNS}",
        sets.iter().map(|set| format!("{set}, ")).collect::<String>()
    );
    let after = one(tx, &sql, &params)?
        .ok_or_else(|| StoreError::Corrupt("UPDATE returned no row".into()))?;
    let mut told = Vec::new();
    if patch.changes_more_than_stock() {
        told.push(after.event(EventType::ProductUpdated));
    }
    let mut changes = Vec::new();
    if let Some((level, stock)) = level.filter(|(level, stock)| level.stock != *stock) {
        let change = LevelChange {
            location_id: level.location_id,
            stock: (level.stock, stock),
            reserved: (level.reserved, level.reserved),
        };
        changes.push((
            after.changed_from(before.totals(), vec![change]),
            StockCause::Set,
        ));
    }
    ledger::record(tx, &changes, &Context::default(), Told::Before(told))?;
    Ok(WriteOutcome::Done(after))
}

/// What a write of stock needs of a product after it: its sku and new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bumped {
    pub id: i64,
    pub sku: Option<String>,
    pub version: i64,
}

impl Bumped {
    /// The change that left the product with `after`, from `before`, with the levels it
    /// changed.
    pub fn changed(
        &self,
        before: Totals,
        after: Totals,
        levels: Vec<LevelChange>,
    ) -> StockChange<'_> {
        StockChange {
            product_id: self.id,
            sku: self.sku.as_deref(),
            stock: (before.stock, after.stock),
            reserved: (before.reserved, after.reserved),
            available: (before.available, after.available),
            version: self.version,
            levels,
        }
    }
}

/// Recomputes each of `ids`' stock from its levels and bumps its version: the products as
/// they now are, in one statement. The writes that change levels off the hot path (counts,
/// transfers, a location's deactivation) call it.
pub fn refresh(tx: &Tx<'_>, ids: &[i64]) -> Result<Vec<Product>, StoreError> {
    let marks = vec!["?"; ids.len()].join(", ");
    let params: Vec<Value> = ids.iter().copied().map(Value::Integer).collect();
    let result = tx.query(
        &format!(
            concat!(
                "UPDATE products SET stock = ",
                active_total!(),
                ", version = version + 1, updated_at = {now} WHERE id IN ({marks})                  RETURNING {columns}"
            ),
            now = NOW,
            marks = marks,
            columns = COLUMNS
        ),
        &params,
    )?;
    let products = rows(&result)
        .map(|row| Product::from_row(&row))
        .collect::<Result<Vec<_>, _>>();
    products
}

/// The `SET` clauses of a patch, and their parameters, in order.
fn assignments(patch: &ProductPatch) -> (Vec<&'static str>, Vec<Value>) {
    let mut sets = Vec::new();
    let mut params = Vec::new();
    let mut set = |clause, value| {
        sets.push(clause);
        params.push(value);
    };
    if let Some(name) = &patch.name {
        set("name = ?", Value::Text(name.as_str().to_owned()));
    }
    if let Some(description) = &patch.description {
        set(
            "description = ?",
            Value::Text(description.as_str().to_owned()),
        );
    }
    if let Some(price) = patch.price {
        set("price_cents = ?", Value::Integer(price.cents()));
    }
    if let Some(category_id) = patch.category_id {
        set("category_id = ?", opt_int(category_id.map(|c| c.get())));
    }
    if let Some(sku) = &patch.sku {
        set("sku = ?", opt_text(sku.as_ref().map(|s| s.as_str())));
    }
    if patch.stock.is_some() {
        // The level is set first; the product keeps the sum of its levels.
        sets.push(concat!("stock = ", active_total!()));
    }
    (sets, params)
}

/// Deletes the product if it exists at one of the `expected` versions (any version when
/// `None`) and no active hold has any of its units (a hold's commit must find its product).
/// Its ledger stays: it is history.
pub fn delete(
    tx: &Tx<'_>,
    id: i64,
    expected: Option<&[i64]>,
) -> Result<WriteOutcome<()>, StoreError> {
    let Some(product) = get(tx, id)? else {
        return Ok(WriteOutcome::NotFound);
    };
    if expected.is_some_and(|versions| !versions.contains(&product.version)) {
        return Ok(WriteOutcome::VersionMismatch(Box::new(product)));
    }
    if product.reserved > 0 {
        return Ok(WriteOutcome::Held(product.reserved));
    }
    tx.exec("DELETE FROM products WHERE id = ?", &[Value::Integer(id)])?;
    levels::forget(tx, id)?;
    outbox::write(tx, &[product.deleted_event()])?;
    Ok(WriteOutcome::Done(()))
}

/// Filters of the product list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub category_id: Option<i64>,
    /// Name contains this, ignoring ASCII case.
    pub name_contains: Option<String>,
    /// Whether anything is available (at `locations`, when named).
    pub in_stock: Option<bool>,
    /// Only products with a level at one of these (active) locations, seen from them.
    pub locations: Option<Vec<String>>,
}

/// One page of products ordered by id, and the total matching the filter.
pub fn list(
    db: &Db,
    filter: &ListFilter,
    page: i64,
    limit: i64,
) -> Result<(Vec<Product>, i64), StoreError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(category_id) = filter.category_id {
        conditions.push("category_id = ?");
        params.push(Value::Integer(category_id));
    }
    if let Some(q) = &filter.name_contains {
        conditions.push("name LIKE ? ESCAPE '\\'");
        params.push(Value::Text(format!("%{}%", escape_like(q))));
    }
    let mut owned: Vec<String> = Vec::new();
    match &filter.locations {
        None => {
            // In stock: something is available at an active location.
            const AVAILABLE: &str = any_available!();
            const NONE_AVAILABLE: &str = concat!("NOT ", any_available!());
            match filter.in_stock {
                Some(true) => owned.push(AVAILABLE.to_owned()),
                Some(false) => owned.push(NONE_AVAILABLE.to_owned()),
                None => {}
            }
        }
        Some(locations) => {
            let marks = vec!["?"; locations.len()].join(", ");
            owned.push(format!(
                "EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = products.id \
                 AND s.location_id IN ({marks}))"
            ));
            params.extend(locations.iter().map(|l| Value::Text(l.clone())));
            if let Some(in_stock) = filter.in_stock {
                owned.push(format!(
                    concat!(
                        "{not}EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = products.id \
                         AND s.location_id IN ({marks}) AND s.stock > ",
                        level_reserved!(),
                        ")"
                    ),
                    not = if in_stock { "" } else { "NOT " },
                    marks = marks
                ));
                params.extend(locations.iter().map(|l| Value::Text(l.clone())));
            }
        }
    }
    conditions.extend(owned.iter().map(String::as_str));
    let from = format!("products{}", where_all(&conditions));
    let (result, total) = db.page(COLUMNS, &from, "id", &params, (page, limit))?;
    let items = rows(&result)
        .map(|row| {
            Product::from_row(&row).map(|product| match &filter.locations {
                Some(locations) => product.narrowed(locations),
                None => product,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((items, total))
}

/// Makes `%`, `_` and `\` match themselves in a LIKE pattern.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_search_match_themselves() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
