//! A product's quantities after a deduct took units of it, as clients see them: one line of
//! a deduct's, a batch's and a hold's commit's answer (`api/openapi.json`), the same for
//! every route that takes stock, as the store's taking is.

use serde::Serialize;

use crate::store::stock::Taken;

#[derive(Debug, Serialize)]
pub struct DeductedLine {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub deducted: i64,
}

impl From<&Taken> for DeductedLine {
    fn from(taken: &Taken) -> Self {
        Self {
            product_id: taken.product_id,
            stock: taken.stock,
            reserved: taken.reserved,
            available: taken.available,
            deducted: taken.quantity,
        }
    }
}
