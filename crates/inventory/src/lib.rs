//! The inventory service's shared library, linked into every HTTP component: the request
//! pipeline, problem+json errors, the domain types and the repository over Spin SQLite.

pub mod db;
pub mod guard;
pub use inventory_domain as domain;
pub mod http;
pub mod idempotency;
pub mod log;
pub mod migrations;
pub mod paging;
pub mod pipeline;
pub mod problem;
pub mod products;
pub mod query;
pub mod stock;
pub mod time;

pub use http::{Req, Resp};
pub use pipeline::{serve, Access, Call, Ctx, Route};
pub use problem::{ApiError, FieldError};
