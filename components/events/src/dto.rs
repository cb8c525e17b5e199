//! Response views of the events API.

use serde::Serialize;

use inventory::store::outbox::Undelivered;
use inventory::time::rfc3339_seconds;

/// An undelivered event, for one receiver.
#[derive(Serialize)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub product_id: i64,
    pub receiver: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<Undelivered> for EventView {
    fn from(e: Undelivered) -> Self {
        Self {
            id: e.event_id,
            kind: e.kind,
            product_id: e.product_id,
            receiver: e.receiver,
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: rfc3339_seconds(e.next_attempt_at),
            last_error: e.last_error,
            created_at: e.created_at,
        }
    }
}

/// `GET /events`.
#[derive(Serialize)]
pub struct EventPageView {
    pub items: Vec<EventView>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

/// `POST /events/{id}/redeliver`.
#[derive(Serialize)]
pub struct RedeliveryView {
    pub id: String,
    pub items: Vec<EventView>,
}
