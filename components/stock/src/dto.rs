//! Response views of the stock API (request bodies are validated by the guard).

use serde::Serialize;

use inventory::store::ledger::LedgerEntry;

/// `POST /product/{id}/deduct`.
#[derive(Serialize)]
pub struct DeductedView<'a> {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub deducted: i64,
    pub order_id: &'a str,
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
}

/// `POST /stock/deduct`.
#[derive(Serialize)]
pub struct BatchDeductedView<'a> {
    pub order_id: &'a str,
    pub lines: Vec<DeductedLineView>,
}

#[derive(Serialize)]
pub struct DeductedLineView {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub deducted: i64,
}

/// One ledger entry.
#[derive(Serialize)]
pub struct MovementView {
    pub id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    pub order_id: Option<String>,
    pub at: String,
}

impl From<LedgerEntry> for MovementView {
    fn from(e: LedgerEntry) -> Self {
        Self {
            id: e.id,
            delta: e.delta,
            stock_after: e.stock_after,
            reason: e.reason,
            order_id: e.order_id,
            at: e.at,
        }
    }
}

/// `GET /product/{id}/movements`.
#[derive(Serialize)]
pub struct MovementPageView {
    pub items: Vec<MovementView>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}
