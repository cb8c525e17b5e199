//! The events routes and their handlers.

use futures::future::LocalBoxFuture;
use inventory::store::outbox::{self, Redelivery, Status};
use inventory::time::now_millis;
use inventory::web::http::{header, status, Method};
use inventory::web::notify;
use inventory::web::paging::{bad_param, PageQuery};
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use crate::dto::{EventPageView, EventView, RedeliveryView};

const ADMIN: Access = Access::AnyOf(&["events:admin"]);
/// The app's metrics: a scraper's token needs nothing else.
const METRICS: Access = Access::AnyOf(&["metrics:read"]);

/// An event id: `evt_` and lower-case letters and digits.
const MAX_EVENT_ID_CHARS: usize = 64;

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/events",
        access: ADMIN,
        handler: Handler::Sync(list_events),
    },
    Route {
        method: Method::Post,
        path: "/events/deliver",
        access: ADMIN,
        handler: Handler::Async(deliver_events),
    },
    Route {
        method: Method::Post,
        path: "/events/{id}/redeliver",
        access: ADMIN,
        handler: Handler::Sync(redeliver_event),
    },
    Route {
        method: Method::Get,
        path: "/metrics",
        access: METRICS,
        handler: Handler::Sync(crate::metrics::get_metrics),
    },
];

/// `GET /events?status=pending|dead&page&limit`: undelivered events, oldest first.
fn list_events(call: &Call<'_>) -> Result<Resp, ApiError> {
    let mut status = None;
    let query = PageQuery::parse(&call.req.query, "page, limit, status", |key, value| {
        if key != "status" {
            return Ok(false);
        }
        status = Some(match value {
            "pending" => Status::Pending,
            "dead" => Status::Dead,
            _ => return Err(bad_param(key, "must be pending or dead")),
        });
        Ok(true)
    })?;
    let (items, total) = outbox::undelivered(call.db()?, status, query.page, query.limit)?;
    let view = EventPageView {
        items: items.into_iter().map(EventView::from).collect(),
        page: query.page,
        limit: query.limit,
        total,
    };
    let links = query.links("/events", total);
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}

/// `POST /events/deliver`: one delivery pass by the notifier, now; its counts.
fn deliver_events<'c>(call: &'c Call<'c>) -> LocalBoxFuture<'c, Result<Resp, ApiError>> {
    Box::pin(async move {
        let answer = notify::call_notifier(notify::DELIVER_PATH, &call.ctx.request_id)
            .await
            .map_err(|err| ApiError::Unavailable(format!("the notifier: {err}")))?;
        let counts: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|err| ApiError::Internal(format!("the notifier's answer: {err}")))?;
        match answer.status {
            status::OK => Ok(Resp::json(status::OK, &counts)),
            status => Err(ApiError::Unavailable(format!(
                "the notifier answered {status}: {counts}"
            ))),
        }
    })
}

/// `POST /events/{id}/redeliver`: a dead (or pending) event due again, now.
fn redeliver_event(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.param("id").unwrap_or_default();
    if !is_event_id(id) {
        return Err(ApiError::InvalidRequest(
            "`id` must be an event id (`evt_...`)".into(),
        ));
    }
    match outbox::redeliver(call.db()?, id, now_millis())? {
        Redelivery::Due(rows) => {
            let view = RedeliveryView {
                id: id.to_owned(),
                items: rows.into_iter().map(EventView::from).collect(),
            };
            // The notifier takes it from here, after the response.
            Ok(Resp::json(status::OK, &view).notifying(true))
        }
        Redelivery::AlreadyDelivered => Err(ApiError::Conflict(format!(
            "event {id} has been delivered to every receiver"
        ))),
        Redelivery::NotFound => Err(ApiError::NotFound(format!("no event {id}"))),
    }
}

fn is_event_id(id: &str) -> bool {
    id.len() <= MAX_EVENT_ID_CHARS
        && id.strip_prefix("evt_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_evt_and_lower_case_letters_and_digits() {
        assert!(is_event_id("evt_019a2b3c4d5e6f7a8b9c0d1e2f"));
        for bad in [
            "",
            "evt_",
            "evt_ABC",
            "msg_1",
            "evt_1/2",
            &format!("evt_{}", "a".repeat(61)),
        ] {
            assert!(!is_event_id(bad), "{bad}");
        }
    }
}
