//! Checkout holds (`migrations/0004_reservations.sql`). A hold takes units out of its
//! products' `available` until it is committed (the units are deducted), released, or it
//! expires; an expired hold stops counting the instant `expires_at` passes, by the
//! database's clock, with no job to run (`held::reserved!`).
//!
//! A hold and its commit take stock on the one path every taking follows (`stock::take`),
//! inside the caller's write transaction, so no interleaving of holds, commits, releases,
//! deducts and stock counts sells a unit twice. This module owns the holds themselves
//! (`reservations`); what they hold is `held`'s.

use crate::store::spin::Value;

use crate::domain::allocation::{Split, Strategy};
use crate::domain::reservation::{NewReservation, TtlSeconds};
use crate::domain::stock::ProductTotal;
use crate::ids;
use crate::store::db::{now_ms, rows, where_all, Db, Row, StoreError, Tx, NOW_MS};
use crate::store::events::{Event, EventType};
use crate::store::held::{self, held_lines, HeldLine, Line};
use crate::store::ledger::Context;
use crate::store::stock::{self, How, Refusal, Taken, Taking};

/// Finished holds are kept this long, then removed.
const FINISHED_KEPT_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Finished holds removed per write, so clean-up never makes one request slow.
const SWEEP_BATCH: i64 = 16;

/// The prefix of a hold's id (`res_...`).
const ID_PREFIX: &str = "res";

/// A hold's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Committed,
    Released,
    Expired,
}

impl Status {
    const ALL: [Self; 4] = [Self::Active, Self::Committed, Self::Released, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    /// The status named `text`, as stored and as clients name it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// A hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub order_id: String,
    pub status: Status,
    /// Unix ms, by the database's clock.
    pub expires_at: i64,
    /// Unix ms, by the database's clock.
    pub created_at: i64,
    /// In the order they were named, each with where its units are held.
    pub lines: Vec<HeldLine>,
}

impl Hold {
    fn event(&self, kind: EventType, lines: &[HeldLine]) -> Event {
        let lines: Vec<(i64, i64, &[_])> = lines
            .iter()
            .map(|line| (line.product_id, line.quantity, line.allocations.as_slice()))
            .collect();
        Event::reservation(kind, &self.id, &self.order_id, &lines)
    }
}

/// Whether `id` could be a hold's id (`res_` and lower-case hex).
pub fn is_id(id: &str) -> bool {
    ids::is_prefixed(ID_PREFIX, id)
}

/// The columns of a hold, with its status as of now, and its lines (`held_lines!`).
const HOLD_COLUMNS: &str = concat!(
    "id, order_id, CASE WHEN status = 'active' AND expires_at <= ",
    now_ms!(),
    " THEN 'expired' ELSE status END, expires_at, created_at, ",
    held_lines!("reservations.id")
);

fn hold_from_row(row: &Row<'_>) -> Result<Hold, StoreError> {
    let status = row.text(2)?;
    let lines = held::parse_lines(&row.text(5)?)?;
    Ok(Hold {
        id: row.text(0)?,
        order_id: row.text(1)?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("a hold's status is {status:?}")))?,
        expires_at: row.int(3)?,
        created_at: row.int(4)?,
        lines,
    })
}

/// The hold `id`, with its lines, if there is one.
pub fn get(db: &Db, id: &str) -> Result<Option<Hold>, StoreError> {
    let result = db.query(
        &format!("SELECT {HOLD_COLUMNS} FROM reservations WHERE id = ?"),
        &[Value::Text(id.to_owned())],
    )?;
    let hold = rows(&result)
        .next()
        .map(|row| hold_from_row(&row))
        .transpose();
    hold
}

/// Holds every line of `new` or none, for `new.ttl` from now.
pub fn create(tx: &Tx<'_>, new: &NewReservation) -> Result<Result<Hold, Refusal>, StoreError> {
    sweep(tx)?;
    let id = ids::prefixed(ID_PREFIX);
    let result = tx.query(
        &format!(
            "INSERT INTO reservations (id, order_id, status, expires_at, created_at) \
             VALUES (?, ?, 'active', {NOW_MS} + ?, {NOW_MS}) RETURNING expires_at, created_at"
        ),
        &[
            Value::Text(id.clone()),
            Value::Text(new.order_id.as_str().to_owned()),
            Value::Integer(new.ttl.get().saturating_mul(1000)),
        ],
    )?;
    let (expires_at, created_at) = rows(&result)
        .next()
        .map(|row| Ok::<_, StoreError>((row.int(0)?, row.int(1)?)))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    let mut hold = Hold {
        id,
        order_id: new.order_id.as_str().to_owned(),
        status: Status::Active,
        expires_at,
        created_at,
        lines: Vec::new(),
    };
    let lines = stock::wants(&new.lines);
    // The hold's event names where its units are held, which the taking decides: it is
    // written with the taking's own, built from what the taking took.
    let taking = Taking {
        lines: &lines,
        how: How::Hold {
            reservation: &hold.id,
            until: expires_at,
        },
        strategy: new.strategy,
        split: new.split,
        context: Context {
            order_id: Some(&hold.order_id),
            ..Context::default()
        },
        told: Vec::new(),
    };
    let taken = match stock::take_then(tx, taking, |taken| {
        let lines = held_lines_of(taken);
        vec![hold.event(EventType::ReservationCreated, &lines)]
    })? {
        Ok(taken) => taken,
        Err(refusal) => {
            // Nothing was held: the hold is not kept (its refusal may be, as an answer).
            tx.exec(
                "DELETE FROM reservations WHERE id = ?",
                &[Value::Text(hold.id.clone())],
            )?;
            return Ok(Err(refusal));
        }
    };
    hold.lines = held_lines_of(&taken);
    Ok(Ok(hold))
}

/// How a commit ended. Only `Committed` changed anything.
#[derive(Debug)]
pub enum CommitOutcome {
    /// Committed now: the hold, and each of its products after the commit with what it took
    /// (a product a partial commit did not name took 0: its units were given back).
    Committed {
        hold: Hold,
        lines: Vec<Taken>,
    },
    /// Committed before: the answer kept with it (`keep_commit_answer`).
    AlreadyCommitted(String),
    /// Released or expired: nothing to commit.
    Inactive(Status),
    NotFound,
    /// The lines that name a product the hold does not hold, or more than it holds.
    NotHeld(Vec<String>),
    /// A product of the hold no longer exists. The hold stays active.
    Gone(i64),
    /// Products of the hold whose stock no longer covers the commit (a stock count set it
    /// below what was held): `available` is what is on hand. The hold stays active.
    Short(Vec<crate::domain::stock::Shortfall>),
}

/// Commits an active hold: `partial` units of each product named (all it holds when
/// `None`), deducted in this transaction; the rest given back.
pub fn commit(
    tx: &Tx<'_>,
    id: &str,
    partial: Option<&[ProductTotal]>,
    context: &Context<'_>,
) -> Result<CommitOutcome, StoreError> {
    let Some(hold) = get(tx, id)? else {
        return Ok(CommitOutcome::NotFound);
    };
    match hold.status {
        Status::Active => {}
        Status::Committed => return commit_answer(tx, id).map(CommitOutcome::AlreadyCommitted),
        inactive => return Ok(CommitOutcome::Inactive(inactive)),
    }
    let amounts = match commit_amounts(&hold, partial) {
        Ok(amounts) => amounts,
        Err(problems) => return Ok(CommitOutcome::NotHeld(problems)),
    };
    let wants = stock::wants_anywhere(&amounts);
    let taking = Taking {
        lines: &wants,
        how: How::Commit {
            reservation: id,
            held: &hold.lines,
        },
        strategy: Strategy::default(),
        split: Split::default(),
        context: Context {
            order_id: Some(&hold.order_id),
            ..*context
        },
        told: Vec::new(),
    };
    let told = |taken: &[Taken]| {
        let mut committed = held_lines_of(taken);
        committed.retain(|line| line.quantity > 0);
        vec![hold.event(EventType::ReservationCommitted, &committed)]
    };
    match stock::take_then(tx, taking, told)? {
        Ok(lines) => {
            end(tx, id, Status::Committed)?;
            Ok(CommitOutcome::Committed { hold, lines })
        }
        Err(Refusal::NotFound(ids)) => Ok(CommitOutcome::Gone(ids.first().copied().unwrap_or(0))),
        Err(Refusal::Short(lines)) => Ok(CommitOutcome::Short(lines)),
        // A commit names no location: it takes where its hold is.
        Err(Refusal::Locations(_)) => Err(StoreError::Corrupt("a commit named a location".into())),
    }
}

/// Each taken line as a hold's line: its product, its units, and where they were taken.
fn held_lines_of(taken: &[Taken]) -> Vec<HeldLine> {
    taken
        .iter()
        .map(|line| HeldLine {
            product_id: line.product_id,
            quantity: line.quantity,
            allocations: line.allocations.clone(),
        })
        .collect()
}

/// Keeps the answer of a hold's commit, for a second commit to give again.
pub fn keep_commit_answer(tx: &Tx<'_>, id: &str, answer: &str) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE reservations SET commit_answer = ? WHERE id = ?",
        &[Value::Text(answer.to_owned()), Value::Text(id.to_owned())],
    )
}

/// The answer kept with a hold's commit.
fn commit_answer(db: &Db, id: &str) -> Result<String, StoreError> {
    let result = db.query(
        "SELECT commit_answer FROM reservations WHERE id = ?",
        &[Value::Text(id.to_owned())],
    )?;
    let answer = rows(&result)
        .next()
        .map(|row| row.text(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt(format!("hold {id} has no commit answer")));
    answer
}

/// What to commit of each product of `hold`, in its order: `partial`'s totals (a product
/// not named commits 0), or everything held. Each problem of `partial`, as text.
fn commit_amounts(hold: &Hold, partial: Option<&[ProductTotal]>) -> Result<Vec<Line>, Vec<String>> {
    let mut problems = Vec::new();
    for total in partial.unwrap_or_default() {
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
        .map(|line| Line {
            product_id: line.product_id,
            quantity: match partial {
                None => line.quantity,
                Some(partial) => partial
                    .iter()
                    .find(|total| total.product_id.get() == line.product_id)
                    .map_or(0, |total| total.quantity),
            },
        })
        .collect())
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
pub fn release(tx: &Tx<'_>, id: &str) -> Result<EndOutcome, StoreError> {
    let Some(mut hold) = get(tx, id)? else {
        return Ok(EndOutcome::NotFound);
    };
    match hold.status {
        Status::Active => {}
        Status::Committed => return Ok(EndOutcome::Inactive(Status::Committed)),
        Status::Released | Status::Expired => return Ok(EndOutcome::Done(hold)),
    }
    let context = Context {
        order_id: Some(&hold.order_id),
        ..Context::default()
    };
    let released = hold.event(EventType::ReservationReleased, &hold.lines);
    stock::give_back(tx, id, &hold.lines, vec![released], &context)?;
    end(tx, id, Status::Released)?;
    hold.status = Status::Released;
    Ok(EndOutcome::Done(hold))
}

/// An active hold now expires `ttl` from now. Its units stay held; nothing else changes.
pub fn extend(tx: &Tx<'_>, id: &str, ttl: TtlSeconds) -> Result<EndOutcome, StoreError> {
    let Some(mut hold) = get(tx, id)? else {
        return Ok(EndOutcome::NotFound);
    };
    if hold.status != Status::Active {
        return Ok(EndOutcome::Inactive(hold.status));
    }
    let result = tx.query(
        &format!(
            "UPDATE reservations SET expires_at = {NOW_MS} + ? WHERE id = ? RETURNING expires_at"
        ),
        &[
            Value::Integer(ttl.get().saturating_mul(1000)),
            Value::Text(id.to_owned()),
        ],
    )?;
    hold.expires_at = rows(&result)
        .next()
        .map(|row| row.int(0))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("an extended hold is gone".into()))?;
    held::extend(tx, id, hold.expires_at)?;
    Ok(EndOutcome::Done(hold))
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
    let holds = rows(&result)
        .map(|row| hold_from_row(&row))
        .collect::<Result<Vec<_>, _>>()?;
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
    db.transaction(|tx| {
        let result = tx.query(
            &format!(
                "SELECT {HOLD_COLUMNS} FROM reservations \
                 WHERE status = 'active' AND expires_at <= {NOW_MS} ORDER BY expires_at LIMIT ?"
            ),
            &[Value::Integer(limit)],
        )?;
        let expired = rows(&result)
            .map(|row| hold_from_row(&row))
            .collect::<Result<Vec<_>, _>>()?;
        let mut events = Vec::with_capacity(expired.len());
        for hold in &expired {
            held::end(tx, &hold.id, &[])?;
            end(tx, &hold.id, Status::Expired)?;
            events.push(hold.event(EventType::ReservationExpired, &hold.lines));
        }
        crate::store::outbox::write(tx, &events)?;
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

/// A hold has ended, `status`, now (its lines no longer hold: `held::end`).
fn end(tx: &Tx<'_>, id: &str, status: Status) -> Result<(), StoreError> {
    tx.exec(
        &format!("UPDATE reservations SET status = ?, finished_at = {NOW_MS} WHERE id = ?"),
        &[
            Value::Text(status.as_str().to_owned()),
            Value::Text(id.to_owned()),
        ],
    )
}

/// Removes a few holds finished more than a week ago, and their lines; every new hold calls
/// it.
fn sweep(tx: &Tx<'_>) -> Result<(), StoreError> {
    let result = tx.query(
        &format!(
            "DELETE FROM reservations WHERE id IN (SELECT id FROM reservations \
             WHERE finished_at < {NOW_MS} - {FINISHED_KEPT_MILLIS} LIMIT {SWEEP_BATCH}) \
             RETURNING id"
        ),
        &[],
    )?;
    let removed: Vec<String> = rows(&result)
        .map(|row| row.text(0))
        .collect::<Result<_, _>>()?;
    held::forget(tx, &removed)
}
