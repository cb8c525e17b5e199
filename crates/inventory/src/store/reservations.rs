//! Checkout holds (`migrations/0004_reservations.sql`). A hold takes units out of its
//! products' `available` until it is committed (the units are deducted), released, or it
//! expires; an expired hold stops counting the instant `expires_at` passes, by the
//! database's clock, with no job to run: a product's `reserved` counts only lines whose
//! `holds_until` is in the future (`products::reserved!`).
//!
//! Every change runs inside the caller's write transaction (`BEGIN IMMEDIATE`), checks what
//! is available in it, and writes its events (and, for a commit, its ledger rows) in it, so
//! no interleaving of holds, commits, releases, deducts and stock counts sells a unit twice.

use serde::Serialize;
use spin_sdk::sqlite::Value;

use crate::domain::reservation::{NewReservation, TtlSeconds};
use crate::domain::stock::{ProductTotal, Shortfall};
use crate::store::db::{now_ms, rows, where_all, Db, Row, StoreError, NOW, NOW_MS};
use crate::store::events::{Event, EventType, StockCause, StockChange};
use crate::store::outbox;
use crate::store::products::{self, Product};
pub use crate::store::stock::Context;
use crate::store::stock::{self, Availability};
use crate::time;

/// Finished holds are kept this long, then removed.
const FINISHED_KEPT_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Finished holds removed per write, so clean-up never makes one request slow.
const SWEEP_BATCH: i64 = 16;

/// A hold's status, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Committed,
    Released,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

/// A hold, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub id: String,
    pub order_id: String,
    pub status: Status,
    /// RFC 3339, milliseconds.
    pub expires_at: String,
    pub created_at: String,
    pub lines: Vec<HoldLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HoldLine {
    pub product_id: i64,
    pub quantity: i64,
}

impl Hold {
    fn line_pairs(&self) -> Vec<(i64, i64)> {
        self.lines
            .iter()
            .map(|line| (line.product_id, line.quantity))
            .collect()
    }
}

/// The answer to a commit: recorded with it, and given again to a second commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    pub id: String,
    pub status: Status,
    pub order_id: String,
    pub lines: Vec<CommittedLine>,
}

/// A product's quantities after a commit took `deducted` units of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedLine {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub deducted: i64,
}

/// The columns of a hold, with its status as of now.
const HOLD_COLUMNS: &str = concat!(
    "id, order_id, CASE WHEN status = 'active' AND expires_at <= ",
    now_ms!(),
    " THEN 'expired' ELSE status END, expires_at, created_at"
);

fn hold_from_row(row: &Row<'_>) -> Result<Hold, StoreError> {
    let status = match row.text(2)?.as_str() {
        "active" => Status::Active,
        "committed" => Status::Committed,
        "released" => Status::Released,
        "expired" => Status::Expired,
        other => return Err(StoreError::Corrupt(format!("a hold's status is {other:?}"))),
    };
    Ok(Hold {
        id: row.text(0)?,
        order_id: row.text(1)?,
        status,
        expires_at: time::rfc3339_millis(row.int(3)?),
        created_at: time::rfc3339_seconds(row.int(4)?),
        lines: Vec::new(),
    })
}

/// The hold `id`, with its lines, if there is one.
pub fn get(db: &Db, id: &str) -> Result<Option<Hold>, StoreError> {
    let result = db.query(
        &format!("SELECT {HOLD_COLUMNS} FROM reservations WHERE id = ?"),
        &[Value::Text(id.to_owned())],
    )?;
    let Some(mut hold) = rows(&result)
        .next()
        .map(|row| hold_from_row(&row))
        .transpose()?
    else {
        return Ok(None);
    };
    hold.lines = lines(db, id)?;
    Ok(Some(hold))
}

/// A hold's lines, in the order they were named.
fn lines(db: &Db, id: &str) -> Result<Vec<HoldLine>, StoreError> {
    let result = db.query(
        "SELECT product_id, quantity FROM reservation_lines WHERE reservation_id = ? ORDER BY rowid",
        &[Value::Text(id.to_owned())],
    )?;
    let lines = rows(&result)
        .map(|row| {
            Ok(HoldLine {
                product_id: row.int(0)?,
                quantity: row.int(1)?,
            })
        })
        .collect();
    lines
}

/// How a new hold ended. Only `Held` changed anything.
#[derive(Debug)]
pub enum CreateOutcome {
    Held(Hold),
    /// These products do not exist.
    NotFound(Vec<i64>),
    /// Every product that has less available than asked.
    Short(Vec<Shortfall>),
}

/// Holds every product's total or none, for `new.ttl` from now.
pub fn create(db: &Db, new: &NewReservation) -> Result<CreateOutcome, StoreError> {
    sweep(db)?;
    let totals = new.totals();
    match stock::check_available(db, &totals)? {
        Availability::Enough => {}
        Availability::NotFound(ids) => return Ok(CreateOutcome::NotFound(ids)),
        Availability::Short(lines) => return Ok(CreateOutcome::Short(lines)),
    }
    let id = new_id();
    let result = db.query(
        &format!(
            "INSERT INTO reservations (id, order_id, status, expires_at, created_at) \
             VALUES (?, ?, 'active', {NOW_MS} + ?, {NOW_MS}) RETURNING expires_at"
        ),
        &[
            Value::Text(id.clone()),
            Value::Text(new.order_id.as_str().to_owned()),
            Value::Integer(new.ttl.get().saturating_mul(1000)),
        ],
    )?;
    let expires_at = rows(&result)
        .next()
        .map(|row| row.int(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    for total in &totals {
        let before = existing(db, total.product_id.get())?;
        db.exec(
            "INSERT INTO reservation_lines (reservation_id, product_id, quantity, holds_until) \
             VALUES (?, ?, ?, ?)",
            &[
                Value::Text(id.clone()),
                Value::Integer(total.product_id.get()),
                Value::Integer(total.quantity),
                Value::Integer(expires_at),
            ],
        )?;
        touched(db, &before, StockCause::Held, new.order_id.as_str())?;
    }
    let hold = get(db, &id)?.ok_or_else(|| StoreError::Corrupt("a new hold is gone".into()))?;
    outbox::write(
        db,
        &[Event::reservation(
            EventType::ReservationCreated,
            &hold.id,
            &hold.order_id,
            &hold.line_pairs(),
        )],
    )?;
    Ok(CreateOutcome::Held(hold))
}

/// How a commit ended. Only `Committed` (the first time) changed anything.
#[derive(Debug)]
pub enum CommitOutcome {
    /// The answer (the same to every commit of the hold).
    Committed(Committed),
    /// Released or expired: nothing to commit.
    Inactive(Status),
    NotFound,
    /// The lines that name a product the hold does not hold, or more than it holds.
    NotHeld(Vec<String>),
    /// Products of the hold whose stock no longer covers the commit (a stock count set it
    /// below what was held): `available` is what is on hand. The hold stays active.
    Short(Vec<Shortfall>),
    /// A product of the hold no longer exists. The hold stays active.
    Gone(i64),
}

/// Commits an active hold: `partial` units of each product named (all it holds when
/// `None`), deducted in this transaction with one ledger row per product; the rest released.
pub fn commit(
    db: &Db,
    id: &str,
    partial: Option<&[ProductTotal]>,
    context: &Context<'_>,
) -> Result<CommitOutcome, StoreError> {
    let Some(hold) = get(db, id)? else {
        return Ok(CommitOutcome::NotFound);
    };
    match hold.status {
        Status::Active => {}
        Status::Committed => return committed_answer(db, id).map(CommitOutcome::Committed),
        inactive => return Ok(CommitOutcome::Inactive(inactive)),
    }
    let amounts = match commit_amounts(&hold, partial) {
        Ok(amounts) => amounts,
        Err(problems) => return Ok(CommitOutcome::NotHeld(problems)),
    };
    let mut befores = Vec::with_capacity(amounts.len());
    let mut short = Vec::new();
    for &(product_id, quantity) in &amounts {
        let Some(before) = products::get(db, product_id)? else {
            return Ok(CommitOutcome::Gone(product_id));
        };
        if before.stock < quantity {
            short.push(Shortfall {
                product_id,
                requested: quantity,
                available: before.stock,
            });
        }
        befores.push(before);
    }
    if !short.is_empty() {
        return Ok(CommitOutcome::Short(short));
    }
    end(db, id, "committed")?;
    let order_id = Some(hold.order_id.as_str());
    let context = Context {
        order_id,
        ..*context
    };
    let mut lines = Vec::new();
    for (before, &(product_id, quantity)) in befores.iter().zip(&amounts) {
        db.exec(
            "UPDATE reservation_lines SET committed = ? WHERE reservation_id = ? AND product_id = ?",
            &[
                Value::Integer(quantity),
                Value::Text(id.to_owned()),
                Value::Integer(product_id),
            ],
        )?;
        if quantity == 0 {
            // Not named by a partial commit: released.
            touched(db, before, StockCause::Released, &hold.order_id)?;
            continue;
        }
        let after = take(db, product_id, quantity)?;
        let change = StockChange::of(&after, before.stock, before.reserved);
        stock::record(db, &change, StockCause::Deducted, &context)?;
        lines.push(CommittedLine {
            product_id,
            stock: after.stock,
            reserved: after.reserved,
            available: after.available,
            deducted: quantity,
        });
    }
    let answer = Committed {
        id: hold.id.clone(),
        status: Status::Committed,
        order_id: hold.order_id.clone(),
        lines,
    };
    let text = serde_json::to_string(&answer)
        .map_err(|err| StoreError::Corrupt(format!("a commit's answer: {err}")))?;
    db.exec(
        "UPDATE reservations SET commit_answer = ? WHERE id = ?",
        &[Value::Text(text), Value::Text(id.to_owned())],
    )?;
    let committed: Vec<(i64, i64)> = answer
        .lines
        .iter()
        .map(|line| (line.product_id, line.deducted))
        .collect();
    outbox::write(
        db,
        &[Event::reservation(
            EventType::ReservationCommitted,
            &hold.id,
            &hold.order_id,
            &committed,
        )],
    )?;
    Ok(CommitOutcome::Committed(answer))
}

/// What to commit of each product of `hold`: `partial`'s totals (a product not named
/// commits nothing), or everything held. Each problem of `partial`, as text.
fn commit_amounts(
    hold: &Hold,
    partial: Option<&[ProductTotal]>,
) -> Result<Vec<(i64, i64)>, Vec<String>> {
    let Some(partial) = partial else {
        return Ok(hold.line_pairs());
    };
    let mut problems = Vec::new();
    for total in partial {
        let id = total.product_id.get();
        match hold.lines.iter().find(|line| line.product_id == id) {
            None => problems.push(format!("product {id} is not held by this reservation")),
            Some(line) if line.quantity < total.quantity => problems.push(format!(
                "product {id}: {} to commit, {} held",
                total.quantity, line.quantity
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(hold
        .lines
        .iter()
        .map(|line| {
            let named = partial
                .iter()
                .find(|total| total.product_id.get() == line.product_id);
            (line.product_id, named.map_or(0, |total| total.quantity))
        })
        .collect())
}

/// The answer recorded with a hold's commit.
fn committed_answer(db: &Db, id: &str) -> Result<Committed, StoreError> {
    let result = db.query(
        "SELECT commit_answer FROM reservations WHERE id = ?",
        &[Value::Text(id.to_owned())],
    )?;
    let text = rows(&result)
        .next()
        .map(|row| row.text(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt(format!("hold {id} has no commit answer")))?;
    serde_json::from_str::<CommittedRecord>(&text)
        .map(CommittedRecord::into_answer)
        .map_err(|err| StoreError::Corrupt(format!("hold {id}'s commit answer: {err}")))
}

/// A recorded commit answer, read back.
#[derive(serde::Deserialize)]
struct CommittedRecord {
    id: String,
    order_id: String,
    lines: Vec<CommittedLineRecord>,
}

#[derive(serde::Deserialize)]
struct CommittedLineRecord {
    product_id: i64,
    stock: i64,
    reserved: i64,
    available: i64,
    deducted: i64,
}

impl CommittedRecord {
    fn into_answer(self) -> Committed {
        Committed {
            id: self.id,
            status: Status::Committed,
            order_id: self.order_id,
            lines: self
                .lines
                .into_iter()
                .map(|l| CommittedLine {
                    product_id: l.product_id,
                    stock: l.stock,
                    reserved: l.reserved,
                    available: l.available,
                    deducted: l.deducted,
                })
                .collect(),
        }
    }
}

/// How a release or an extension ended.
#[derive(Debug)]
pub enum EndOutcome {
    /// The hold as it now is (for a release of a released or expired hold: unchanged).
    Done(Hold),
    /// Committed (release) or no longer active (extension): nothing changed.
    Inactive(Status),
    NotFound,
}

/// Releases an active hold: its units are available again. A released or expired hold is
/// left as it is; a committed one is refused (the sale is done: restock instead).
pub fn release(db: &Db, id: &str) -> Result<EndOutcome, StoreError> {
    let Some(hold) = get(db, id)? else {
        return Ok(EndOutcome::NotFound);
    };
    match hold.status {
        Status::Active => {}
        Status::Committed => return Ok(EndOutcome::Inactive(Status::Committed)),
        Status::Released | Status::Expired => return Ok(EndOutcome::Done(hold)),
    }
    let mut befores = Vec::new();
    for line in &hold.lines {
        befores.extend(products::get(db, line.product_id)?);
    }
    end(db, id, "released")?;
    for before in &befores {
        touched(db, before, StockCause::Released, &hold.order_id)?;
    }
    outbox::write(
        db,
        &[Event::reservation(
            EventType::ReservationReleased,
            &hold.id,
            &hold.order_id,
            &hold.line_pairs(),
        )],
    )?;
    get(db, id)?
        .map(EndOutcome::Done)
        .ok_or_else(|| StoreError::Corrupt("a released hold is gone".into()))
}

/// An active hold now expires `ttl` from now. Its units stay held; nothing else changes.
pub fn extend(db: &Db, id: &str, ttl: TtlSeconds) -> Result<EndOutcome, StoreError> {
    let Some(hold) = get(db, id)? else {
        return Ok(EndOutcome::NotFound);
    };
    if hold.status != Status::Active {
        return Ok(EndOutcome::Inactive(hold.status));
    }
    let until = Value::Integer(ttl.get().saturating_mul(1000));
    db.exec(
        &format!("UPDATE reservations SET expires_at = {NOW_MS} + ? WHERE id = ?"),
        &[until.clone(), Value::Text(id.to_owned())],
    )?;
    db.exec(
        "UPDATE reservation_lines SET holds_until = \
         (SELECT expires_at FROM reservations WHERE id = ?1) WHERE reservation_id = ?1",
        &[Value::Text(id.to_owned())],
    )?;
    get(db, id)?
        .map(EndOutcome::Done)
        .ok_or_else(|| StoreError::Corrupt("an extended hold is gone".into()))
}

/// Which holds to list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub order_id: Option<String>,
    pub status: Option<Status>,
}

/// A page of holds, newest first, and how many match.
pub fn list(
    db: &Db,
    filter: &ListFilter,
    page: i64,
    limit: i64,
) -> Result<(Vec<Hold>, i64), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(order_id) = &filter.order_id {
        conditions.push("order_id = ?".into());
        params.push(Value::Text(order_id.clone()));
    }
    match filter.status {
        Some(Status::Active) => {
            conditions.push(format!("status = 'active' AND expires_at > {NOW_MS}"));
        }
        Some(Status::Expired) => conditions.push(format!(
            "(status = 'expired' OR (status = 'active' AND expires_at <= {NOW_MS}))"
        )),
        Some(status) => {
            conditions.push("status = ?".into());
            params.push(Value::Text(status.as_str().to_owned()));
        }
        None => {}
    }
    let from = format!("reservations{}", where_all(&conditions));
    let order = "created_at DESC, id DESC";
    let (result, total) = db.page(HOLD_COLUMNS, &from, order, &params, (page, limit))?;
    let mut holds = rows(&result)
        .map(|row| hold_from_row(&row))
        .collect::<Result<Vec<_>, _>>()?;
    for hold in &mut holds {
        hold.lines = lines(db, &hold.id)?;
    }
    Ok((holds, total))
}

/// Announces up to `limit` holds that expired and are not yet announced: `expired`, and a
/// `reservation.expired` event each. Their units were available from `expires_at` on; this
/// only tells the order services. One short transaction; returns how many.
pub fn announce_expired(db: &Db, limit: i64) -> Result<usize, StoreError> {
    // A read first: most looks find nothing, and need not take the write lock.
    let any = db.query(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM reservations \
             WHERE status = 'active' AND expires_at <= {NOW_MS})"
        ),
        &[],
    )?;
    if rows(&any).next().map(|row| row.int(0)).transpose()? != Some(1) {
        return Ok(0);
    }
    db.transaction(|db| {
        let result = db.query(
            &format!(
                "SELECT id, order_id FROM reservations \
                 WHERE status = 'active' AND expires_at <= {NOW_MS} ORDER BY expires_at LIMIT ?"
            ),
            &[Value::Integer(limit)],
        )?;
        let expired: Vec<(String, String)> = rows(&result)
            .map(|row| Ok((row.text(0)?, row.text(1)?)))
            .collect::<Result<_, StoreError>>()?;
        for (id, order_id) in &expired {
            let held: Vec<(i64, i64)> = lines(db, id)?
                .iter()
                .map(|line| (line.product_id, line.quantity))
                .collect();
            end(db, id, "expired")?;
            outbox::write(
                db,
                &[Event::reservation(
                    EventType::ReservationExpired,
                    id,
                    order_id,
                    &held,
                )],
            )?;
        }
        Ok(expired.len())
    })
}

/// When the first active hold expires (Unix ms, the database's clock), if any is active.
pub fn next_expiry(db: &Db) -> Result<Option<i64>, StoreError> {
    let result = db.query(
        "SELECT min(expires_at) FROM reservations WHERE status = 'active'",
        &[],
    )?;
    let next = rows(&result).next().map(|row| row.opt_int(0)).transpose()?;
    Ok(next.flatten())
}

/// How many holds are active now (for the metrics).
pub fn active_count(db: &Db) -> Result<i64, StoreError> {
    let result = db.query(
        &format!(
            "SELECT count(*) FROM reservations WHERE status = 'active' AND expires_at > {NOW_MS}"
        ),
        &[],
    )?;
    let count = rows(&result).next().map_or(Ok(0), |row| row.int(0));
    count
}

/// Ends a hold: its status, when it finished, and its lines no longer hold anything.
fn end(db: &Db, id: &str, status: &str) -> Result<(), StoreError> {
    db.exec(
        &format!("UPDATE reservations SET status = ?, finished_at = {NOW_MS} WHERE id = ?"),
        &[Value::Text(status.to_owned()), Value::Text(id.to_owned())],
    )?;
    db.exec(
        "UPDATE reservation_lines SET holds_until = NULL WHERE reservation_id = ?",
        &[Value::Text(id.to_owned())],
    )
}

/// A product that must exist (a hold's line is only written for one).
fn existing(db: &Db, product_id: i64) -> Result<Product, StoreError> {
    products::get(db, product_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("product {product_id} is gone")))
}

/// A hold changed the product's `reserved` (it was `before`): its version moves on, so its
/// ETag and its events' `version` move with it, and `available` crossing a threshold is an
/// event as by any route.
fn touched(
    db: &Db,
    before: &Product,
    cause: StockCause<'_>,
    order_id: &str,
) -> Result<Product, StoreError> {
    let after = products::one(
        db,
        &format!(
            "UPDATE products SET version = version + 1, updated_at = {NOW} WHERE id = ? \
             RETURNING {}",
            products::COLUMNS
        ),
        &[Value::Integer(before.id)],
    )?
    .ok_or_else(|| StoreError::Corrupt(format!("product {} is gone", before.id)))?;
    let change = StockChange::of(&after, before.stock, before.reserved);
    let context = Context {
        order_id: Some(order_id),
        idempotency_key: None,
    };
    stock::record(db, &change, cause, &context)?;
    Ok(after)
}

/// Takes `quantity` of a product's stock for a commit (its hold already ended, so the units
/// are no longer reserved; the caller checked the stock covers it).
fn take(db: &Db, product_id: i64, quantity: i64) -> Result<Product, StoreError> {
    products::one(
        db,
        &format!(
            "UPDATE products SET stock = stock - ?, version = version + 1, updated_at = {NOW} \
             WHERE id = ? AND stock >= ? RETURNING {}",
            products::COLUMNS
        ),
        &[
            Value::Integer(quantity),
            Value::Integer(product_id),
            Value::Integer(quantity),
        ],
    )?
    .ok_or_else(|| StoreError::Corrupt(format!("product {product_id} changed in a commit")))
}

/// Removes a few holds finished more than a week ago; every new hold calls it.
fn sweep(db: &Db) -> Result<(), StoreError> {
    let old = format!(
        "SELECT id FROM reservations WHERE finished_at < {NOW_MS} - {FINISHED_KEPT_MILLIS} \
         LIMIT {SWEEP_BATCH}"
    );
    db.exec(
        &format!("DELETE FROM reservation_lines WHERE reservation_id IN ({old})"),
        &[],
    )?;
    db.exec(
        &format!("DELETE FROM reservations WHERE id IN ({old})"),
        &[],
    )
}

/// `res_` and 32 lower-case hex digits: the time in milliseconds (12), then 80 random bits.
fn new_id() -> String {
    let random = wasi::random::random::get_random_bytes(10);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("res_{:012x}{hex}", time::now_millis())
}

/// Whether `id` could be a hold's id (`res_` and lower-case hex).
pub fn is_id(id: &str) -> bool {
    id.len() == 36
        && id.strip_prefix("res_").is_some_and(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_ids_are_res_and_32_hex_digits() {
        assert!(is_id("res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5c"));
        for bad in [
            "",
            "res_",
            "res_019A2B3C4D5E6F7A8B9C0D1E2F3A4B5C",
            "evt_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5c",
            "res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5",
            "res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5g",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }
}
