//! Delivery passes over the outbox. A pass claims what is due under a lease, delivers each
//! receiver's line of a product in order (a failure stops the line, the rest wait behind
//! it), delivers different lines side by side, and records every outcome in one transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use inventory::store::outbox::{self, Delivery, Outcome};
use inventory::store::{self, Db, StoreError};
use inventory::time::now_millis;
use serde_json::{json, Value};

use crate::clock;
use crate::webhook::{self, Signer};

/// How long claimed rows stay ours: a pass ends well within it (see `LINE_BUDGET_MS`), and a
/// notifier that dies mid-pass holds its rows no longer than this.
const LEASE_MS: i64 = 30_000;
/// A line starts no new attempt after this long into a pass, so the pass (plus one attempt,
/// `webhook::ATTEMPT_TIMEOUT`) ends inside its lease.
const LINE_BUDGET_MS: i64 = 15_000;
/// Rows claimed per pass.
const PASS_ROWS: i64 = 200;
/// Lines delivered at once.
const CONCURRENT_LINES: usize = 8;
/// How long one invocation keeps retrying failed deliveries before leaving them due for the
/// next change or `POST /events/deliver`. Inside the host's request timeout.
const RETRY_WINDOW_MS: i64 = 20_000;
/// Backoff after the first failure; it doubles per attempt, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1_000;

/// What one or more passes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
    pub pending: i64,
    pub dead_total: i64,
}

impl Counts {
    pub fn to_json(self) -> Value {
        json!({
            "delivered": self.delivered,
            "failed": self.failed,
            "dead": self.dead,
            "pending": self.pending,
            "dead_total": self.dead_total,
        })
    }
}

/// Why delivery could not run at all.
#[derive(Debug)]
pub enum DeliverError {
    Store(StoreError),
    Misconfigured(String),
}

impl std::fmt::Display for DeliverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(err) => write!(f, "the outbox: {err:?}"),
            Self::Misconfigured(err) => f.write_str(err),
        }
    }
}

impl From<StoreError> for DeliverError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// What a pass needs: the signing keys and the receivers still configured.
struct Setup {
    signer: Signer,
    receivers: Vec<String>,
}

impl Setup {
    fn load() -> Result<Self, DeliverError> {
        let get = |name: &str| {
            spin_sdk::variables::get(name)
                .map_err(|err| DeliverError::Misconfigured(format!("the variable `{name}`: {err}")))
        };
        Ok(Self {
            signer: Signer::from_variable(&get("events_secret")?)
                .map_err(DeliverError::Misconfigured)?,
            receivers: outbox::parse_receivers(&get("order_events_urls")?),
        })
    }
}

/// `POST /deliver`: one pass over what is due now.
pub async fn once() -> Result<Counts, DeliverError> {
    let setup = Setup::load()?;
    let db = store::open()?;
    let mut counts = pass(&db, &setup).await?;
    (counts.pending, counts.dead_total) = outbox::counts(&db)?;
    Ok(counts)
}

/// `POST /notify`: passes until nothing is due; while deliveries fail, waits for their next
/// attempt and passes again, within `RETRY_WINDOW_MS`. One notifier at a time waits (the
/// retrier); the others return after their pass, leaving the retries to it.
pub async fn until_idle() -> Result<Counts, DeliverError> {
    let setup = Setup::load()?;
    let db = store::open()?;
    let started = now_millis();
    let window_end = started + RETRY_WINDOW_MS;
    let mut retrier = false;
    let mut total = Counts::default();
    let result = loop {
        let counts = match pass(&db, &setup).await {
            Ok(counts) => counts,
            Err(err) => break Err(err),
        };
        total.delivered += counts.delivered;
        total.failed += counts.failed;
        total.dead += counts.dead;
        let now = now_millis();
        let next = match outbox::next_due(&db) {
            Ok(next) => next,
            Err(err) => break Err(err.into()),
        };
        match next {
            None => break Ok(total),
            // More came due while we delivered (or a line moved on): pass again.
            Some(due) if due <= now && now < window_end => continue,
            Some(due) if due > window_end || now >= window_end => break Ok(total),
            Some(due) => {
                // Only the retrier sleeps; renewing keeps the role for the whole window.
                let until = window_end + LEASE_MS;
                match outbox::try_become_retrier(&db, now, until, retrier) {
                    Ok(true) => retrier = true,
                    Ok(false) => break Ok(total),
                    Err(err) => break Err(err.into()),
                }
                let wait = u64::try_from(due - now).unwrap_or(0);
                clock::sleep(Duration::from_millis(wait)).await;
            }
        }
    };
    if retrier {
        outbox::stop_retrying(&db)?;
    }
    result
}

/// One pass: claim, deliver line by line, record.
async fn pass(db: &Db, setup: &Setup) -> Result<Counts, DeliverError> {
    let started = now_millis();
    let claimed = outbox::claim(db, started, started + LEASE_MS, PASS_ROWS)?;
    if claimed.is_empty() {
        return Ok(Counts::default());
    }
    let mut lines: BTreeMap<(String, i64), Vec<Delivery>> = BTreeMap::new();
    for delivery in claimed {
        let line = (delivery.receiver.clone(), delivery.product_id);
        lines.entry(line).or_default().push(delivery);
    }
    let outcomes: Vec<(Delivery, Outcome)> = stream::iter(lines.into_values())
        .map(|line| deliver_line(setup, line, started))
        .buffer_unordered(CONCURRENT_LINES)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut counts = Counts::default();
    for (delivery, outcome) in &outcomes {
        match outcome {
            Outcome::Delivered => counts.delivered += 1,
            Outcome::Failed { retry_at, .. } if *retry_at > delivery.expires_at => counts.dead += 1,
            Outcome::Failed { .. } => counts.failed += 1,
            Outcome::Released => {}
        }
    }
    outbox::record(db, &outcomes, now_millis())?;
    Ok(counts)
}

/// Delivers a line in order; after a failure, or once the pass is old, the rest is released.
async fn deliver_line(
    setup: &Setup,
    line: Vec<Delivery>,
    started: i64,
) -> Vec<(Delivery, Outcome)> {
    let mut outcomes = Vec::with_capacity(line.len());
    let mut stopped = false;
    for delivery in line {
        if stopped || now_millis() - started > LINE_BUDGET_MS {
            outcomes.push((delivery, Outcome::Released));
            continue;
        }
        let result = if setup.receivers.contains(&delivery.receiver) {
            webhook::deliver(
                &setup.signer,
                &delivery.receiver,
                &delivery.event_id,
                &delivery.body,
            )
            .await
        } else {
            Err("the receiver is no longer in order_events_urls".to_owned())
        };
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(error) => {
                stopped = true;
                Outcome::Failed {
                    error,
                    retry_at: now_millis() + backoff_ms(delivery.attempts),
                }
            }
        };
        outcomes.push((delivery, outcome));
    }
    outcomes
}

/// About 1 s, 2 s, 4 s... up to 10 minutes, each within ±20% so receivers that failed
/// together are not retried in lockstep. `attempts` is the number before the failed one.
fn backoff_ms(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << exponent)
        .min(MAX_BACKOFF_MS);
    let random = wasi::random::random::get_random_u64() % 401;
    let permille = 800 + i64::try_from(random).unwrap_or(200);
    base * permille / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_about_a_second_to_ten_minutes() {
        let within = |attempts, low, high| {
            let ms = backoff_ms(attempts);
            assert!((low..=high).contains(&ms), "{attempts}: {ms}");
        };
        within(0, 800, 1_200);
        within(1, 1_600, 2_400);
        within(3, 6_400, 9_600);
        within(40, 480_000, 720_000);
    }
}
