//! The store's boundary with Spin: bindings of its own for the Spin 2 interfaces it uses
//! (`wit/world.wit`), which depend on no SDK. Everything else in the store reaches SQLite
//! and the component's variables through here.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "inventory:store/store",
        generate_all,
    });
}

pub use bindings::fermyon::spin::sqlite::{Connection, Error as SqliteError, QueryResult, Value};

/// A variable of this component (`[component.<id>.variables]`), or why it cannot be read.
pub fn variable(name: &str) -> Result<String, String> {
    bindings::fermyon::spin::variables::get(name).map_err(|err| format!("{err:?}"))
}

/// A connection to the app's default database.
pub fn open_default() -> Result<Connection, SqliteError> {
    Connection::open("default")
}
