//! Delivery over the outbox. Each receiver's line of a product is delivered by a task of
//! its own: it leases the run at the head of the line, delivers it in order (a failure stops
//! the line, the rows behind wait), records the outcomes, and goes on with the next run of the
//! same line while there is time. Lines run side by side, at most `LINES_PER_RECEIVER` of one
//! receiver, so a slow or silent receiver cannot take every slot from the others.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::{self, Either, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use inventory::store::outbox::{self, Delivery, Outcome, HEARTBEAT_MS};
use inventory::store::{self, config, reservations, Db, StoreError};
use inventory::time::now_millis;
use serde_json::{json, Value};

use crate::webhook::{self, Signer};
use inventory::edge::sleep;

/// How long a claimed run stays leased unless renewed. The notifier renews the leases of
/// its runs every `RENEW_MS` while it delivers them (an attempt may take
/// `webhook::ATTEMPT_TIMEOUT`), so a notifier that dies holds its rows no longer than this.
const LEASE_MS: i64 = 3_000;
const RENEW_MS: i64 = 500;
/// Expired holds announced per look, so a look is always short.
const EXPIRED_PER_LOOK: i64 = 50;
/// Rows leased per run of a line.
const RUN_ROWS: i64 = 20;
/// Lines delivered at once, and at once to one receiver.
const LINES: usize = 32;
const LINES_PER_RECEIVER: usize = 8;
/// How long `POST /notify` keeps delivering and retrying: with one attempt after it, its
/// work ends within the host's request timeout (30 s). Work still due then is handed to a
/// fresh invocation; retries due later wait for the next change or `POST /events/deliver`.
const WINDOW_MS: i64 = 12_000;
/// How long `POST /deliver` starts new attempts before it answers.
const DELIVER_WINDOW_MS: i64 = 8_000;
/// How often to look for other lines that came due, and to renew the heartbeat.
const TICK_MS: i64 = 250;
/// Backoff after the first failure; it doubles per attempt, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1_000;

/// What an invocation did, and (for `POST /deliver`) what is left.
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
            inventory::store::spin::variable(name)
                .map_err(|err| DeliverError::Misconfigured(format!("the variable `{name}`: {err}")))
        };
        Ok(Self {
            signer: Signer::from_variable(&get("events_secret")?)
                .map_err(DeliverError::Misconfigured)?,
            receivers: config::parse_receivers(&get("order_events_urls")?),
        })
    }
}

/// `POST /deliver`: delivers what is due now (for `DELIVER_WINDOW_MS`), without waiting
/// for retries; answers with the counts.
pub async fn once() -> Result<Counts, DeliverError> {
    let setup = Setup::load()?;
    let db = store::open()?;
    outbox::sweep(&db, now_millis())?;
    let deadline = now_millis() + DELIVER_WINDOW_MS;
    let mut counts = Lines::new(&db, &setup, deadline, false).run().await?;
    // Holds that expired while the pass ran.
    reservations::announce_expired(&db, EXPIRED_PER_LOOK)?;
    (counts.pending, counts.dead_total) = outbox::counts(&db)?;
    Ok(counts)
}

/// `POST /notify`: becomes the active notifier, unless one is, and delivers while anything
/// is due, waiting for retries, for `WINDOW_MS`. Then stands down and looks once more; if
/// anything is due it hands over to a fresh invocation.
pub async fn until_idle(request_id: &str) -> Result<Counts, DeliverError> {
    let setup = Setup::load()?;
    let db = store::open()?;
    if !activate(&db).await? {
        // Another notifier is active: it picks up what this call was about.
        return Ok(Counts::default());
    }
    let result = match outbox::sweep(&db, now_millis()) {
        Ok(()) => {
            let deadline = now_millis() + WINDOW_MS;
            Lines::new(&db, &setup, deadline, true).run().await
        }
        Err(err) => Err(err.into()),
    };
    // On every way out: stand down, setting the app's clock for the next notifier, in one
    // transaction (a change before it saw this notifier active and called none: its events
    // are due now; a change after it calls one itself). Work due already is handed over.
    let next = db.transaction(|db| {
        let next = next_work(db)?;
        outbox::deactivate(db, next)?;
        Ok::<_, StoreError>(next)
    });
    if matches!(next, Ok(Some(due)) if due <= now_millis()) {
        // A fresh invocation of this component, by `POST /notify`: it answers at once.
        inventory::web::notify::notifier(request_id).await;
    }
    next?;
    result
}

/// When work comes due next (Unix ms): the first line of events, or the first hold to
/// expire (to be announced).
fn next_work(db: &Db) -> Result<Option<i64>, StoreError> {
    let events = outbox::next_due(db)?;
    let holds = reservations::next_expiry(db)?;
    Ok(events.into_iter().chain(holds).min())
}

/// Takes the active role. If another notifier holds it, it may have died: its heartbeat
/// runs out within `HEARTBEAT_MS`, so wait for that once and try again.
async fn activate(db: &Db) -> Result<bool, DeliverError> {
    let now = now_millis();
    match outbox::try_activate(db, now, now + HEARTBEAT_MS)? {
        Ok(()) => Ok(true),
        Err(until) if until - now <= HEARTBEAT_MS => {
            let wait = u64::try_from(until - now + 50).unwrap_or(0);
            sleep(Duration::from_millis(wait)).await;
            let now = now_millis();
            Ok(outbox::try_activate(db, now, now + HEARTBEAT_MS)?.is_ok())
        }
        Err(_) => Ok(false),
    }
}

/// A receiver's line of a product.
type Line = (String, i64);

/// A run of a line, delivered: its claim's token and what became of each row.
struct Delivered {
    line: Line,
    token: String,
    outcomes: Vec<(Delivery, Outcome)>,
}

/// The lines being delivered by one invocation, until `deadline`.
struct Lines<'a> {
    db: &'a Db,
    setup: &'a Setup,
    deadline: i64,
    /// `POST /notify` keeps the heartbeat and waits for retries; `POST /deliver` does not.
    active: bool,
    running: FuturesUnordered<LocalBoxFuture<'a, Delivered>>,
    per_receiver: HashMap<String, usize>,
    lines: Vec<Line>,
    /// The claims of the runs in flight, whose leases are renewed.
    tokens: Vec<String>,
    renewed_at: i64,
    counts: Counts,
}

impl<'a> Lines<'a> {
    fn new(db: &'a Db, setup: &'a Setup, deadline: i64, active: bool) -> Self {
        Self {
            db,
            setup,
            deadline,
            active,
            running: FuturesUnordered::new(),
            per_receiver: HashMap::new(),
            lines: Vec::new(),
            tokens: Vec::new(),
            renewed_at: now_millis(),
            counts: Counts::default(),
        }
    }

    async fn run(mut self) -> Result<Counts, DeliverError> {
        let mut last_look: Option<i64> = None;
        loop {
            let now = now_millis();
            if last_look.is_none_or(|at| now - at >= TICK_MS) {
                last_look = Some(now);
                self.look(now)?;
            }
            if self.running.is_empty() {
                if now >= self.deadline || !self.active {
                    break;
                }
                // Nothing in flight: wait for the next retry (or expiry), if it falls in the
                // window.
                match next_work(self.db)? {
                    Some(due) if due <= self.deadline => {
                        let wait = (due - now).clamp(0, TICK_MS);
                        sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
                        last_look = None;
                    }
                    _ => break,
                }
                continue;
            }
            let tick = Box::pin(sleep(Duration::from_millis(
                u64::try_from(TICK_MS).unwrap_or(250),
            )));
            if let Either::Left((Some(done), _)) = future::select(self.running.next(), tick).await {
                self.finish(done)?;
            }
        }
        Ok(self.counts)
    }

    /// What the notifier does a few times a second: keep its role and its leases, announce
    /// holds that expired, and start the lines that came due.
    fn look(&mut self, now: i64) -> Result<(), StoreError> {
        if self.active {
            outbox::keep_active(self.db, now + HEARTBEAT_MS)?;
        }
        if now - self.renewed_at >= RENEW_MS {
            outbox::renew(self.db, &self.tokens, now + LEASE_MS)?;
            self.renewed_at = now;
        }
        if now < self.deadline {
            reservations::announce_expired(self.db, EXPIRED_PER_LOOK)?;
            self.start_due_lines(now)?;
        }
        Ok(())
    }

    /// Starts a task for each due line not yet running, within the limits.
    fn start_due_lines(&mut self, now: i64) -> Result<(), StoreError> {
        if self.running.len() >= LINES {
            return Ok(());
        }
        let limit = i64::try_from(LINES * 4).unwrap_or(128);
        for line in outbox::due_lines(self.db, now, limit)? {
            if self.running.len() >= LINES {
                break;
            }
            let busy = self.per_receiver.get(&line.0).copied().unwrap_or(0);
            if busy >= LINES_PER_RECEIVER || self.lines.contains(&line) {
                continue;
            }
            self.start(line, now)?;
        }
        Ok(())
    }

    /// Leases the run at the head of `line` and starts delivering it.
    fn start(&mut self, line: Line, now: i64) -> Result<(), StoreError> {
        let token = outbox::new_lease_token();
        let run = outbox::claim_line(
            self.db,
            (&line.0, line.1),
            now,
            now + LEASE_MS,
            &token,
            RUN_ROWS,
        )?;
        if run.is_empty() {
            return Ok(());
        }
        *self.per_receiver.entry(line.0.clone()).or_default() += 1;
        self.lines.push(line.clone());
        self.tokens.push(token.clone());
        let (setup, deadline) = (self.setup, self.deadline);
        self.running.push(Box::pin(async move {
            let outcomes = deliver_run(setup, run, deadline).await;
            Delivered {
                line,
                token,
                outcomes,
            }
        }));
        Ok(())
    }

    /// Records a finished run; a line that went well goes on with its next run at once.
    fn finish(&mut self, done: Delivered) -> Result<(), StoreError> {
        let now = now_millis();
        outbox::record(self.db, &done.token, &done.outcomes, now)?;
        self.tokens.retain(|token| *token != done.token);
        let mut clean = true;
        for (delivery, outcome) in &done.outcomes {
            match outcome {
                Outcome::Delivered => self.counts.delivered += 1,
                Outcome::Failed { retry_at, .. } if *retry_at > delivery.expires_at => {
                    self.counts.dead += 1;
                    clean = false;
                }
                Outcome::Failed { .. } => {
                    self.counts.failed += 1;
                    clean = false;
                }
                Outcome::GivenUp { .. } => {
                    self.counts.dead += 1;
                    clean = false;
                }
                Outcome::Released => clean = false,
            }
        }
        if let Some(busy) = self.per_receiver.get_mut(&done.line.0) {
            *busy = busy.saturating_sub(1);
        }
        self.lines.retain(|line| *line != done.line);
        if clean && now < self.deadline {
            self.start(done.line, now)?;
        }
        Ok(())
    }
}

/// Delivers a run in order; after a failure, or once the deadline passes, the rest is
/// released untried.
async fn deliver_run(setup: &Setup, run: Vec<Delivery>, deadline: i64) -> Vec<(Delivery, Outcome)> {
    let mut outcomes = Vec::with_capacity(run.len());
    let mut stopped = false;
    for delivery in run {
        if stopped || now_millis() >= deadline {
            outcomes.push((delivery, Outcome::Released));
            continue;
        }
        if !setup.receivers.contains(&delivery.receiver) {
            let error = "its receiver is no longer in order_events_urls".to_owned();
            outcomes.push((delivery, Outcome::GivenUp { error }));
            continue;
        }
        let result = webhook::deliver(
            &setup.signer,
            &delivery.receiver,
            &delivery.event_id,
            &delivery.body,
        )
        .await;
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
    backoff_with_jitter(attempts, inventory::edge::random_u64())
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
