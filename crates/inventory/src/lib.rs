//! The inventory service's shared library, linked into every HTTP component. Three layers,
//! each depending only on the ones below it:
//!
//! - [`web`]: the request pipeline (context, routing, the guard's stages, problem+json, the
//!   access log, paging, idempotent writes); what a component's routes are written against;
//! - [`store`]: the database (Spin SQLite), its migrations and one module per table group
//!   (products, stock changes, the ledger, idempotency records);
//! - [`domain`]: the request types, valid by construction (the `inventory-domain` crate,
//!   shared with the guard component).
//!
//! A new route goes in a component's `routes.rs`; a new product field in the domain crate,
//! `wit/guard.wit`, `web/guard.rs` and `store/products.rs`.

pub use inventory_domain as domain;
pub mod store;
pub mod time;
pub mod web;

pub use web::http::{Req, Resp};
pub use web::pipeline::serve;
pub use web::problem::{ApiError, FieldError};
pub use web::routing::{Access, Call, Handler, Route};
