//! The last stage of a change: once its response is sent, a chained request to the private
//! notifier component (Spin service chaining, `http://notifier.spin.internal`), which
//! delivers the change's events. The notifier answers at once and delivers on its own time;
//! if it cannot be reached the events stay in the outbox for the next change or for
//! `POST /events/deliver`, so nothing is lost and the client never waits.

use std::time::Duration;

use crate::edge::{self, sleep, Answer, Post, Scheme, SendError};
use crate::store::{outbox, Db};
use crate::time::now_millis;
use crate::web::http::{header, status};

/// The notifier component, by service chaining (`http://notifier.spin.internal`).
const NOTIFIER: &str = "notifier.spin.internal";
/// Its entry for "there is something to deliver": answers at once, delivers after.
pub const NOTIFY_PATH: &str = "/notify";
/// Its entry for one delivery pass now: answers with the counts when done.
pub const DELIVER_PATH: &str = "/deliver";

/// A `POST` of `path` to the notifier, with the caller's request id; its answer.
pub async fn call_notifier(path: &str, request_id: &str) -> Result<Answer, SendError> {
    let headers = [(header::REQUEST_ID, request_id.to_owned())];
    edge::send(Post {
        scheme: Scheme::Http,
        authority: NOTIFIER,
        path_with_query: path,
        headers: &headers,
        body: &[],
        timeout: None,
    })
    .await
}

/// Asks the notifier to deliver what is due.
pub async fn notifier(request_id: &str) {
    match call_notifier(NOTIFY_PATH, request_id).await {
        Ok(answer) if answer.status == status::ACCEPTED => {}
        Ok(answer) => eprintln!(
            "{request_id}: the notifier answered {}; the events stay in the outbox",
            answer.status
        ),
        Err(err) => eprintln!(
            "{request_id}: the notifier could not be reached ({err}); the events stay in the outbox"
        ),
    }
}

/// Watches a notifier that holds the active role while work is due: waits, after the
/// response, until the notifier's heartbeat would run out. A live notifier renews it, and
/// there is nothing to do; one that died with its process (`kill -9`, a crash) leaves it to
/// run out, and the watcher calls a new one. So a probe after a restart starts delivery
/// again, with no job. A request (`claim`) watches only if no other request does.
pub async fn watch(db: &Db, until: i64, claim: bool, request_id: &str) {
    let now = now_millis();
    if claim && !matches!(outbox::watch(db, now, until), Ok(true)) {
        return;
    }
    let wait = (until - now + 100).clamp(0, outbox::HEARTBEAT_MS + 100);
    sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    match db.read_clock() {
        Ok(clock) if clock.work_due && clock.notifier_until <= now_millis() => {
            notifier(request_id).await;
        }
        _ => {}
    }
}
