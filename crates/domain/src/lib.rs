//! Domain types. Each has one checked constructor and a `parse` from raw JSON built on it, so
//! it is valid by construction whichever way it was made; every failure is a typed error
//! whose text is what a client sees for that field.
//!
//! A new product field goes in `product.rs`: its type, `NewProduct`/`ProductPatch`, and its
//! line in `product_records!`, the one place where the guard's WIT records and these types
//! are converted (`guard_records!`).

pub mod allocation;
mod fields;
pub mod limits;
pub mod location;
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
        $crate::location_records!($wit);
    };
}

/// Every request body the guard validates, listed once: the handlers' name for it, the
/// guard's function (`wit/guard.wit`, interface `validation`), its WIT record, and the domain
/// type it parses into. Each side of the boundary expands its own code from the list by
/// passing a macro (`$then`): the guard its exports, the handlers their calls. A new body is
/// a line here, its function in the WIT, and its type's `parse`.
#[macro_export]
macro_rules! request_bodies {
    ($then:ident) => {
        $then! {
            /// `POST /product`.
            new_product, validate_new_product, NewProduct, $crate::NewProduct;
            /// `PUT`/`PATCH /product/{id}`: the fields present, at least one.
            product_patch, validate_product_patch, ProductPatch, $crate::ProductPatch;
            /// `POST /product/{id}/deduct`.
            deduct, validate_deduct, Deduct, $crate::stock::Deduct;
            /// `POST /product/{id}/restock`.
            restock, validate_restock, Restock, $crate::stock::Restock;
            /// `POST /stock/deduct`.
            batch_deduct, validate_batch_deduct, BatchDeduct, $crate::stock::BatchDeduct;
            /// `POST /reservations`.
            new_reservation, validate_new_reservation, NewReservation,
                $crate::reservation::NewReservation;
            /// `POST /reservations/{id}/commit` with a body.
            partial_commit, validate_partial_commit, PartialCommit,
                $crate::reservation::PartialCommit;
            /// `PATCH /reservations/{id}`.
            extension, validate_extension, Extension, $crate::reservation::Extension;
            /// `POST /locations`.
            new_location, validate_new_location, NewLocation, $crate::location::NewLocation;
            /// `PATCH /locations/{id}`.
            location_patch, validate_location_patch, LocationPatch,
                $crate::location::LocationPatch;
            /// `PUT /product/{id}/stock/{location_id}`.
            level_count, validate_level_count, LevelCount, $crate::location::LevelCount;
            /// `POST /transfers`.
            new_transfer, validate_new_transfer, NewTransfer, $crate::location::NewTransfer;
        }
    };
}
