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
//! Where things go:
//!
//! - a new route: a line of the component's `ROUTES` and its handler, in `routes.rs`;
//! - a new product field: the domain crate (`product.rs`: its type, its rules, its line in
//!   `product_records!`), its member of the records in `wit/guard.wit`, a migration file in
//!   `migrations/`, `store/products.rs`, and `api/openapi.json`;
//! - a new event type: a variant of `store::events::EventType`, its `data`, and the store
//!   function of the change that writes it.

pub use inventory_domain as domain;
pub mod ids;
pub mod sleep;
pub mod store;
pub mod time;
pub mod web;

pub use web::http::{Req, Resp};
pub use web::pipeline::{serve, serve_private};
pub use web::problem::{ApiError, FieldError};
pub use web::routing::{Access, Call, Handler, Route};
