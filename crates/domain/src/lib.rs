//! Domain types. Each has one checked constructor and a `parse` from raw JSON built on it, so
//! it is valid by construction whichever way it was made; every failure is a typed error
//! whose text is what a client sees for that field.
//!
//! A new product field goes in `product.rs`: its type, `NewProduct`/`ProductPatch`, and its
//! line in `product_records!`, the one place where the guard's WIT records and these types
//! are converted (`guard_records!`).

mod fields;
mod price;
mod product;
pub mod reservation;
pub mod stock;

pub use fields::{integer_text, FieldError};
pub use price::{Price, PriceError, MAX_PRICE, MAX_PRICE_CENTS};
pub use product::*;

/// Converts between the domain's request types and the guard's WIT records
/// (`wit/guard.wit`, interface `validation`), both ways. Expanded once on each side of the
/// boundary, with `$wit` the module of that side's generated bindings: the guard turns what
/// it validated into records (domain -> WIT), the handlers take them back (WIT -> domain,
/// with `from_checked`: the guard checked every value, so it is not checked again).
#[macro_export]
macro_rules! guard_records {
    ($wit:ident) => {
        $crate::product_records!($wit);
        $crate::stock_records!($wit);
        $crate::reservation_records!($wit);
    };
}
