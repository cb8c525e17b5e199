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
/// notifier that dies mid-pass holds its rows no longer than this. The active notifier's role
/// lasts as long, renewed every pass.
const LEASE_MS: i64 = 30_000;
/// A line starts no new attempt after this long into a pass, so the pass (plus one attempt,
/// `webhook::ATTEMPT_TIMEOUT`) ends inside its lease.
const LINE_BUDGET_MS: i64 = 5_000;
/// Rows claimed per pass.
const PASS_ROWS: i64 = 200;
/// Lines delivered at once.
const CONCURRENT_LINES: usize = 32;
/// How long one invocation keeps delivering and retrying. Its last pass then ends within the
/// host's request timeout (30 s); work still due is handed to a fresh invocation, retries due
/// later wait for the next change or `POST /events/deliver`.
const WINDOW_MS: i64 = 12_000;
/// While waiting for a retry, how often to look for new rows.
const POLL_MS: i64 = 250;
/// Backoff after the first failure; it doubles per attempt, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1_000;

/// The notifier's own entry, for handing over to a fresh invocation.
const NOTIFY_URL: &str = "http://notifier.spin.internal/notify";

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
    fn add(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead += other.dead;
    }

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

/// `POST /notify`: becomes the active notifier, unless one is, and delivers while anything
/// is due, waiting for retries, for `WINDOW_MS`. Stands down when nothing is due within the
/// window; hands over to a fresh invocation if time runs out with work due now.
pub async fn until_idle() -> Result<Counts, DeliverError> {
    let setup = Setup::load()?;
    let db = store::open()?;
    let started = now_millis();
    if !outbox::try_activate(&db, started, started + LEASE_MS)? {
        // Another notifier is active: it picks up what this call was about.
        return Ok(Counts::default());
    }
    let window_end = started + WINDOW_MS;
    let mut total = Counts::default();
    let result = loop {
        match pass(&db, &setup).await {
            Ok(counts) => total.add(counts),
            Err(err) => break Err(err),
        }
        let now = now_millis();
        if let Err(err) = outbox::keep_active(&db, now + LEASE_MS) {
            break Err(err.into());
        }
        let next = match outbox::next_due(&db) {
            Ok(next) => next,
            Err(err) => break Err(err.into()),
        };
        match next {
            Some(due) if due <= now && now < window_end => continue,
            Some(due) if due <= now => break Ok(Some(due)),
            Some(due) if due <= window_end => {
                // A retry is coming: wait for it, looking in for new rows meanwhile.
                let wait = (due - now).clamp(0, POLL_MS);
                clock::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
            }
            _ => {
                // Nothing due within the window: stand down, then look once more, for a
                // change that saw this notifier active and so called none.
                if let Err(err) = outbox::deactivate(&db) {
                    break Err(err.into());
                }
                let now = now_millis();
                match outbox::next_due(&db) {
                    Ok(Some(due)) if due <= now => {
                        match outbox::try_activate(&db, now, now + LEASE_MS) {
                            Ok(true) => continue,
                            Ok(false) => break Ok(None),
                            Err(err) => break Err(err.into()),
                        }
                    }
                    Ok(_) => break Ok(None),
                    Err(err) => break Err(err.into()),
                }
            }
        }
    };
    match result {
        Ok(None) => Ok(total),
        Ok(Some(_)) => {
            // Out of time with work due now: a fresh invocation takes it from here.
            outbox::deactivate(&db)?;
            hand_over().await;
            Ok(total)
        }
        Err(err) => {
            let _ = outbox::deactivate(&db);
            Err(err)
        }
    }
}

/// Calls `POST /notify` on a fresh notifier (service chaining), which answers at once.
async fn hand_over() {
    let request = spin_sdk::http::Request::builder()
        .method(spin_sdk::http::Method::Post)
        .uri(NOTIFY_URL)
        .build();
    if let Err(err) = spin_sdk::http::send::<_, spin_sdk::http::Response>(request).await {
        eprintln!("handing delivery over failed ({err}); the events wait for the next change");
    }
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
    backoff_with_jitter(attempts, wasi::random::random::get_random_u64())
}

/// The backoff for `attempts`, with `random` choosing where in ±20% it falls.
fn backoff_with_jitter(attempts: i64, random: u64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << exponent)
        .min(MAX_BACKOFF_MS);
    let permille = 800 + i64::try_from(random % 401).unwrap_or(200);
    base * permille / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_about_a_second_to_ten_minutes_within_20_percent() {
        let range = |attempts| {
            (
                backoff_with_jitter(attempts, 0),
                backoff_with_jitter(attempts, 400),
            )
        };
        assert_eq!(range(0), (800, 1_200));
        assert_eq!(range(1), (1_600, 2_400));
        assert_eq!(range(3), (6_400, 9_600));
        assert_eq!(range(40), (480_000, 720_000));
        assert_eq!(backoff_with_jitter(0, 200), 1_000);
    }
}
