//! The last stage of a change: once its response is sent, a chained request to the private
//! notifier component (Spin service chaining, `http://notifier.spin.internal`), which
//! delivers the change's events. The notifier answers at once and delivers on its own time;
//! if it cannot be reached the events stay in the outbox for the next change or for
//! `POST /events/deliver`, so nothing is lost and the client never waits.

use spin_sdk::http::{IncomingResponse, Method, Request};

/// The notifier's entry for "there is something to deliver".
pub const NOTIFIER_URL: &str = "http://notifier.spin.internal/notify";

pub async fn notifier(request_id: &str) {
    let request = Request::builder()
        .method(Method::Post)
        .uri(NOTIFIER_URL)
        .header("x-request-id", request_id)
        .build();
    match spin_sdk::http::send::<_, IncomingResponse>(request).await {
        Ok(response) if response.status() == 202 => {}
        Ok(response) => eprintln!(
            "{request_id}: the notifier answered {}; the events stay in the outbox",
            response.status()
        ),
        Err(err) => eprintln!(
            "{request_id}: the notifier could not be reached ({err}); the events stay in the outbox"
        ),
    }
}
