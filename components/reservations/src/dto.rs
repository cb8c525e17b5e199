//! Response views of the reservations API (request bodies are validated by the guard).

use serde::Serialize;

use inventory::store::held::HeldLine;
use inventory::store::reservations::Hold;
use inventory::store::stock::Taken;
use inventory::time;
use inventory::web::taken::{AllocationView, DeductedLine};

/// A hold, as clients see it (`api/openapi.json`, `Reservation`).
#[derive(Serialize)]
pub struct HoldView<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub status: &'static str,
    /// RFC 3339, milliseconds.
    pub expires_at: String,
    /// RFC 3339, seconds.
    pub created_at: String,
    pub lines: Vec<LineView>,
}

impl<'a> From<&'a Hold> for HoldView<'a> {
    fn from(hold: &'a Hold) -> Self {
        Self {
            id: &hold.id,
            order_id: &hold.order_id,
            status: hold.status.as_str(),
            expires_at: time::rfc3339_millis(hold.expires_at),
            created_at: time::rfc3339_seconds(hold.created_at),
            lines: hold.lines.iter().map(LineView::from).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct LineView {
    pub product_id: i64,
    pub quantity: i64,
    /// Where the units are held, fixed when the hold was made.
    pub allocations: Vec<AllocationView>,
}

impl From<&HeldLine> for LineView {
    fn from(line: &HeldLine) -> Self {
        Self {
            product_id: line.product_id,
            quantity: line.quantity,
            allocations: AllocationView::list(&line.allocations),
        }
    }
}

/// One page of holds.
#[derive(Serialize)]
pub struct HoldPageView<'a> {
    pub items: Vec<HoldView<'a>>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

/// A commit's answer: each product it took units of, after (kept with the hold, and given
/// again to a second commit).
#[derive(Serialize)]
pub struct CommittedView<'a> {
    pub id: &'a str,
    pub status: &'static str,
    pub order_id: &'a str,
    pub lines: Vec<DeductedLine>,
}

impl<'a> CommittedView<'a> {
    pub fn new(hold: &'a Hold, taken: &[Taken]) -> Self {
        Self {
            id: &hold.id,
            status: "committed",
            order_id: &hold.order_id,
            lines: taken
                .iter()
                .filter(|line| line.quantity > 0)
                .map(DeductedLine::from)
                .collect(),
        }
    }
}
