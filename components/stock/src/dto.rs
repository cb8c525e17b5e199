//! Response views of the stock API (request bodies are validated by the guard).

use serde::Serialize;

use inventory::store::ledger::LedgerEntry;
use inventory::store::stock::Taken;
use inventory::web::taken::{AllocationView, DeductedLine};

/// `POST /product/{id}/deduct`: the product's line, and the order.
#[derive(Serialize)]
pub struct DeductedView<'a> {
    #[serde(flatten)]
    pub line: DeductedLine,
    pub order_id: &'a str,
}

impl<'a> DeductedView<'a> {
    pub fn new(taken: &Taken, order_id: &'a str) -> Self {
        Self {
            line: DeductedLine::from(taken),
            order_id,
        }
    }
}

/// `POST /product/{id}/restock`.
#[derive(Serialize)]
pub struct RestockedView<'a> {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub restocked: i64,
    pub order_id: Option<&'a str>,
    pub reason: &'a str,
    /// Where the units went.
    pub allocations: Vec<AllocationView>,
}

/// `POST /stock/deduct`.
#[derive(Serialize)]
pub struct BatchDeductedView<'a> {
    pub order_id: &'a str,
    pub lines: Vec<DeductedLine>,
}

/// `GET /product/{id}/movements`: a page of the ledger, each entry as clients see it.
#[derive(Serialize)]
pub struct MovementPageView {
    pub items: Vec<LedgerEntry>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}
