//! The guest interfaces of SQLite: both generations, `fermyon:spin/sqlite@2.0.0` and
//! `spin:sqlite/sqlite@3.1.0`, implemented once on the instance state (`generation!`), and
//! 3.1.0's async functions, which WASI 0.3 guests call (`HostConnectionWithStore`).

use wasmtime::component::{Accessor, FutureReader, HasSelf, Resource, StreamReader};

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::fermyon::spin::sqlite as v2;
use super::bindings::spin::sqlite::sqlite as v3;
use super::database::{execute, Connection, Rows, SqlError, SqlValue, LOCK_WAIT};
use super::InstanceState;
use crate::blocking::blocking;

/// Both interface generations have the same types and functions in different modules: the
/// conversions and the `connection` methods written once, instantiated per module.
macro_rules! generation {
    ($wit:ident) => {
        impl From<$wit::Value> for SqlValue {
            fn from(value: $wit::Value) -> Self {
                match value {
                    $wit::Value::Integer(i) => Self::Integer(i),
                    $wit::Value::Real(f) => Self::Real(f),
                    $wit::Value::Text(t) => Self::Text(t),
                    $wit::Value::Blob(b) => Self::Blob(b),
                    $wit::Value::Null => Self::Null,
                }
            }
        }

        impl From<SqlValue> for $wit::Value {
            fn from(value: SqlValue) -> Self {
                match value {
                    SqlValue::Integer(i) => Self::Integer(i),
                    SqlValue::Real(f) => Self::Real(f),
                    SqlValue::Text(t) => Self::Text(t),
                    SqlValue::Blob(b) => Self::Blob(b),
                    SqlValue::Null => Self::Null,
                }
            }
        }

        impl From<Rows> for $wit::QueryResult {
            fn from(rows: Rows) -> Self {
                Self {
                    columns: rows.columns,
                    rows: rows
                        .rows
                        .into_iter()
                        .map(|values| $wit::RowResult {
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl From<SqlError> for $wit::Error {
            fn from(err: SqlError) -> Self {
                match err {
                    SqlError::NoSuchDatabase => Self::NoSuchDatabase,
                    SqlError::AccessDenied => Self::AccessDenied,
                    SqlError::InvalidConnection => Self::InvalidConnection,
                    SqlError::DatabaseFull => Self::DatabaseFull,
                    SqlError::Busy(text) | SqlError::Io(text) => Self::Io(text),
                }
            }
        }

        impl $wit::Host for InstanceState {}

        impl $wit::HostConnection for InstanceState {
            async fn open(
                &mut self,
                database: String,
            ) -> wasmtime::Result<Result<Resource<Connection>, $wit::Error>> {
                Ok(self.open_connection(&database).await?.map_err(Into::into))
            }

            async fn execute(
                &mut self,
                conn: Resource<Connection>,
                statement: String,
                parameters: Vec<$wit::Value>,
            ) -> wasmtime::Result<Result<$wit::QueryResult, $wit::Error>> {
                let params = parameters.into_iter().map(Into::into).collect();
                Ok(self
                    .run_statement(&conn, statement, params)
                    .await?
                    .map(Into::into)
                    .map_err(Into::into))
            }

            async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
                self.table.delete(conn)?;
                Ok(())
            }

            generation!(@$wit extra);
        }
    };
    // What only `spin:sqlite@3.0.0` has.
    (@v3 extra) => {
        async fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> wasmtime::Result<i64> {
            Ok(self.table.get(&conn)?.last_insert_rowid())
        }

        async fn changes(&mut self, conn: Resource<Connection>) -> wasmtime::Result<u64> {
            Ok(self.table.get(&conn)?.changes())
        }
    };
    (@v2 extra) => {};
}

generation!(v2);
generation!(v3);

/// `spin:sqlite@3.1.0`'s async functions. Each lets go of the store while it waits (for a
/// pooled connection, the write lock, the disk), so an instance's other requests run
/// meanwhile: the connection leaves the instance's table for the statement and comes back
/// with its result. Rows come back all at once, as one stream the guest reads.
impl<U> v3::HostConnectionWithStore<U> for HasSelf<InstanceState> {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        let granted = accessor.with(|mut access| {
            let state = access.get();
            let component = Arc::clone(&state.grant.component);
            state.grant.open(&database).map(|db| (db, component))
        });
        let (db, component) = match granted {
            Ok(granted) => granted,
            Err(refused) => return Ok(Err(SqlError::from(refused).into())),
        };
        let conn = match checkout(db, &component).await? {
            Ok(conn) => conn,
            Err(err) => return Ok(Err(err.into())),
        };
        accessor.with(|mut access| Ok(Ok(access.get().table.push(conn)?)))
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<v3::RowResult>,
                FutureReader<Result<(), v3::Error>>,
            ),
            v3::Error,
        >,
    > {
        let params = parameters.into_iter().map(Into::into).collect();
        let mut taken = accessor.with(|mut access| -> wasmtime::Result<Connection> {
            let handle = access.get().table.get_mut(&conn)?;
            let empty = handle.emptied();
            Ok(std::mem::replace(handle, empty))
        })?;
        let result = taken.run(statement, params).await;
        accessor.with(|mut access| {
            *access.get().table.get_mut(&conn)? = taken;
            let rows = match result {
                Ok(rows) => rows,
                Err(err) => return Ok(Err(err.into())),
            };
            let v3::QueryResult { columns, rows } = rows.into();
            let rows = StreamReader::new(&mut access, rows)?;
            let done = std::future::ready(Ok::<_, wasmtime::Error>(Ok::<(), v3::Error>(())));
            let done = FutureReader::new(&mut access, done)?;
            Ok(Ok((columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        accessor.with(|mut access| Ok(access.get().table.get(&conn)?.last_insert_rowid()))
    }

    async fn changes_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        accessor.with(|mut access| Ok(access.get().table.get(&conn)?.changes()))
    }
}

impl InstanceState {
    async fn open_connection(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<Resource<Connection>, SqlError>> {
        let db = match self.grant.open(label) {
            Ok(db) => db,
            Err(refused) => return Ok(Err(refused.into())),
        };
        let component = std::sync::Arc::clone(&self.grant.component);
        Ok(match checkout(db, &component).await? {
            Ok(conn) => Ok(self.table.push(conn)?),
            Err(err) => Err(err),
        })
    }

    /// Runs a statement on a connection of this instance (`Connection::run`).
    async fn run_statement(
        &mut self,
        conn: &Resource<Connection>,
        sql: String,
        params: Vec<SqlValue>,
    ) -> wasmtime::Result<Result<Rows, SqlError>> {
        Ok(self.table.get_mut(conn)?.run(sql, params).await)
    }
}

/// A connection of `db` for `component`'s guest. A pooled connection is taken in place;
/// opening a new one (a file) is blocking work, done on the blocking pool.
async fn checkout(
    db: Arc<super::Database>,
    component: &str,
) -> wasmtime::Result<Result<Connection, SqlError>> {
    let conn = match db.pooled() {
        Some(conn) => Ok(conn),
        None => blocking(move || db.connection()).await?,
    };
    Ok(conn.map(|mut conn| {
        conn.statements = Some(crate::metrics::get().statements(component));
        conn
    }))
}

impl Connection {
    /// Runs a statement without holding an async worker while it waits:
    ///
    /// - a statement that needs the write lock while another connection holds it returns
    ///   `SQLITE_BUSY` at once (connections have no busy handler) and is retried after an
    ///   async pause (yielding first, then 1 ms sleeps), for `LOCK_WAIT`;
    /// - one that ends a transaction (and may sync to disk) runs on the blocking pool;
    /// - everything else runs where it is: reads never wait in WAL mode, and a statement
    ///   inside a write transaction holds the lock already. Running it in place matters: a
    ///   hop to another thread would leave every other writer waiting while this one sat in
    ///   the async run queue, lock in hand.
    ///
    /// If the future is dropped half way (its instance was), the connection it worked on is
    /// dropped with it, which rolls back any transaction it had open.
    pub(super) async fn run(
        &mut self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Rows, SqlError> {
        if let Some(statements) = &self.statements {
            statements.count();
        }
        self.take_write_turn(&sql).await?;
        let result = if ends_transaction(&sql) {
            self.run_on_blocking_pool(sql, params).await
        } else {
            self.run_here(&sql, &params).await
        };
        // The turn at the write lock lasts as long as the transaction.
        if self
            .conn
            .as_ref()
            .is_none_or(rusqlite::Connection::is_autocommit)
        {
            self.write_turn = None;
        }
        result
    }

    /// Waits, in arrival order, for this connection's turn at the write lock if `sql` may
    /// need it and the connection does not hold it yet.
    async fn take_write_turn(&mut self, sql: &str) -> Result<(), SqlError> {
        if self.write_turn.is_some() || !may_write(self.raw()?, sql) {
            return Ok(());
        }
        let queue = Arc::clone(&self.db.writer);
        match tokio::time::timeout(LOCK_WAIT, queue.acquire_owned()).await {
            Ok(Ok(turn)) => {
                self.write_turn = Some(turn);
                Ok(())
            }
            _ => Err(SqlError::Busy("database is locked".into())),
        }
    }

    /// Runs a statement on this thread. If another process holds the write lock it returns
    /// `SQLITE_BUSY` at once (connections have no busy handler); it is then tried again
    /// after an async pause, for `LOCK_WAIT`.
    async fn run_here(&mut self, sql: &str, params: &[SqlValue]) -> Result<Rows, SqlError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let result = match self.raw() {
                Ok(raw) => execute(raw, sql, params),
                Err(err) => Err(err),
            };
            match result {
                Err(SqlError::Busy(_)) if started.elapsed() < LOCK_WAIT => {
                    wait_for_lock(attempt).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Runs a statement on the blocking pool. The SQLite connection leaves for the call and
    /// comes back with the result; if this future is dropped meanwhile it is closed instead,
    /// which rolls back any transaction it had open.
    async fn run_on_blocking_pool(
        &mut self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Rows, SqlError> {
        let raw = self.conn.take().ok_or(SqlError::InvalidConnection)?;
        let turn = self.write_turn.take();
        let (raw, turn, result) = blocking(move || {
            let result = execute(&raw, &sql, &params);
            // A transaction that ended gives up its turn here, at once: the next writer
            // must not wait for this task to be scheduled again.
            let turn = if raw.is_autocommit() { None } else { turn };
            (raw, turn, result)
        })
        .await
        .map_err(|err| SqlError::Io(format!("{err:#}")))?;
        self.conn = Some(raw);
        self.write_turn = turn;
        result
    }
}

/// Waits before another try for a write lock another process holds, without holding a
/// thread: the first tries only yield, later ones sleep a millisecond.
async fn wait_for_lock(attempt: u32) {
    if attempt < YIELDS_BEFORE_SLEEPING {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Tries for the write lock that only yield to other tasks before sleeping.
const YIELDS_BEFORE_SLEEPING: u32 = 32;

/// Whether `sql` may need the write lock: `BEGIN IMMEDIATE`/`EXCLUSIVE`, or a statement
/// that writes. (A plain `BEGIN` takes the lock only at its first write.)
fn may_write(conn: &rusqlite::Connection, sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    match words.first().map(String::as_str) {
        Some("BEGIN") => words
            .get(1)
            .is_some_and(|w| w.starts_with("IMMEDIATE") || w.starts_with("EXCLUSIVE")),
        Some("COMMIT" | "END" | "ROLLBACK" | "RELEASE" | "SAVEPOINT") => false,
        // A statement SQLite cannot prepare will fail anyway; no turn needed.
        _ => conn
            .prepare_cached(sql)
            .map(|stmt| !stmt.readonly())
            .unwrap_or(false),
    }
}

/// `COMMIT`, `END`, `ROLLBACK` or `RELEASE`: statements that may sync to disk.
fn ends_transaction(sql: &str) -> bool {
    let keyword: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    ["COMMIT", "END", "ROLLBACK", "RELEASE"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_end_a_transaction_are_recognised() {
        for sql in [
            "COMMIT",
            " commit;",
            "END TRANSACTION",
            "rollback",
            "RELEASE sp",
        ] {
            assert!(ends_transaction(sql), "{sql}");
        }
        for sql in [
            "BEGIN IMMEDIATE",
            "UPDATE t SET c = 1",
            "SELECT 'COMMIT'",
            "committed",
        ] {
            assert!(!ends_transaction(sql), "{sql}");
        }
    }
}
