//! The HTTP edge: everything between a component's entry point and the store.

pub mod context;
pub mod guard;
pub mod http;
pub mod idempotency;
pub mod log;
pub mod notify;
pub mod paging;
pub mod pipeline;
pub mod problem;
pub mod query;
pub mod routing;
pub mod taken;
