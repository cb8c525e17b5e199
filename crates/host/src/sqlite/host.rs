//! The guest interfaces of SQLite: both generations, `fermyon:spin/sqlite@2.0.0` and
//! `spin:sqlite/sqlite@3.0.0`, over one implementation.

use wasmtime::component::Resource;

use super::{Connection, Rows, SqlError, SqlValue};
use crate::bindings::fermyon::spin::sqlite as v2;
use crate::bindings::spin::sqlite::sqlite as v3;
use crate::state::HostState;

/// Both interface generations have the same types in different modules: one conversion
/// written once, instantiated per module.
macro_rules! convert_types {
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
                    SqlError::Io(text) => Self::Io(text),
                }
            }
        }

        impl $wit::Host for HostState {}
    };
}

convert_types!(v2);
convert_types!(v3);

impl HostState {
    fn sqlite_open(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<Resource<Connection>, SqlError>> {
        match self.sqlite.open(label) {
            Ok(conn) => Ok(Ok(self.table.push(conn)?)),
            Err(err) => Ok(Err(err)),
        }
    }

    fn sqlite_execute(
        &mut self,
        conn: &Resource<Connection>,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> wasmtime::Result<Result<Rows, SqlError>> {
        Ok(self.table.get(conn)?.execute(sql, params))
    }

    fn sqlite_drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl v2::HostConnection for HostState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v2::Error>> {
        Ok(self.sqlite_open(&database)?.map_err(Into::into))
    }

    fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> wasmtime::Result<Result<v2::QueryResult, v2::Error>> {
        let params = parameters.into_iter().map(Into::into).collect();
        Ok(self
            .sqlite_execute(&conn, &statement, params)?
            .map(Into::into)
            .map_err(Into::into))
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.sqlite_drop(conn)
    }
}

impl v3::HostConnection for HostState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        Ok(self.sqlite_open(&database)?.map_err(Into::into))
    }

    fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<Result<v3::QueryResult, v3::Error>> {
        let params = parameters.into_iter().map(Into::into).collect();
        Ok(self
            .sqlite_execute(&conn, &statement, params)?
            .map(Into::into)
            .map_err(Into::into))
    }

    fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> wasmtime::Result<i64> {
        let conn = self.table.get(&conn)?;
        Ok(conn.raw().map(|c| c.last_insert_rowid()).unwrap_or(0))
    }

    fn changes(&mut self, conn: Resource<Connection>) -> wasmtime::Result<u64> {
        let conn = self.table.get(&conn)?;
        Ok(conn.raw().map(|c| c.changes()).unwrap_or(0))
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.sqlite_drop(conn)
    }
}
