//! A product's quantities after a deduct took units of it, as clients see them: one line of
//! a deduct's, a batch's and a hold's commit's answer (`api/openapi.json`), the same for
//! every route that takes stock, as the store's taking is.

use serde::Serialize;

use crate::domain::allocation::Allocation;
use crate::store::stock::Taken;

/// Units of a line at one location, as every answer and event lists them.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationView {
    pub location_id: String,
    pub quantity: i64,
}

impl AllocationView {
    pub fn list(allocations: &[Allocation]) -> Vec<Self> {
        allocations
            .iter()
            .map(|a| Self {
                location_id: a.location_id.clone(),
                quantity: a.quantity,
            })
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct DeductedLine {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub deducted: i64,
    /// Where the units were taken, in the order taken.
    pub allocations: Vec<AllocationView>,
}

impl From<&Taken> for DeductedLine {
    fn from(taken: &Taken) -> Self {
        Self {
            product_id: taken.product_id,
            stock: taken.stock,
            reserved: taken.reserved,
            available: taken.available,
            deducted: taken.quantity,
            allocations: AllocationView::list(&taken.allocations),
        }
    }
}
