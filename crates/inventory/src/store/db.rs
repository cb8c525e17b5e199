//! A connection to Spin SQLite, the app's clock read with it, and write transactions.

use std::cell::{Cell, OnceCell};
use std::ops::Deref;

use crate::store::spin::{self, Connection, QueryResult, Value};

use crate::store::config::OutboxConfig;
pub use crate::store::error::StoreError;

/// An open connection to the app's default database (see [`crate::store::open`], which
/// also brings its schema up to date).
pub struct Db {
    conn: Connection,
    /// Read on the first write that produces events.
    outbox: OnceCell<OutboxConfig>,
    /// Outbox rows written through this connection (committed or not).
    events_written: Cell<usize>,
    /// A notifier was active when they were written: it will deliver them.
    notifier_active: Cell<bool>,
    /// What the app's clock said when the connection opened.
    clock: Cell<Clock>,
}

/// The app's clock, read when a connection opens (`store::open`): Spin has no timers, so
/// every request that opens the database notices time-driven work that is due (events to
/// retry, holds that expired and are not yet announced) and, when no notifier is at work,
/// hands it to one after its response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// The schema's migration number.
    pub schema: i64,
    /// When the active notifier's heartbeat runs out (Unix ms; past: none is at work).
    pub notifier_until: i64,
    /// Whether a request watches the active notifier already.
    pub watched: bool,
    pub work_due: bool,
}

/// What a request leaves the notifier, after its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifierCall {
    /// Nothing: no work, or a notifier at work (watched) takes it.
    None,
    /// Call one: there is work and no notifier at work.
    Now,
    /// There is work, and a notifier holds the role until then: watch it (it may have died
    /// with its process), and call another if its heartbeat runs out. A request watches
    /// only if it claims the watch (`claim`: one at a time); a probe always does, since a
    /// claim's holder may have died too, and after a restart a probe may be all there is.
    Watch { until: i64, claim: bool },
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("events_written", &self.events_written.get())
            .field("clock", &self.clock.get())
            .finish_non_exhaustive()
    }
}

impl Db {
    pub(crate) fn connect() -> Result<Self, StoreError> {
        Ok(Self {
            conn: spin::open_default()?,
            outbox: OnceCell::new(),
            events_written: Cell::new(0),
            notifier_active: Cell::new(false),
            clock: Cell::new(Clock::default()),
        })
    }

    /// Reads the app's clock, and the schema's version with it, in one query.
    pub(crate) fn read_clock(&self) -> Result<Clock, StoreError> {
        let result = self.query(
            &format!(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                 coalesce((SELECT active_until FROM notifier_state WHERE name = 'delivery'), 0), \
                 coalesce((SELECT watched_until > ?1 FROM notifier_clock WHERE name = 'delivery'), 0), \
                 coalesce((SELECT wake_at <= ?1 FROM notifier_clock WHERE name = 'delivery'), 0), \
                 EXISTS (SELECT 1 FROM reservations WHERE status = 'active' AND expires_at <= {NOW_MS})"
            ),
            &[Value::Integer(crate::time::now_millis())],
        )?;
        let clock = rows(&result)
            .next()
            .map(|row| {
                Ok::<_, StoreError>(Clock {
                    schema: row.int(0)?,
                    notifier_until: row.int(1)?,
                    watched: row.int(2)? != 0,
                    work_due: row.int(3)? != 0 || row.int(4)? != 0,
                })
            })
            .transpose()?
            .unwrap_or_default();
        self.clock.set(clock);
        Ok(clock)
    }

    /// Where this component's changes send events.
    pub fn outbox_config(&self) -> Result<&OutboxConfig, StoreError> {
        if let Some(config) = self.outbox.get() {
            return Ok(config);
        }
        let config = OutboxConfig::from_variables()?;
        Ok(self.outbox.get_or_init(|| config))
    }

    pub(crate) fn note_event_written(&self) {
        self.events_written.set(self.events_written.get() + 1);
    }

    pub(crate) fn note_notifier_active(&self) {
        self.notifier_active.set(true);
    }

    /// What the component leaves the notifier after its response: a call, if a change
    /// through this connection wrote events and no notifier was active to deliver them, or
    /// the clock said time-driven work was due and no notifier was at work; a watch, if one
    /// was (`NotifierCall::Watch`).
    /// `probe`: the request is a probe (`GET /health`).
    pub fn notifier_call(&self, probe: bool) -> NotifierCall {
        if self.events_written.get() > 0 && !self.notifier_active.get() {
            return NotifierCall::Now;
        }
        let clock = self.clock.get();
        if !clock.work_due {
            NotifierCall::None
        } else if clock.notifier_until <= crate::time::now_millis() {
            NotifierCall::Now
        } else if clock.watched && !probe {
            NotifierCall::None
        } else {
            NotifierCall::Watch {
                until: clock.notifier_until,
                claim: !probe,
            }
        }
    }

    pub fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, StoreError> {
        Ok(self.conn.execute(sql, params)?)
    }

    pub fn exec(&self, sql: &str, params: &[Value]) -> Result<(), StoreError> {
        self.query(sql, params).map(drop)
    }

    /// One page of a list: `columns` of the rows `from` names (a table, and its
    /// `where_all` conditions), in `order`, and how many rows there are in all.
    pub fn page(
        &self,
        columns: &str,
        from: &str,
        order: &str,
        params: &[Value],
        (page, limit): (i64, i64),
    ) -> Result<(QueryResult, i64), StoreError> {
        let counted = self.query(&format!("SELECT count(*) FROM {from}"), params)?;
        let total = rows(&counted).next().map_or(Ok(0), |row| row.int(0))?;
        let mut params = params.to_vec();
        params.push(Value::Integer(limit));
        params.push(Value::Integer((page - 1).saturating_mul(limit)));
        let result = self.query(
            &format!("SELECT {columns} FROM {from} ORDER BY {order} LIMIT ? OFFSET ?"),
            &params,
        )?;
        Ok((result, total))
    }

    /// Begins a write transaction.
    pub fn begin(&self) -> Result<Tx<'_>, StoreError> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        Ok(Tx {
            db: self,
            open: Cell::new(true),
            woke_notifier: Cell::new(false),
        })
    }

    /// Runs `body` in a write transaction, committing on `Ok`; on `Err` it rolls back.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        body: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.begin()?;
        let value = body(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// A write transaction (`BEGIN IMMEDIATE`, so two writers never both read and then collide
/// on the upgrade) on the request's connection. `commit` ends it; dropped without a commit,
/// or when the commit fails, it rolls back, so nothing half-written remains. The store's
/// writes take one: "inside the caller's transaction" is a type.
pub struct Tx<'db> {
    db: &'db Db,
    open: Cell<bool>,
    /// This transaction has set the app's clock for the events it wrote (`outbox::write`),
    /// and noted whether a notifier is at work: once per transaction is enough.
    woke_notifier: Cell<bool>,
}

impl Tx<'_> {
    pub fn commit(self) -> Result<(), StoreError> {
        self.db.exec("COMMIT", &[])?;
        self.open.set(false);
        Ok(())
    }

    /// Whether this is the first time this transaction wakes the notifier.
    pub(crate) fn first_wake(&self) -> bool {
        !self.woke_notifier.replace(true)
    }
}

impl Deref for Tx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open.get() {
            // Never leave the connection inside a transaction: the error that made us roll
            // back is the one worth reporting.
            let _ = self.db.exec("ROLLBACK", &[]);
        }
    }
}

/// The current time as SQLite writes it into `*_at` columns.
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// The database's clock in Unix milliseconds: the one clock of holds and their expiry, the
/// same for every replica that shares the database. A macro, so that SQL built with
/// `concat!` can name it.
macro_rules! now_ms {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}
pub(crate) use now_ms;

pub const NOW_MS: &str = now_ms!();

/// An optional text parameter: `NULL` when absent.
pub fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |v| Value::Text(v.to_owned()))
}

/// An optional integer parameter: `NULL` when absent.
pub fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}

/// Typed access to one row of a result, by column index, without panics.
pub struct Row<'a> {
    values: &'a [Value],
}

impl<'a> Row<'a> {
    pub fn new(values: &'a [Value]) -> Self {
        Self { values }
    }

    fn value(&self, index: usize) -> Result<&'a Value, StoreError> {
        self.values
            .get(index)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {index}")))
    }

    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.value(index)? {
            Value::Integer(i) => Ok(*i),
            other => Err(StoreError::Corrupt(format!(
                "column {index}: expected an integer, found {other:?}"
            ))),
        }
    }

    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.int(index).map(Some),
        }
    }

    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        match self.value(index)? {
            Value::Text(t) => Ok(t.clone()),
            other => Err(StoreError::Corrupt(format!(
                "column {index}: expected text, found {other:?}"
            ))),
        }
    }

    pub fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.text(index).map(Some),
        }
    }
}

/// ` WHERE` every one of `conditions` holds, or nothing if there are none.
pub fn where_all(conditions: &[impl AsRef<str>]) -> String {
    if conditions.is_empty() {
        return String::new();
    }
    let all: Vec<&str> = conditions.iter().map(AsRef::as_ref).collect();
    format!(" WHERE {}", all.join(" AND "))
}

/// The rows of a result, typed.
pub fn rows(result: &QueryResult) -> impl Iterator<Item = Row<'_>> {
    result.rows.iter().map(|row| Row::new(&row.values))
}
