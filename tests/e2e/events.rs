//! Events to order services, end to end: the real app writes its outbox, the private notifier
//! delivers over real HTTP to a receiving server on loopback, and every signature is checked
//! with the `standardwebhooks` crate.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::{cli_token, manifest, on_every_target, repo_root, Target, TestApp, TestResponse};
use crate::receiver::{distinct_ids, Delivery, Receiver};
use crate::reservations::{act, held};
use crate::stock::post_keyed;

const SECRET: &str = "whsec_ZTJlLXRlc3QtZXZlbnRzLXNlY3JldC0zMi1ieXRlcyE=";
const NEXT_SECRET: &str = "whsec_ZTJlLW5leHQtZXZlbnRzLXNlY3JldC0zMi1ieXRlcyE=";
const PATH: &str = "/inventory-events";

fn app_sending_to(target: Target, urls: &str, extra: &[&str]) -> TestApp {
    let urls = format!("order_events_urls={urls}");
    let secret = format!("events_secret={SECRET}");
    let mut args = vec!["--variable", &urls, "--variable", &secret];
    args.extend_from_slice(extra);
    target.spawn_app_with(&args)
}

fn app_with(target: Target, receiver: &Receiver) -> TestApp {
    app_sending_to(target, &receiver.url(PATH), &[])
}

fn admin_token() -> String {
    cli_token(
        &manifest(),
        &["--sub", "operator", "--scope", "events:admin"],
    )
    .unwrap()
}

fn as_admin(app: &TestApp, method: &str, path: &str) -> TestResponse {
    let auth = format!("Bearer {}", admin_token());
    app.request(method, path, &[("authorization", &auth)], None)
}

/// The successful deliveries, one per event (the first success of each id), in arrival order.
fn events(deliveries: &[Delivery]) -> Vec<Delivery> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for d in deliveries.iter().filter(|d| d.succeeded()) {
        if !seen.contains(&d.id().to_owned()) {
            seen.push(d.id().to_owned());
            out.push(d.clone());
        }
    }
    out
}

fn types(events: &[Delivery]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.json()["type"].as_str().unwrap().to_owned())
        .collect()
}

fn outbox_rows(app: &TestApp) -> i64 {
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
    db.query_row("SELECT count(*) FROM outbox", [], |row| row.get(0))
        .unwrap()
}

/// Makes one product go through every event type: create, update, set, deducts crossing the
/// low and depleted marks, restock, batch deduct, delete. Returns its id.
fn every_event_type(app: &TestApp) -> i64 {
    let product =
        app.create_product(&json!({"name": "Mug", "price": 12.5, "stock": 8, "sku": "MUG-1"}));
    let id = product["id"].as_i64().unwrap();
    let path = format!("/product/{id}");
    assert_eq!(
        app.send_json("PATCH", &path, &json!({"name": "Blue mug"}))
            .status,
        200
    );
    let stock = serde_json::to_vec(&json!({"stock": 7})).unwrap();
    let set = app.request(
        "PUT",
        &path,
        &[("content-type", "application/json"), ("if-match", "\"2\"")],
        Some(&stock),
    );
    assert_eq!(set.status, 200);
    let deduct = format!("{path}/deduct");
    assert_eq!(
        post_keyed(
            app,
            &deduct,
            "k1",
            &json!({"quantity": 2, "order_id": "ord-1"})
        )
        .status,
        200
    );
    assert_eq!(
        post_keyed(
            app,
            &deduct,
            "k2",
            &json!({"quantity": 5, "order_id": "ord-2"})
        )
        .status,
        200
    );
    let restock = json!({"quantity": 3, "order_id": "ord-2", "reason": "order-cancelled"});
    assert_eq!(
        post_keyed(app, &format!("{path}/restock"), "k3", &restock).status,
        200
    );
    let batch = json!({"order_id": "ord-3", "lines": [{"product_id": id, "quantity": 1}]});
    assert_eq!(post_keyed(app, "/stock/deduct", "k4", &batch).status, 200);
    assert_eq!(app.request("DELETE", &path, &[], None).status, 204);
    id
}

/// Makes a product's holds go through every reservation event: a hold committed, one
/// released, one that expires (announced after the next request). Returns how many events
/// that writes.
pub(crate) fn every_reservation_event(app: &TestApp) -> usize {
    let product = app.create_product(&json!({"name": "Held", "price": 1, "stock": 10}));
    let lines = [(product["id"].as_i64().unwrap(), 2)];
    let hold = |key: &str, ttl: i64| held(app, key, &lines, ttl);
    let committed = hold("hold-1", 900);
    assert_eq!(act(app, &committed, "commit").status, 200);
    let released = hold("hold-2", 900);
    assert_eq!(act(app, &released, "release").status, 200);
    hold("hold-3", 1);
    std::thread::sleep(Duration::from_millis(1_200));
    // The next request notices the expired hold and hands it to the notifier.
    assert_eq!(app.get("/health").status, 200);
    // product.created, 3 x reservation.created, stock.deducted, reservation.committed,
    // reservation.released, reservation.expired.
    8
}

fn every_event_type_arrives_once_signed_in_commit_order_with_its_data(target: Target) {
    let receiver = Receiver::start();
    let app = app_with(target, &receiver);
    let id = every_event_type(&app);
    let received = receiver.wait_for_events(10, Duration::from_secs(20));
    let events = events(&received);
    assert_eq!(
        types(&events),
        [
            "product.created",
            "product.updated",
            "stock.set",
            "stock.deducted",
            "stock.low",
            "stock.deducted",
            "stock.depleted",
            "stock.restocked",
            "stock.deducted",
            "product.deleted"
        ]
    );
    for event in &received {
        event
            .verify(SECRET)
            .unwrap_or_else(|e| panic!("{e}: {event:?}"));
        assert_eq!(event.path, PATH);
        assert_eq!(event.header("content-type"), Some("application/json"));
        assert!(event.id().starts_with("evt_"), "{}", event.id());
    }
    assert_eq!(distinct_ids(&received), 10, "one id per event");
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e.json()["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 4, 5, 5, 6, 7, 8]);
    let body = events[3].json();
    assert_eq!(
        body["data"],
        json!({"product_id": id, "sku": "MUG-1", "stock": 5, "reserved": 0, "available": 5,
               "delta": -2, "order_id": "ord-1", "version": 4,
               "levels": [{"location_id": "default", "delta": -2, "stock": 5, "reserved": 0,
                           "available": 5}]})
    );
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.len() == 20,
        "{timestamp}"
    );
    let raw = String::from_utf8_lossy(&events[3].body);
    assert!(
        raw.starts_with("{\"type\":\"stock.deducted\",\"timestamp\":"),
        "{raw}"
    );
    assert_eq!(events[4].json()["data"]["threshold"], 5);
    assert_eq!(events[0].json()["data"]["price"].to_string(), "12.5");
    assert_eq!(events[7].json()["data"]["reason"], "order-cancelled");
    assert_eq!(
        events[9].json()["data"],
        json!({"product_id": id, "sku": "MUG-1", "version": 8})
    );
}

fn every_delivery_is_what_the_openapi_webhooks_describe(target: Target) {
    let receiver = Receiver::start();
    let app = app_with(target, &receiver);
    every_event_type(&app);
    let count = 10 + every_reservation_event(&app);
    // A product (`product.created`) moved to a second location (`stock.transferred`).
    crate::locations::location(&app, "second", 10);
    let id = crate::locations::stocked(&app, &[("default", 3)]);
    let moved = post_keyed(
        &app,
        "/transfers",
        "webhook-transfer",
        &json!({"product_id": id, "from": "default", "to": "second", "quantity": 2}),
    );
    assert_eq!(
        moved.status,
        201,
        "{}",
        String::from_utf8_lossy(&moved.body)
    );
    let count = count + 2;
    let received = receiver.wait_for_events(count, Duration::from_secs(20));

    let text = std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    let webhooks = document["webhooks"].as_object().unwrap();
    // One webhook per event type, and every type was delivered.
    let mut documented: Vec<&str> = webhooks.keys().map(String::as_str).collect();
    let mut delivered: Vec<String> = events(&received)
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    documented.sort_unstable();
    delivered.sort();
    delivered.dedup();
    assert_eq!(documented, delivered);

    // Each check is the whole document with a `$ref` at its root, so the refs inside the
    // document (`#/components/...`) resolve as they do for any OpenAPI reader.
    let validator = |pointer: &str| {
        let mut schema = document.clone();
        schema["$ref"] = json!(format!("#{pointer}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|err| panic!("{pointer}: {err}"))
    };
    for delivery in &received {
        let body = delivery.json();
        let kind = body["type"].as_str().unwrap();
        let escaped = kind.replace('~', "~0").replace('/', "~1");
        let operation = format!("/webhooks/{escaped}/post");
        let schema = format!("{operation}/requestBody/content/application~1json/schema");
        let errors: Vec<String> = validator(&schema)
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:?}\n{body}");
        let parameters = document
            .pointer(&format!("{operation}/parameters"))
            .unwrap();
        for (i, parameter) in parameters.as_array().unwrap().iter().enumerate() {
            let name = parameter["name"].as_str().unwrap();
            let value = delivery
                .header(name)
                .unwrap_or_else(|| panic!("{kind} has no {name}"));
            let check = validator(&format!("{operation}/parameters/{i}/schema"));
            assert!(check.is_valid(&json!(value)), "{kind}: {name}: {value:?}");
        }
    }
}

fn a_receiver_that_fails_three_times_gets_every_event_seconds_after_it_recovers(target: Target) {
    let receiver = Receiver::start();
    receiver.fail_next(3, 500);
    let app = app_with(target, &receiver);
    let product = app.create_product(&json!({"name": "Mug", "price": 1, "stock": 10}));
    let deduct = format!("/product/{}/deduct", product["id"]);
    assert_eq!(
        post_keyed(&app, &deduct, "k", &json!({"quantity": 1, "order_id": "o"})).status,
        200
    );
    // No other traffic from here on: the notifier retries on its own.
    let received = receiver.wait_for_events(2, Duration::from_secs(20));
    let all = receiver.deliveries();
    let failed: Vec<&Delivery> = all.iter().filter(|d| !d.succeeded()).collect();
    assert_eq!(failed.len(), 3, "{all:?}");
    let first = events(&received);
    assert_eq!(types(&first), ["product.created", "stock.deducted"]);
    // Backoff after the third failure is about 4 s: the receiver, healthy again from its
    // third answer on, has the event seconds later (a generous bound, not a benchmark).
    let recovered_at = failed[2].at;
    let caught_up = received.iter().map(|d| d.at).max().unwrap();
    assert!(
        caught_up.duration_since(recovered_at) < Duration::from_secs(10),
        "{:?} after recovering",
        caught_up.duration_since(recovered_at)
    );
    // The retries of an event carry its id: receivers dedupe on it.
    for failure in &failed {
        assert_eq!(failure.id(), first[0].id());
        failure.verify(SECRET).unwrap();
    }
    assert!(all.iter().all(|d| d.verify(SECRET).is_ok()));
}

fn a_failing_receiver_never_holds_up_another(target: Target) {
    let (broken, healthy) = (Receiver::start(), Receiver::start());
    broken.answer_always(503);
    let urls = format!("{},{}", broken.url(PATH), healthy.url(PATH));
    let app = app_sending_to(target, &urls, &[]);
    for n in 0..3 {
        app.create_product(&json!({"name": format!("P{n}"), "price": 1, "stock": 1}));
    }
    let received = healthy.wait_for_events(3, Duration::from_secs(10));
    assert_eq!(types(&events(&received)), ["product.created"; 3]);
    assert!(broken.deliveries().iter().all(|d| !d.succeeded()));
    // The same event has the same id at every receiver.
    let broken_ids: Vec<String> = broken
        .deliveries()
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    assert!(received
        .iter()
        .any(|d| broken_ids.contains(&d.id().to_owned())));
}

fn a_receiver_that_never_answers_never_holds_up_another(target: Target) {
    let (silent, healthy) = (Receiver::start(), Receiver::start());
    silent.set_hang(true);
    let urls = format!("{},{}", silent.url(PATH), healthy.url(PATH));
    let app = app_sending_to(target, &urls, &[]);
    // More products than the notifier delivers to one receiver at once: each of the silent
    // receiver's lines waits 10 s for an answer, and the healthy one still gets everything.
    for n in 0..12 {
        app.create_product(&json!({"name": format!("P{n}"), "price": 1, "stock": 1}));
    }
    let received = healthy.wait_for_events(12, Duration::from_secs(8));
    assert_eq!(distinct_ids(&received), 12);
    assert!(silent.deliveries().is_empty());
}

fn a_receiver_named_twice_gets_each_event_once_and_writes_still_work(target: Target) {
    let receiver = Receiver::start();
    let twice = format!("{},{}", receiver.url(PATH), receiver.url(PATH));
    let app = app_sending_to(target, &twice, &[]);
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    receiver.wait_for_events(1, Duration::from_secs(10));
    assert_eq!(outbox_rows(&app), 1);
}

fn the_events_of_a_receiver_no_longer_configured_are_given_up_as_dead(target: Target) {
    let (old, new) = (Receiver::start(), Receiver::start());
    old.answer_always(500);
    let mut app = app_with(target, &old);
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.arrivals() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The operator moves the events elsewhere and restarts the app.
    app.signal("TERM");
    app.wait_exit(Duration::from_secs(15));
    let state = app.state_dir.path().to_str().unwrap().to_owned();
    let again = app_sending_to(target, &new.url(PATH), &["--state-dir", &state]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead = loop {
        assert_eq!(as_admin(&again, "POST", "/events/deliver").status, 200);
        let dead = as_admin(&again, "GET", "/events?status=dead").json();
        if dead["total"] == 1 || Instant::now() > deadline {
            break dead;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(dead["total"], 1, "{dead}");
    assert_eq!(dead["items"][0]["receiver"], old.url(PATH));
    assert!(
        dead["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no longer"),
        "{dead}"
    );
    drop(app);
}

fn during_a_key_rotation_each_event_is_signed_with_both_secrets(target: Target) {
    let receiver = Receiver::start();
    let both = format!("events_secret={SECRET} {NEXT_SECRET}");
    let app = app_sending_to(target, &receiver.url(PATH), &["--variable", &both]);
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    let received = receiver.wait_for_events(1, Duration::from_secs(10));
    let signature = received[0].header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    received[0].verify(SECRET).unwrap();
    received[0].verify(NEXT_SECRET).unwrap();
}

fn an_idempotent_replay_writes_no_event(target: Target) {
    let receiver = Receiver::start();
    let app = app_with(target, &receiver);
    let product = app.create_product(&json!({"name": "Mug", "price": 1, "stock": 10}));
    let deduct = format!("/product/{}/deduct", product["id"]);
    let body = json!({"quantity": 1, "order_id": "o"});
    assert_eq!(post_keyed(&app, &deduct, "same", &body).status, 200);
    let replay = post_keyed(&app, &deduct, "same", &body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    receiver.wait_for_events(2, Duration::from_secs(10));
    assert_eq!(outbox_rows(&app), 2);
}

fn a_receiver_outside_the_allowed_hosts_is_refused_and_logged(target: Target) {
    let receiver = Receiver::start();
    let app = app_sending_to(
        target,
        &receiver.url(PATH),
        &["--variable", "order_events_allowed_host=http://127.0.0.1:1"],
    );
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    let pattern = format!("http://127.0.0.1:{}", receiver.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.stderr().contains("disallowed destination") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = app.stderr();
    assert!(
        stderr.contains(&format!(
            "tried to make an outbound network connection to disallowed destination '{pattern}'"
        )) && stderr.contains(&format!("allowed_outbound_hosts = [\"{pattern}\"]")),
        "{stderr}"
    );
    let pending = as_admin(&app, "GET", "/events?status=pending").json();
    assert_eq!(pending["total"], 1, "{pending}");
    assert!(
        pending["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{pending}"
    );
    assert_eq!(receiver.arrivals(), 0);
}

fn the_shipped_dev_events_secret_signs_only_for_receivers_on_this_machine(target: Target) {
    let ip = crate::app::non_loopback_ip();
    let remote = Receiver::start_on(ip);
    let urls = format!("order_events_urls={}", remote.url(PATH));
    let allowed = format!("order_events_allowed_host=http://{ip}:*");
    // No events_secret given: the one spin.toml ships.
    let app = target.spawn_app_with(&["--variable", &urls, "--variable", &allowed]);
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let pending = loop {
        let pending = as_admin(&app, "GET", "/events?status=pending").json();
        if pending["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 || Instant::now() > deadline {
            break pending;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let error = pending["items"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("development events_secret"), "{pending}");
    // Component output reaches the host's stderr in batches, a few ms after it is written.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.stderr().contains("SPIN_VARIABLE_EVENTS_SECRET") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(app.stderr().contains("SPIN_VARIABLE_EVENTS_SECRET"));
    assert_eq!(remote.arrivals(), 0);
}

fn the_notifier_is_unreachable_from_outside(target: Target) {
    let receiver = Receiver::start();
    let app = app_with(target, &receiver);
    for (method, path) in [
        ("POST", "/notify"),
        ("POST", "/deliver"),
        ("GET", "/notify"),
    ] {
        app.request(method, path, &[], None)
            .assert_problem(404, "not-found");
        // A `Host` naming a service-chaining target is not a client's to send: Spin drops
        // it, and closes the connection of a request left without one.
        let spoofed = app.raw(
            format!("{method} {path} HTTP/1.1\r\nHost: notifier.spin.internal\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(spoofed, "", "{method} {path}");
    }
    assert_eq!(receiver.arrivals(), 0);
}

fn an_event_committed_before_a_crash_is_delivered_after_the_restart(target: Target) {
    let receiver = Receiver::start();
    // The receiver takes the delivery and never answers: the host dies mid-delivery.
    receiver.set_hang(true);
    let mut app = app_with(target, &receiver);
    let product = app.create_product(&json!({"name": "Kept", "price": 1, "stock": 1}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.arrivals() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(receiver.arrivals(), 1, "the delivery started");
    app.signal("KILL");
    app.wait_exit(Duration::from_secs(10));
    receiver.set_hang(false);

    let state = app.state_dir.path().to_str().unwrap().to_owned();
    let urls = receiver.url(PATH);
    let again = app_sending_to(target, &urls, &["--state-dir", &state]);
    // Nothing else happens in the app: an operator's (or a CronJob's) delivery call picks it
    // up once the dead notifier's lease runs out.
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.deliveries().iter().all(|d| !d.succeeded()) && Instant::now() < deadline {
        assert_eq!(as_admin(&again, "POST", "/events/deliver").status, 200);
        std::thread::sleep(Duration::from_secs(1));
    }
    let received = receiver.wait_for_events(1, Duration::from_secs(5));
    let event = received[0].json();
    assert_eq!(event["type"], "product.created");
    assert_eq!(event["data"]["product_id"], product["id"]);
    received[0].verify(SECRET).unwrap();
    drop(app);
}

fn after_a_kill_under_load_every_event_arrives_soon_after_one_request(target: Target) {
    let receiver = Receiver::start();
    // Deliveries take a while, so runs are leased and in flight when the host dies.
    receiver.set_delay(Duration::from_millis(20));
    let mut app = app_with(target, &receiver);
    let products: Vec<i64> = (0..8)
        .map(|i| {
            let p = app
                .create_product(&json!({"name": format!("P{i}"), "price": 1, "stock": 1_000_000}));
            p["id"].as_i64().unwrap()
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (app, products, stop) = (&app, &products, &stop);
            scope.spawn(move || {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let id = products[(worker + i) % products.len()];
                    let body = json!({"quantity": 1, "order_id": format!("ord-{worker}-{i}")});
                    let path = format!("/product/{id}/deduct");
                    // Once the host is killed, requests fail: the load is over.
                    let sent = std::panic::catch_unwind(|| {
                        post_keyed(app, &path, &format!("kill-{worker}-{i}"), &body).status
                    });
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1_500));
        assert!(receiver.arrivals() > 0, "deliveries under way");
        app.signal("KILL");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    app.wait_exit(Duration::from_secs(10));
    receiver.set_delay(Duration::ZERO);

    // What the database committed before the kill: every event, and every deduct.
    let (committed, deducts) = {
        let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
        let mut ids = db.prepare("SELECT DISTINCT event_id FROM outbox").unwrap();
        let ids: std::collections::BTreeSet<String> = ids
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let deducts: i64 = db
            .query_row(
                "SELECT count(*) FROM stock_ledger WHERE reason = 'deducted'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        (ids, deducts)
    };
    let state = app.state_dir.path().to_str().unwrap().to_owned();
    let again = app_sending_to(target, &receiver.url(PATH), &["--state-dir", &state]);
    // One request, and nothing else: the app's clock starts delivery again.
    assert_eq!(again.get("/health").status, 200);
    let started = Instant::now();
    let received = receiver.wait_for(Duration::from_secs(10), |ok| {
        let ids: std::collections::BTreeSet<&str> = ok.iter().map(Delivery::id).collect();
        committed.iter().all(|id| ids.contains(id.as_str()))
    });
    eprintln!(
        "{} events, the last {:?} after the first request",
        committed.len(),
        started.elapsed()
    );
    // None invented: every event delivered is one the database committed.
    for delivery in &received {
        assert!(committed.contains(delivery.id()), "{}", delivery.id());
    }
    // Every deduct's event: one stock.deducted per ledger row.
    let deducted = events(&received)
        .iter()
        .filter(|e| e.json()["type"] == "stock.deducted")
        .count();
    assert_eq!(deducted as i64, deducts);
    drop(app);
}

fn operators_list_redeliver_and_deliver_events_with_the_events_admin_scope(target: Target) {
    let receiver = Receiver::start();
    receiver.answer_always(500);
    let app = app_with(target, &receiver);
    app.create_product(&json!({"name": "Mug", "price": 1, "stock": 1}));
    // The first attempt fails; its row is pending with the reason.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = as_admin(&app, "GET", "/events").json();
        if listed["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let item = &listed["items"][0];
    let id = item["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("evt_"), "{listed}");
    assert_eq!(item["type"], "product.created");
    assert_eq!(item["receiver"], receiver.url(PATH));
    assert_eq!(item["status"], "pending");
    assert_eq!(item["last_error"], "the receiver answered 500");
    assert!(item["next_attempt_at"].as_str().unwrap().ends_with('Z'));

    // Given up (as after 72 hours of failures): dead, listed as such.
    let db = rusqlite::Connection::open(app.state_dir.path().join("sqlite_db.db")).unwrap();
    db.execute("UPDATE outbox SET status = 'dead'", []).unwrap();
    assert_eq!(
        as_admin(&app, "GET", "/events?status=dead").json()["total"],
        1
    );
    assert_eq!(
        as_admin(&app, "GET", "/events?status=pending").json()["total"],
        0
    );
    as_admin(&app, "GET", "/events?status=lost").assert_problem(400, "invalid-request");

    // The receiver is fixed; the operator redelivers.
    receiver.answer_always(204);
    let redelivered = as_admin(&app, "POST", &format!("/events/{id}/redeliver"));
    assert_eq!(
        redelivered.status,
        200,
        "{}",
        String::from_utf8_lossy(&redelivered.body)
    );
    assert_eq!(redelivered.json()["items"][0]["status"], "pending");
    let received = receiver.wait_for_events(1, Duration::from_secs(10));
    assert_eq!(received[0].id(), id);
    let deadline = Instant::now() + Duration::from_secs(5);
    while as_admin(&app, "GET", "/events").json()["total"] != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    as_admin(&app, "POST", &format!("/events/{id}/redeliver")).assert_problem(409, "conflict");
    as_admin(
        &app,
        "POST",
        "/events/evt_0000000000000000000000000/redeliver",
    )
    .assert_problem(404, "not-found");
    as_admin(&app, "POST", "/events/nope/redeliver").assert_problem(400, "invalid-request");

    let counts = as_admin(&app, "POST", "/events/deliver");
    assert_eq!(counts.status, 200);
    assert_eq!(
        counts.json(),
        json!({"delivered": 0, "failed": 0, "dead": 0, "pending": 0, "dead_total": 0})
    );

    // Other scopes may not; no token is 401.
    let others = cli_token(
        &manifest(),
        &["--scope", "inventory:read inventory:write stock:deduct"],
    )
    .unwrap();
    let others = format!("Bearer {others}");
    for (method, path) in [
        ("GET", "/events"),
        ("POST", "/events/deliver"),
        ("POST", &*format!("/events/{id}/redeliver")),
    ] {
        app.request(method, path, &[("authorization", &others)], None)
            .assert_problem(403, "forbidden");
        app.request(method, path, &[("authorization", "")], None)
            .assert_problem(401, "unauthorized");
    }
}

on_every_target!(
    every_event_type_arrives_once_signed_in_commit_order_with_its_data,
    every_delivery_is_what_the_openapi_webhooks_describe,
    a_receiver_that_fails_three_times_gets_every_event_seconds_after_it_recovers,
    a_failing_receiver_never_holds_up_another,
    a_receiver_that_never_answers_never_holds_up_another,
    a_receiver_named_twice_gets_each_event_once_and_writes_still_work,
    the_events_of_a_receiver_no_longer_configured_are_given_up_as_dead,
    during_a_key_rotation_each_event_is_signed_with_both_secrets,
    an_idempotent_replay_writes_no_event,
    a_receiver_outside_the_allowed_hosts_is_refused_and_logged,
    the_shipped_dev_events_secret_signs_only_for_receivers_on_this_machine,
    the_notifier_is_unreachable_from_outside,
    an_event_committed_before_a_crash_is_delivered_after_the_restart,
    after_a_kill_under_load_every_event_arrives_soon_after_one_request,
    operators_list_redeliver_and_deliver_events_with_the_events_admin_scope,
);
