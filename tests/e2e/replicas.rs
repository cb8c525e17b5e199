//! Two replicas of the app: two host processes on one Redis (the rate-limit counters,
//! `runtime-config.redis.toml`'s layout) and one SQLite file. Limits are exact across them,
//! they never oversell together, and an idempotent retry sent to the other one replays.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::app::{manifest, spawn_app_with, TestApp};
use crate::redis_server::RedisServer;
use crate::stock::{assert_ledger_sums, deduct, product, stock_of};

/// Two apps sharing `redis` for key-value and `dir/shared.db` for SQLite.
fn replicas(redis: &RedisServer, dir: &Path, variables: &[&str]) -> (TestApp, TestApp) {
    let config = dir.join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n\n\
             [sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n",
            redis.url,
            dir.join("shared.db").display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut args = vec!["--runtime-config-file", config.as_str()];
    for variable in variables {
        args.extend(["--variable", variable]);
    }
    let a = spawn_app_with(&manifest(), &args);
    let b = spawn_app_with(&manifest(), &args);
    (a, b)
}

/// Sends `count` requests from `threads` threads, alternating between the replicas; returns
/// each answer's status.
fn spread(
    apps: [&TestApp; 2],
    count: usize,
    threads: usize,
    send: impl Fn(&TestApp, usize) -> u16 + Sync,
) -> Vec<u16> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut statuses = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return statuses;
                        }
                        statuses.push(send(apps[i % 2], i));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn the_rate_limit_is_exact_across_replicas() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    const LIMIT: usize = 60;
    let limit = format!("rate_limit_requests={LIMIT}");
    // A day-long window: the test cannot straddle two windows unless it runs at midnight.
    let (a, b) = replicas(
        &redis,
        dir.path(),
        &[&limit, "rate_limit_window_seconds=86400"],
    );
    let statuses = spread([&a, &b], 2 * LIMIT, 8, |app, _| app.get("/product").status);
    assert_eq!(count(&statuses, 200), LIMIT, "{statuses:?}");
    assert_eq!(count(&statuses, 429), LIMIT, "{statuses:?}");
    // Each replica served some of the passes: the count is shared, not per process. (The
    // hosts write their output out in batches: wait for every line.)
    let passed_by = |app: &TestApp| {
        app.access_log(1)
            .iter()
            .filter(|l| l["path"] == "/product" && l["status"] == 200)
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (mut by_a, mut by_b) = (passed_by(&a), passed_by(&b));
    while by_a + by_b < LIMIT && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        (by_a, by_b) = (passed_by(&a), passed_by(&b));
    }
    assert_eq!(by_a + by_b, LIMIT);
    assert!(by_a > 0 && by_b > 0, "{by_a} + {by_b}");
}

#[test]
fn replicas_never_oversell_together_and_retries_replay_on_either() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&redis, dir.path(), &[]);
    let id = product(&a, 50);
    assert_eq!(stock_of(&b, id), 50, "one database");

    let statuses = spread([&a, &b], 120, 16, |app, i| {
        deduct(app, id, 1, &format!("replica-{i}")).status
    });
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 409), 70, "{statuses:?}");
    assert_eq!((stock_of(&a, id), stock_of(&b, id)), (0, 0));
    let entries = assert_ledger_sums(&b, id);
    assert_eq!(entries.len(), 51, "the create and 50 deducts");

    // A retry of an order sent to the other replica replays the first answer.
    let restocked = a.create_product(&json!({"name": "Cup", "price": 3, "stock": 5}));
    let cup = restocked["id"].as_i64().unwrap();
    let first = deduct(&a, cup, 2, "order-77");
    assert_eq!(first.status, 200);
    let retry = deduct(&b, cup, 2, "order-77");
    assert_eq!(retry.status, 200);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), first.json());
    assert_eq!(stock_of(&b, cup), 3);
}

#[test]
fn holds_and_deducts_on_two_replicas_never_sell_more_than_the_stock() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&redis, dir.path(), &[]);
    let id = product(&a, 50);
    let answers = std::sync::Mutex::new(Vec::new());
    // 200 holds of one unit, and 50 deducts among them, half on each replica.
    let statuses = spread([&a, &b], 250, 16, |app, i| {
        let key = format!("mixed-{i}");
        let response = if i % 5 == 4 {
            deduct(app, id, 1, &key)
        } else {
            crate::reservations::hold(app, &key, &[(id, 1)], 900)
        };
        answers.lock().unwrap().push(response.json());
        response.status
    });
    assert_eq!(
        count(&statuses, 200) + count(&statuses, 201),
        50,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, 409), 200, "{statuses:?}");
    for answer in answers.into_inner().unwrap() {
        for available in [
            answer.get("available"),
            answer.pointer("/lines/0/available"),
        ]
        .into_iter()
        .flatten()
        {
            assert!(available.as_i64().unwrap() >= 0, "{answer}");
        }
    }
    let product = b.get(&format!("/product/{id}")).json();
    let (stock, reserved) = (
        product["stock"].as_i64().unwrap(),
        product["reserved"].as_i64().unwrap(),
    );
    assert_eq!(reserved, stock, "every unit left is held: {product}");
    assert_eq!(product["available"], 0);
    assert_eq!(
        50 - stock + reserved,
        50,
        "sold and held add up to the stock"
    );
    assert_ledger_sums(&a, id);
}

#[test]
fn while_redis_is_down_the_limit_fails_closed_and_the_service_recovers() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = replicas(&redis, dir.path(), &[]);
    assert_eq!(a.get("/product").status, 200);

    redis.stop();
    for _ in 0..3 {
        let refused = a.get("/product");
        assert_eq!(refused.status, 503, "{}", a.stderr());
        assert_eq!(
            refused.json()["type"],
            "https://inventory.example/problems/unavailable"
        );
        assert!(refused.header("retry-after").is_some());
    }
    assert_eq!(
        a.get("/health").status,
        200,
        "unguarded, no counters needed"
    );

    redis.restart();
    assert_eq!(a.get("/product").status, 200, "{}", a.stderr());
}
