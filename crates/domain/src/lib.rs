//! Domain types. Each has one checked constructor and a `parse` from raw JSON built on it, so
//! it is valid by construction whichever way it was made; every failure is a typed error
//! whose text is what a client sees for that field.
//!
//! A new product field goes in `product.rs` (its type, and `NewProduct`/`ProductPatch`).

mod fields;
mod price;
mod product;
pub mod stock;

pub use fields::{integer_text, FieldError};
pub use price::{Price, PriceError, MAX_PRICE_CENTS};
pub use product::*;
