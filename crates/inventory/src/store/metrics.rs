//! What operators watch, read from the database in a few indexed queries: the catalogue's
//! totals, the events each receiver has not yet had, and the holds at work. `GET /metrics`
//! (the events component) writes it for Prometheus.

use crate::store::spin::Value;

use crate::store::db::{now_ms, rows, Db, NOW_MS};
use crate::store::error::StoreError;
use crate::store::held::level_reserved;
use crate::store::reservations;

/// The app's figures at one moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub products: i64,
    /// Units on hand, held by unexpired holds, and available to sell, over all products.
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    /// Holds active (not committed, released or expired).
    pub holds_active: i64,
    /// Undelivered events by receiver URL, in URL order.
    pub receivers: Vec<ReceiverFigures>,
}

/// The events one receiver has not had.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReceiverFigures {
    pub receiver: String,
    /// To be delivered or retried.
    pub pending: i64,
    /// Given up after the retention (72 hours), or for a receiver no longer configured.
    pub dead: i64,
    /// How long ago the oldest pending event was written (0 when none is pending).
    pub oldest_pending_seconds: i64,
}

/// The figures now; `configured` receivers are listed even with nothing undelivered.
pub fn figures(db: &Db, configured: &[String]) -> Result<Figures, StoreError> {
    let mut figures = Figures::default();
    let totals = db.query(
        concat!(
            "SELECT (SELECT count(*) FROM products), coalesce(sum(stock), 0), \
             coalesce(sum(held), 0), coalesce(sum(max(stock - held, 0)), 0) \
             FROM (SELECT s.stock, ",
            level_reserved!(),
            " AS held FROM stock_levels s JOIN locations l ON l.id = s.location_id \
              JOIN products p ON p.id = s.product_id WHERE l.active = 1)"
        ),
        &[],
    )?;
    if let Some(row) = rows(&totals).next() {
        figures.products = row.int(0)?;
        figures.stock = row.int(1)?;
        figures.reserved = row.int(2)?;
        figures.available = row.int(3)?;
    }
    figures.holds_active = reservations::active_count(db)?;

    let mut receivers: Vec<ReceiverFigures> = configured
        .iter()
        .map(|receiver| ReceiverFigures {
            receiver: receiver.clone(),
            ..ReceiverFigures::default()
        })
        .collect();
    // Counted on the index by status and receiver; the oldest pending row per receiver is its
    // lowest id (ids follow commit order).
    let undelivered = db.query(
        "SELECT receiver, status, count(*), min(id) FROM outbox \
         WHERE status IN ('pending', 'dead') GROUP BY receiver, status",
        &[],
    )?;
    for row in rows(&undelivered) {
        let receiver = row.text(0)?;
        let index = match receivers.iter().position(|r| r.receiver == receiver) {
            Some(index) => index,
            None => {
                receivers.push(ReceiverFigures {
                    receiver,
                    ..ReceiverFigures::default()
                });
                receivers.len() - 1
            }
        };
        let Some(figures) = receivers.get_mut(index) else {
            continue;
        };
        let count = row.int(2)?;
        if row.text(1)? == "dead" {
            figures.dead = count;
        } else {
            figures.pending = count;
            figures.oldest_pending_seconds = age_seconds(db, row.int(3)?)?;
        }
    }
    receivers.sort_by(|a, b| a.receiver.cmp(&b.receiver));
    figures.receivers = receivers;
    Ok(figures)
}

/// How long ago, by the database's clock, the outbox row `id` was written.
fn age_seconds(db: &Db, id: i64) -> Result<i64, StoreError> {
    let result = db.query(
        &format!(
            "SELECT max(0, ({NOW_MS} - CAST(unixepoch(created_at, 'subsec') * 1000 AS INTEGER)) \
             / 1000) FROM outbox WHERE id = ?"
        ),
        &[Value::Integer(id)],
    )?;
    let age = rows(&result).next().map_or(Ok(0), |row| row.int(0));
    age
}
