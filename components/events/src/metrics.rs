//! `GET /metrics`: the app's figures for Prometheus (scope `metrics:read`): the catalogue's
//! totals, holds active, and per receiver host the events not yet delivered and the age of
//! the oldest. The host's own metrics (requests, latency, instances) are on its
//! `--metrics-listen`.

use std::collections::BTreeMap;

use inventory::store::config;
use inventory::store::metrics::{self, Figures};
use inventory::web::http::{header, status};
use inventory::{ApiError, Call, Resp};
use metrics_text::{Exposition, Kind};

pub fn get_metrics(call: &Call<'_>) -> Result<Resp, ApiError> {
    let configured = config::configured_receivers()?;
    let figures = metrics::figures(call.db()?, &configured)?;
    let mut resp = Resp::new(status::OK);
    resp.body = render(&figures).into_bytes();
    resp.set_header(header::CONTENT_TYPE, metrics_text::CONTENT_TYPE);
    Ok(resp)
}

/// Undelivered events by receiver host: several URLs on one host add up, and the oldest
/// pending event is the oldest of any.
#[derive(Default)]
struct HostEvents {
    pending: i64,
    dead: i64,
    oldest_pending_seconds: i64,
}

fn render(figures: &Figures) -> String {
    let mut e = Exposition::new();
    e.family(
        "inventory_products",
        Kind::Gauge,
        "Products in the catalogue.",
    )
    .sample("inventory_products", &[], figures.products);
    e.family(
        "inventory_units",
        Kind::Gauge,
        "Units over all products: on hand (stock), held by active holds (reserved), and \
         available to sell (stock less reserved, never below 0 per product).",
    )
    .sample("inventory_units", &[("quantity", "stock")], figures.stock)
    .sample(
        "inventory_units",
        &[("quantity", "reserved")],
        figures.reserved,
    )
    .sample(
        "inventory_units",
        &[("quantity", "available")],
        figures.available,
    );
    e.family(
        "inventory_reservations_active",
        Kind::Gauge,
        "Holds active: not committed, released or expired.",
    )
    .sample("inventory_reservations_active", &[], figures.holds_active);

    let mut hosts: BTreeMap<&str, HostEvents> = BTreeMap::new();
    for r in &figures.receivers {
        let host = hosts.entry(receiver_host(&r.receiver)).or_default();
        host.pending += r.pending;
        host.dead += r.dead;
        host.oldest_pending_seconds = host.oldest_pending_seconds.max(r.oldest_pending_seconds);
    }
    e.family(
        "inventory_events_undelivered",
        Kind::Gauge,
        "Events not yet delivered, by receiver host: pending (to be delivered or retried) \
         and dead (given up after 72 hours, or for a receiver no longer configured).",
    );
    for (host, events) in &hosts {
        e.sample(
            "inventory_events_undelivered",
            &[("receiver", host), ("status", "pending")],
            events.pending,
        )
        .sample(
            "inventory_events_undelivered",
            &[("receiver", host), ("status", "dead")],
            events.dead,
        );
    }
    e.family(
        "inventory_events_oldest_pending_age_seconds",
        Kind::Gauge,
        "How long ago the oldest event still pending for a receiver host was written (0 \
         when none is pending): an order service that has stopped hearing about stock.",
    );
    for (host, events) in &hosts {
        e.sample(
            "inventory_events_oldest_pending_age_seconds",
            &[("receiver", host)],
            events.oldest_pending_seconds,
        );
    }
    e.finish()
}

/// The host (and port) of a receiver URL: `https://orders.example.com:8443/hooks` ->
/// `orders.example.com:8443`.
fn receiver_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::store::metrics::ReceiverFigures;

    #[test]
    fn a_receiver_is_labelled_by_its_host_and_port_alone() {
        assert_eq!(
            receiver_host("https://orders.example.com:8443/hooks?x=1"),
            "orders.example.com:8443"
        );
        assert_eq!(receiver_host("http://user:pw@10.0.0.7/e"), "10.0.0.7");
        assert_eq!(receiver_host("http://[::1]:3001"), "[::1]:3001");
    }

    #[test]
    fn receivers_on_one_host_add_up() {
        let figures = Figures {
            receivers: vec![
                ReceiverFigures {
                    receiver: "http://a:1/x".into(),
                    pending: 2,
                    dead: 1,
                    oldest_pending_seconds: 30,
                },
                ReceiverFigures {
                    receiver: "http://a:1/y".into(),
                    pending: 3,
                    dead: 0,
                    oldest_pending_seconds: 90,
                },
            ],
            ..Figures::default()
        };
        let text = render(&figures);
        assert!(
            text.contains("inventory_events_undelivered{receiver=\"a:1\",status=\"pending\"} 5\n")
        );
        assert!(text.contains("inventory_events_undelivered{receiver=\"a:1\",status=\"dead\"} 1\n"));
        assert!(text.contains("inventory_events_oldest_pending_age_seconds{receiver=\"a:1\"} 90\n"));
    }
}
