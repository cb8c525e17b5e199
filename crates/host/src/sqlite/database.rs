//! A SQLite database: a local file (or a named in-memory one), with a pool of connections.
//!
//! Each guest `open` checks a connection out of the database's pool and keeps it until the
//! guest drops it, so a transaction a guest begins stays on its own connection, as on Spin.
//! A connection goes back to the pool rolled back if the guest left a transaction open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;

/// How many times a statement at start (`--sqlite`) retries for another connection's write
/// lock (about 5 s in all, see `wait_for_lock`).
const BUSY_RETRIES: i32 = 8000;
/// How long a guest's statement waits for another connection's write lock before
/// `SQLITE_BUSY` reaches the guest (see `host.rs`: it waits without holding a thread).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection; the app issues a few dozen distinct ones.
const STATEMENT_CACHE: usize = 64;

/// One database file and its idle connections.
pub struct Database {
    /// What connections open: the file, or an in-memory database's URI.
    target: Target,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// The write lock's queue in this process: a guest connection takes the one permit
    /// before a statement that needs SQLite's write lock and keeps it until its transaction
    /// ends, so writers wait in arrival order, asynchronously, instead of racing for the
    /// lock. (Other processes sharing the file still meet `SQLITE_BUSY`.)
    pub(super) writer: Arc<tokio::sync::Semaphore>,
    /// An in-memory database lives while a connection to it is open: this one.
    _keep_alive: Option<Mutex<rusqlite::Connection>>,
}

enum Target {
    File(PathBuf),
    /// SQLite's `memdb` VFS under a name of its own: shared by this process's connections,
    /// with the same locking as a file.
    Memory(String),
}

impl Target {
    fn open(&self) -> Result<rusqlite::Connection> {
        match self {
            Self::File(path) => rusqlite::Connection::open(path)
                .with_context(|| format!("cannot open the SQLite database {}", path.display())),
            Self::Memory(uri) => rusqlite::Connection::open_with_flags(
                uri,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
                    | rusqlite::OpenFlags::SQLITE_OPEN_URI
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .context("cannot open an in-memory SQLite database"),
        }
    }
}

impl Database {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let db = Arc::new(Self {
            target: Target::File(path.to_path_buf()),
            idle: Mutex::new(Vec::new()),
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            _keep_alive: None,
        });
        // Open one connection now, so a bad path fails at start, not on the first request.
        let conn = db.connect()?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("cannot enable WAL on {}", path.display()))?;
        db.put_back(conn);
        Ok(db)
    }

    /// A database that lives as long as the host (Spin's `spin` type without a `path`).
    pub fn open_in_memory(label: &str) -> Result<Arc<Self>> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let label: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
        let target = Target::Memory(format!("file:/{label}-{n}?vfs=memdb"));
        let keep_alive = target.open()?;
        Ok(Arc::new(Self {
            target,
            idle: Mutex::new(Vec::new()),
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            _keep_alive: Some(Mutex::new(keep_alive)),
        }))
    }

    /// A connection for guests: no busy handler, so a statement that finds the write lock
    /// taken returns `SQLITE_BUSY` at once and the host waits for it asynchronously.
    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn = self.target.open()?;
        conn.busy_handler(None)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// A connection for a guest (may open a file: call it where blocking is fine).
    pub fn connection(self: &Arc<Self>) -> Result<Connection, SqlError> {
        self.checkout().map_err(|e| SqlError::Io(format!("{e:#}")))
    }

    fn checkout(self: &Arc<Self>) -> Result<Connection> {
        match self.pooled() {
            Some(conn) => Ok(conn),
            None => Ok(self.wrap(self.connect()?)),
        }
    }

    /// An idle connection, if the pool has one: no file is opened, so this never blocks.
    pub fn pooled(self: &Arc<Self>) -> Option<Connection> {
        let conn = self.idle.lock().ok().and_then(|mut idle| idle.pop())?;
        Some(self.wrap(conn))
    }

    fn wrap(self: &Arc<Self>, conn: rusqlite::Connection) -> Connection {
        Connection {
            conn: Some(conn),
            db: Arc::clone(self),
            write_turn: None,
            statements: None,
        }
    }

    fn put_back(&self, conn: rusqlite::Connection) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            // A connection we cannot bring back to a clean state is closed, not reused.
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Runs statements given at start (`--sqlite`), as one batch.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        let conn = self.connect()?;
        conn.busy_handler(Some(wait_for_lock))?;
        conn.execute_batch(sql)?;
        Ok(())
    }
}

/// The busy handler of connections used outside requests: waits for a writer on another
/// connection to commit, retrying after 10 us, doubling to 640 us, for about 5 s in all.
fn wait_for_lock(attempt: i32) -> bool {
    if attempt >= BUSY_RETRIES {
        return false;
    }
    let shift = u32::try_from(attempt).unwrap_or(0).min(6);
    std::thread::sleep(Duration::from_micros(10 << shift));
    true
}

/// A guest's connection; returns to its pool when the guest drops it.
pub struct Connection {
    pub(super) conn: Option<rusqlite::Connection>,
    pub(super) db: Arc<Database>,
    /// Its turn at the write lock, from the statement that needed it to the end of its
    /// transaction.
    pub(super) write_turn: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Counts the statements it runs for the component that opened it.
    pub(super) statements: Option<crate::metrics::StatementCounter>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.db.put_back(conn);
        }
        // The turn ends after the rollback above, never before.
        self.write_turn = None;
    }
}

impl Connection {
    /// A stand-in with no SQLite connection, left in the instance's table while the real
    /// one runs a statement away from it.
    pub(super) fn emptied(&self) -> Self {
        Self {
            conn: None,
            db: Arc::clone(&self.db),
            write_turn: None,
            statements: None,
        }
    }

    /// The rowid of the last row this connection inserted (0: none, or no connection).
    pub(super) fn last_insert_rowid(&self) -> i64 {
        self.raw()
            .map_or(0, rusqlite::Connection::last_insert_rowid)
    }

    /// Rows its last statement changed (0 with no connection).
    pub(super) fn changes(&self) -> u64 {
        self.raw().map_or(0, rusqlite::Connection::changes)
    }

    pub(super) fn raw(&self) -> Result<&rusqlite::Connection, SqlError> {
        self.conn.as_ref().ok_or(SqlError::InvalidConnection)
    }

    #[cfg(test)]
    fn execute(&self, sql: &str, params: Vec<SqlValue>) -> Result<Rows, SqlError> {
        execute(self.raw()?, sql, &params)
    }
}

/// Runs one statement and reads every row.
pub(super) fn execute(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<Rows, SqlError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            values.push(SqlValue::from(row.get_ref(index)?));
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

/// A value crossing the boundary, independent of the interface generation.
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl From<ValueRef<'_>> for SqlValue {
    fn from(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(f) => Self::Real(f),
            ValueRef::Text(t) => Self::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        }
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            Self::Integer(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Self::Real(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Self::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Self::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Self::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

pub struct Rows {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Vec<SqlValue>>,
}

pub enum SqlError {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    DatabaseFull,
    /// Another connection holds the write lock (`SQLITE_BUSY`, "database is locked").
    Busy(String),
    Io(String),
}

/// `SQLITE_BUSY_SNAPSHOT`: a read transaction's snapshot is too old to write from. Waiting
/// does not help, so it is not retried.
const SQLITE_BUSY_SNAPSHOT: i32 = 517;

impl From<rusqlite::Error> for SqlError {
    fn from(err: rusqlite::Error) -> Self {
        let busy_snapshot = matches!(
            &err,
            rusqlite::Error::SqliteFailure(e, _) if e.extended_code == SQLITE_BUSY_SNAPSHOT
        );
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::DatabaseFull,
            Some(rusqlite::ErrorCode::DatabaseBusy) if !busy_snapshot => {
                Self::Busy(err.to_string())
            }
            _ => Self::Io(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &Path) -> Arc<Database> {
        Database::open(&dir.join("db.sqlite")).unwrap()
    }

    fn ints(rows: &Rows) -> Vec<i64> {
        rows.rows
            .iter()
            .flatten()
            .map(|v| match v {
                SqlValue::Integer(i) => *i,
                _ => panic!("not an integer"),
            })
            .collect()
    }

    #[test]
    fn an_in_memory_database_is_shared_by_its_connections_only() {
        let db = Database::open_in_memory("default").unwrap();
        let other = Database::open_in_memory("default").unwrap();
        db.execute_batch("CREATE TABLE t (n); INSERT INTO t VALUES (7)")
            .unwrap();
        let conn = db.connect().unwrap();
        let n: i64 = conn.query_row("SELECT n FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 7);
        // Another label (or another host run) is another database.
        assert!(other.connect().unwrap().prepare("SELECT n FROM t").is_err());
    }

    #[test]
    fn guest_connections_commit_durably_in_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db.sqlite")).unwrap();
        let conn = db.connect().unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        // FULL (2): WAL commits survive power loss, not only a killed process.
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_when_the_connection_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let conn = db.connection().ok().unwrap();
        conn.execute("CREATE TABLE t (v INTEGER)", vec![])
            .ok()
            .unwrap();
        conn.execute("BEGIN", vec![]).ok().unwrap();
        conn.execute("INSERT INTO t VALUES (1)", vec![])
            .ok()
            .unwrap();
        drop(conn);
        let conn = db.connection().ok().unwrap();
        let rows = conn.execute("SELECT count(*) FROM t", vec![]).ok().unwrap();
        assert_eq!(ints(&rows), vec![0]);
    }

    #[test]
    fn parameters_and_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = database(dir.path()).connection().ok().unwrap();
        let rows = conn
            .execute(
                "SELECT ?, ?, ?, ?, ?",
                vec![
                    SqlValue::Integer(-7),
                    SqlValue::Real(1.5),
                    SqlValue::Text("é".into()),
                    SqlValue::Blob(vec![0, 1]),
                    SqlValue::Null,
                ],
            )
            .ok()
            .unwrap();
        assert_eq!(rows.columns.len(), 5);
        let row = &rows.rows[0];
        assert!(matches!(row[0], SqlValue::Integer(-7)));
        assert!(matches!(row[1], SqlValue::Real(f) if f == 1.5));
        assert!(matches!(&row[2], SqlValue::Text(t) if t == "é"));
        assert!(matches!(&row[3], SqlValue::Blob(b) if b == &[0, 1]));
        assert!(matches!(row[4], SqlValue::Null));
    }
}
