//! Response views of the reservations API that are not a hold itself (a hold serializes as
//! clients see it: `inventory::store::reservations::Hold`). Request bodies are validated by
//! the guard.

use serde::Serialize;

use inventory::store::reservations::Hold;

/// One page of holds.
#[derive(Serialize)]
pub struct HoldPageView {
    pub items: Vec<Hold>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}
