//! The outbox (`migrations/0003_outbox.sql`): events written in the transaction of the change
//! that caused them, one row per receiver, then claimed, delivered and recorded by the
//! notifier component. Delivery is at least once; per receiver and product, rows go out in
//! commit order. One notifier at a time is active (`notifier_state`): a change calls the
//! notifier after its response only when none is. When the next one is due, and who watches
//! the active one, is the app's clock (`notifier_clock`, `migrations/0005_notifier_clock.sql`).

use crate::store::spin::Value;

use crate::ids;
use crate::store::db::{rows, Db, Row, StoreError, Tx};
use crate::store::events::Event;
use crate::time;

/// A failing row is given up as `dead` this long after it was written (or redelivered).
pub const RETENTION_MILLIS: i64 = 72 * 60 * 60 * 1000;
/// Delivered rows are kept this long (to see what went out), then swept.
const DELIVERED_KEPT_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// The active notifier's heartbeat: it renews its role a few times a second, to now plus
/// this; one that stops (it died) loses the role within this.
pub const HEARTBEAT_MS: i64 = 3_000;
/// Delivered rows swept at a time, so a sweep is always short.
const SWEEP_BATCH: i64 = 500;

/// Writes `events` for every configured receiver, in one statement, inside the change's
/// transaction; the first write of a transaction also sets the app's clock (there is work
/// now: if the notifier the writer calls is not reached, the next request that opens the
/// database finds it due) and learns, in the same statement, whether a notifier is at work.
pub fn write(tx: &Tx<'_>, events: &[Event]) -> Result<(), StoreError> {
    let receivers = &tx.outbox_config()?.receivers;
    if receivers.is_empty() || events.is_empty() {
        return Ok(());
    }
    let now = time::now_millis();
    let timestamp = time::rfc3339_seconds(now);
    let mut params = Vec::with_capacity(events.len() * receivers.len() * 8);
    for event in events {
        let event_id = ids::prefixed("evt");
        let body = serde_json::json!({
            "type": event.kind.as_str(),
            "timestamp": timestamp,
            "data": event.data,
        })
        .to_string();
        for receiver in receivers {
            params.extend([
                Value::Text(event_id.clone()),
                Value::Text(receiver.clone()),
                Value::Text(event.kind.as_str().to_owned()),
                Value::Integer(event.product_id),
                Value::Text(body.clone()),
                Value::Integer(now),
                Value::Integer(now + RETENTION_MILLIS),
                Value::Text(timestamp.clone()),
            ]);
            tx.note_event_written();
        }
    }
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; events.len() * receivers.len()].join(", ");
    tx.exec(
        &format!(
            "INSERT INTO outbox (event_id, receiver, type, product_id, body, next_attempt_at, \
             expires_at, created_at) VALUES {values}"
        ),
        &params,
    )?;
    if tx.first_wake() {
        // Read inside the change's transaction, whether a notifier is active is exact: a
        // notifier standing down writes too, so it does so after the change commits, and
        // then looks for due rows once more, finding the change's.
        let active = tx.query(
            "UPDATE notifier_clock SET wake_at = min(coalesce(wake_at, ?1), ?1) \
             WHERE name = 'delivery' \
             RETURNING (SELECT active_until > ?1 FROM notifier_state WHERE name = 'delivery')",
            &[Value::Integer(now)],
        )?;
        if rows(&active)
            .next()
            .and_then(|row| row.opt_int(0).ok().flatten())
            == Some(1)
        {
            tx.note_notifier_active();
        }
    }
    Ok(())
}

/// A row to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub receiver: String,
    pub product_id: i64,
    pub body: String,
    /// Attempts before this one.
    pub attempts: i64,
    pub expires_at: i64,
}

/// Lines whose head (first pending row) is due and not leased, oldest first: each a
/// receiver and a product. A read, without the write lock (one pass over `outbox_line`).
pub fn due_lines(db: &Db, now: i64, limit: i64) -> Result<Vec<(String, i64)>, StoreError> {
    let heads = db.query(
        "SELECT o.receiver, o.product_id FROM outbox o JOIN \
           (SELECT min(id) AS id FROM outbox WHERE status = 'pending' \
            GROUP BY receiver, product_id) h ON o.id = h.id \
         WHERE o.next_attempt_at <= ?1 AND o.lease_until <= ?1 ORDER BY o.id LIMIT ?2",
        &[Value::Integer(now), Value::Integer(limit)],
    )?;
    let lines = rows(&heads)
        .map(|row| Ok((row.text(0)?, row.int(1)?)))
        .collect();
    lines
}

/// Leases the run at the head of one line until `lease_until` under `token`: its first
/// pending rows while they are due, at most `max`. Nothing if any of those rows is leased
/// already (another notifier is at this line), so a line is only ever delivered by one
/// notifier, in order. One short transaction; returned in id order.
pub fn claim_line(
    db: &Db,
    (receiver, product_id): (&str, i64),
    now: i64,
    lease_until: i64,
    token: &str,
    max: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let line = [Value::Text(receiver.to_owned()), Value::Integer(product_id)];
    db.transaction(|db| {
        let result = db.query(
            "SELECT id, next_attempt_at, lease_until FROM outbox \
             WHERE status = 'pending' AND receiver = ? AND product_id = ? ORDER BY id LIMIT ?",
            &[line[0].clone(), line[1].clone(), Value::Integer(max)],
        )?;
        let mut last = None;
        for row in rows(&result) {
            if row.int(2)? > now {
                return Ok(Vec::new());
            }
            if row.int(1)? > now {
                break;
            }
            last = Some(row.int(0)?);
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let leased = db.query(
            "UPDATE outbox SET lease_until = ?, lease_token = ? \
             WHERE status = 'pending' AND receiver = ? AND product_id = ? AND id <= ? \
             RETURNING id, event_id, receiver, product_id, body, attempts, expires_at",
            &[
                Value::Integer(lease_until),
                Value::Text(token.to_owned()),
                line[0].clone(),
                line[1].clone(),
                Value::Integer(last),
            ],
        )?;
        let mut run = rows(&leased)
            .map(|row| {
                Ok(Delivery {
                    id: row.int(0)?,
                    event_id: row.text(1)?,
                    receiver: row.text(2)?,
                    product_id: row.int(3)?,
                    body: row.text(4)?,
                    attempts: row.int(5)?,
                    expires_at: row.int(6)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        run.sort_by_key(|d| d.id);
        Ok(run)
    })
}

/// A token for one claim: 64 random bits as hex.
pub fn new_lease_token() -> String {
    ids::random_hex(8)
}

/// What became of a claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; tried again at `retry_at` (Unix ms), or `dead` if that is past its expiry.
    Failed {
        error: String,
        retry_at: i64,
    },
    /// Will never go out (its receiver is no longer configured): `dead` now.
    GivenUp {
        error: String,
    },
    /// Not attempted (a row ahead of it in its line failed): back to the queue as it was.
    Released,
}

/// Records the outcomes of a claim (`token`), in one transaction, and ends their leases. A
/// row whose lease has passed to another claim meanwhile is left to that one.
pub fn record(
    db: &Db,
    token: &str,
    outcomes: &[(Delivery, Outcome)],
    now: i64,
) -> Result<(), StoreError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    db.transaction(|db| {
        for (delivery, outcome) in outcomes {
            let (id, token) = (Value::Integer(delivery.id), Value::Text(token.to_owned()));
            match outcome {
                Outcome::Delivered => db.exec(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
                     lease_until = 0, lease_token = NULL, last_error = NULL, delivered_at = ? \
                     WHERE id = ? AND lease_token = ?",
                    &[Value::Integer(now), id, token],
                )?,
                Outcome::Failed { error, retry_at } => {
                    let status = if *retry_at > delivery.expires_at {
                        "dead"
                    } else {
                        "pending"
                    };
                    db.exec(
                        "UPDATE outbox SET status = ?, attempts = attempts + 1, lease_until = 0, \
                         lease_token = NULL, next_attempt_at = ?, last_error = ? \
                         WHERE id = ? AND lease_token = ?",
                        &[
                            Value::Text(status.to_owned()),
                            Value::Integer(*retry_at),
                            Value::Text(error.clone()),
                            id,
                            token,
                        ],
                    )?
                }
                Outcome::GivenUp { error } => db.exec(
                    "UPDATE outbox SET status = 'dead', lease_until = 0, lease_token = NULL, \
                     last_error = ? WHERE id = ? AND lease_token = ?",
                    &[Value::Text(error.clone()), id, token],
                )?,
                Outcome::Released => db.exec(
                    "UPDATE outbox SET lease_until = 0, lease_token = NULL \
                     WHERE id = ? AND lease_token = ?",
                    &[id, token],
                )?,
            }
        }
        Ok::<_, StoreError>(())
    })
}

/// Deletes a few delivered rows past their day, in a transaction of its own: no job needed.
pub fn sweep(db: &Db, now: i64) -> Result<(), StoreError> {
    db.exec(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
         WHERE status = 'delivered' AND delivered_at < ? LIMIT ?)",
        &[
            Value::Integer(now - DELIVERED_KEPT_MILLIS),
            Value::Integer(SWEEP_BATCH),
        ],
    )
}

/// When the next row can be claimed (Unix ms), if any row is pending. Only the head of each
/// line counts: the rows behind it wait for it, however due they are themselves.
pub fn next_due(db: &Db) -> Result<Option<i64>, StoreError> {
    let result = db.query(
        "SELECT min(max(o.next_attempt_at, o.lease_until)) FROM outbox o JOIN \
           (SELECT min(id) AS id FROM outbox WHERE status = 'pending' \
            GROUP BY receiver, product_id) h ON o.id = h.id",
        &[],
    )?;
    let next = rows(&result).next().map(|row| row.opt_int(0)).transpose()?;
    Ok(next.flatten())
}

/// Makes this notifier the active one until `until` (Unix ms), unless another is active
/// (its heartbeat has not run out): then `Err` with when it runs out. While one is active,
/// changes do not call another: it picks their events up. The clock is set to now, so a
/// notifier that dies at work leaves its work due once its heartbeat runs out.
pub fn try_activate(db: &Db, now: i64, until: i64) -> Result<Result<(), i64>, StoreError> {
    let result = db.query(
        "UPDATE notifier_state SET active_until = ?1 WHERE name = 'delivery' \
         AND active_until <= ?2 RETURNING name",
        &[Value::Integer(until), Value::Integer(now)],
    )?;
    if !result.rows.is_empty() {
        set_wake_at(db, Some(now))?;
        return Ok(Ok(()));
    }
    let current = db.query(
        "SELECT active_until FROM notifier_state WHERE name = 'delivery'",
        &[],
    )?;
    let until = rows(&current).next().map(|row| row.int(0)).transpose()?;
    Ok(Err(until.unwrap_or(now)))
}

/// The active notifier, still at work: active until `until`.
pub fn keep_active(db: &Db, until: i64) -> Result<(), StoreError> {
    db.exec(
        "UPDATE notifier_state SET active_until = ? WHERE name = 'delivery'",
        &[Value::Integer(until)],
    )
}

/// The active notifier stands down, and sets the clock for the next one: `wake_at` (Unix
/// ms), when its work comes due (`None`: nothing is pending). The next change calls a new
/// one; so does the first request after `wake_at`.
pub fn deactivate(db: &Db, wake_at: Option<i64>) -> Result<(), StoreError> {
    db.exec(
        "UPDATE notifier_state SET active_until = 0 WHERE name = 'delivery'",
        &[],
    )?;
    set_wake_at(db, wake_at)
}

/// Sets the app's clock: when the notifier should next be woken (`None`: nothing pending).
fn set_wake_at(db: &Db, wake_at: Option<i64>) -> Result<(), StoreError> {
    db.exec(
        "UPDATE notifier_clock SET wake_at = ? WHERE name = 'delivery'",
        &[wake_at.map_or(Value::Null, Value::Integer)],
    )
}

/// Claims the watch over the active notifier until `until` (Unix ms), unless another
/// request holds it: whether this one does.
pub fn watch(db: &Db, now: i64, until: i64) -> Result<bool, StoreError> {
    let claimed = db.query(
        "UPDATE notifier_clock SET watched_until = ?1 WHERE name = 'delivery' \
         AND watched_until <= ?2 RETURNING name",
        &[Value::Integer(until), Value::Integer(now)],
    )?;
    Ok(!claimed.rows.is_empty())
}

/// Renews the leases of the claims `tokens` until `lease_until` (Unix ms): a notifier at
/// work keeps its runs; one that dies loses them within a lease.
pub fn renew(db: &Db, tokens: &[String], lease_until: i64) -> Result<(), StoreError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; tokens.len()].join(", ");
    let mut params = vec![Value::Integer(lease_until)];
    params.extend(tokens.iter().map(|t| Value::Text(t.clone())));
    db.exec(
        &format!(
            "UPDATE outbox SET lease_until = ? WHERE status = 'pending' AND lease_token IN ({marks})"
        ),
        &params,
    )
}

/// Undelivered rows, for operators: one per event and receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub event_id: String,
    pub kind: String,
    pub product_id: i64,
    pub receiver: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

/// Which undelivered rows to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Dead,
}

/// A page of undelivered rows (`status`, or both kinds), oldest first, and their number.
pub fn undelivered(
    db: &Db,
    status: Option<Status>,
    page: i64,
    limit: i64,
) -> Result<(Vec<Undelivered>, i64), StoreError> {
    let filter = match status {
        Some(Status::Pending) => "status = 'pending'",
        Some(Status::Dead) => "status = 'dead'",
        None => "status IN ('pending', 'dead')",
    };
    let (result, total) = db.page(
        "event_id, type, product_id, receiver, status, attempts, next_attempt_at, last_error, \
         created_at",
        &format!("outbox WHERE {filter}"),
        "id",
        &[],
        (page, limit),
    )?;
    let items = rows(&result)
        .map(|row| undelivered_from_row(&row))
        .collect::<Result<_, _>>()?;
    Ok((items, total))
}

fn undelivered_from_row(row: &Row<'_>) -> Result<Undelivered, StoreError> {
    Ok(Undelivered {
        event_id: row.text(0)?,
        kind: row.text(1)?,
        product_id: row.int(2)?,
        receiver: row.text(3)?,
        status: row.text(4)?,
        attempts: row.int(5)?,
        next_attempt_at: row.int(6)?,
        last_error: row.opt_text(7)?,
        created_at: row.text(8)?,
    })
}

/// How a redelivery request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Redelivery {
    /// The event's undelivered rows, now pending and due.
    Due(Vec<Undelivered>),
    /// Every receiver has the event already.
    AlreadyDelivered,
    NotFound,
}

/// Makes an event's dead or pending rows due now, with a fresh retention period.
pub fn redeliver(db: &Db, event_id: &str, now: i64) -> Result<Redelivery, StoreError> {
    db.transaction(|db| {
        set_wake_at(db, Some(now))?;
        let result = db.query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1, \
             expires_at = ?2 WHERE event_id = ?3 AND status IN ('pending', 'dead') \
             RETURNING event_id, type, product_id, receiver, status, attempts, next_attempt_at, \
             last_error, created_at",
            &[
                Value::Integer(now),
                Value::Integer(now + RETENTION_MILLIS),
                Value::Text(event_id.to_owned()),
            ],
        )?;
        let rows_due = rows(&result)
            .map(|row| undelivered_from_row(&row))
            .collect::<Result<Vec<_>, _>>()?;
        if !rows_due.is_empty() {
            return Ok(Redelivery::Due(rows_due));
        }
        let known = db.query(
            "SELECT 1 FROM outbox WHERE event_id = ? LIMIT 1",
            &[Value::Text(event_id.to_owned())],
        )?;
        Ok(if rows(&known).next().is_some() {
            Redelivery::AlreadyDelivered
        } else {
            Redelivery::NotFound
        })
    })
}

/// How many rows are pending and dead.
pub fn counts(db: &Db) -> Result<(i64, i64), StoreError> {
    let result = db.query(
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending'), \
                (SELECT count(*) FROM outbox WHERE status = 'dead')",
        &[],
    )?;
    let counts = rows(&result)
        .next()
        .map(|row| Ok::<_, StoreError>((row.int(0)?, row.int(1)?)))
        .transpose()?;
    Ok(counts.unwrap_or((0, 0)))
}
