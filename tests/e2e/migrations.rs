//! Migrations (README "Migrations") on a real SQLite file, on the host and on real Spin:
//! every file in `migrations/` applied by hand at start (`--sqlite @file`) and again, a
//! database written by the release before each migration upgraded with its rows intact, and
//! a migration that fails answered with a 503 that changes nothing and says so once.
//!
//! The tests enumerate `migrations/`: a new file is covered without being named here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::{on_every_target, repo_root, Target, TestApp, TestResponse};
use crate::stock::{assert_ledger_sums, post_keyed};

/// The migration files, in order: (number, path).
fn migration_files() -> Vec<(i64, PathBuf)> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            (name[..4].parse().unwrap(), path)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_str().unwrap().to_owned()
}

/// `--sqlite @file` for each of `files`, as an operator passes them.
fn sqlite_args(files: &[&Path]) -> Vec<String> {
    files
        .iter()
        .flat_map(|path| ["--sqlite".to_owned(), format!("@{}", path.display())])
        .collect()
}

fn database(dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(dir.join("sqlite_db.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db
}

/// What the app's runner leaves: files up to `version` applied, each recording itself, and
/// `user_version` at `version`.
fn migrated_to(dir: &Path, version: i64) {
    let db = database(dir);
    for (number, path) in migration_files() {
        if number <= version {
            db.execute_batch(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        }
    }
    db.pragma_update(None, "user_version", version).unwrap();
}

/// A file as the releases before it shipped it: `tests/fixtures/released-migrations` holds
/// the files that have changed since, `migrations/` the rest.
fn released_sql(path: &Path) -> String {
    let released = repo_root()
        .join("tests/fixtures/released-migrations")
        .join(path.file_name().unwrap());
    std::fs::read_to_string(if released.exists() {
        released
    } else {
        path.to_owned()
    })
    .unwrap()
}

/// A database written by the release whose last migration is `version`: its files as
/// shipped, recorded as that release's runner recorded them, and a row or more in every
/// table it wrote (product 1 with 7 in stock and its ledger; a stored idempotent answer; an
/// event to deliver; an active hold of 2 of product 1; from 6, its level at `default`).
fn written_by_release(dir: &Path, version: i64) {
    let db = database(dir);
    for (number, path) in migration_files() {
        if number > version {
            break;
        }
        db.execute_batch(&released_sql(&path)).unwrap();
        db.execute(
            "INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) \
             VALUES (?1, ?2, '2026-11-01T00:00:00Z')",
            rusqlite::params![number, stem(&path)],
        )
        .unwrap();
        db.pragma_update(None, "user_version", number).unwrap();
    }
    // (since, until): a row is written by the releases from `since` up to, not including,
    // `until` (where it moved to a table of the next release's shape).
    let rows = [
        (1, 99, "INSERT INTO products (id, sku, name, description, price_cents, stock, version, created_at, updated_at) \
             VALUES (1, 'OLD-1', 'Old mug', '', 1250, 7, 2, '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')"),
        (1, 6, "INSERT INTO stock_movements (product_id, delta, stock_after, reason, at) \
             VALUES (1, 9, 9, 'created', '2026-11-01T00:00:00Z'), \
                    (1, -2, 7, 'deducted', '2026-11-01T00:00:01Z')"),
        (2, 99, "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at) \
             VALUES ('tester', 'old-key', 'from-an-earlier-release', 200, '{}', CAST(strftime('%s', 'now') AS INTEGER))"),
        (3, 99, "INSERT INTO outbox (event_id, receiver, type, product_id, body, next_attempt_at, expires_at, created_at) \
             VALUES ('evt_old', 'http://127.0.0.1:1/hooks', 'stock.deducted', 1, '{}', 0, 9999999999999, '2026-11-01T00:00:01Z')"),
        (4, 99, "INSERT INTO reservations (id, order_id, status, expires_at, created_at) \
             VALUES ('res_0123456789abcdef0123456789abcdef', 'ord-old', 'active', 9999999999999, 0)"),
        (4, 6, "INSERT INTO reservation_lines (reservation_id, product_id, quantity, holds_until) \
             VALUES ('res_0123456789abcdef0123456789abcdef', 1, 2, 9999999999999)"),
        (6, 99, "INSERT INTO stock_levels (product_id, location_id, stock, version) VALUES (1, 'default', 7, 1)"),
        (6, 99, "INSERT INTO stock_ledger (product_id, location_id, delta, stock_after, reason, at) \
             VALUES (1, 'default', 9, 9, 'created', '2026-11-01T00:00:00Z'), \
                    (1, 'default', -2, 7, 'deducted', '2026-11-01T00:00:01Z')"),
        (6, 99, "INSERT INTO hold_allocations (reservation_id, product_id, location_id, quantity, holds_until) \
             VALUES ('res_0123456789abcdef0123456789abcdef', 1, 'default', 2, 9999999999999)"),
    ];
    for (since, until, sql) in rows {
        if (since..until).contains(&version) {
            db.execute_batch(sql).unwrap();
        }
    }
}

/// Every row of the tables a database at `version` has, but the outbox's delivery state
/// (the notifier may give up an event to a receiver no longer configured).
fn rows_of_the_release(dir: &Path, version: i64) -> Vec<String> {
    let db = database(dir);
    let tables = [
        (1, "SELECT * FROM products"),
        (1, "SELECT * FROM stock_movements"),
        (
            2,
            "SELECT subject, key, fingerprint, status, body, created_at FROM idempotency_keys",
        ),
        (
            3,
            "SELECT id, event_id, receiver, type, product_id, body FROM outbox",
        ),
        (4, "SELECT * FROM reservations"),
        (4, "SELECT * FROM reservation_lines"),
        (
            6,
            "SELECT id, name, priority, active, version FROM locations",
        ),
        (6, "SELECT * FROM stock_levels"),
        (6, "SELECT * FROM hold_allocations"),
        (6, "SELECT * FROM stock_ledger"),
        (6, "SELECT * FROM transfers"),
    ];
    let mut out = Vec::new();
    for (since, sql) in tables {
        if version < since {
            continue;
        }
        out.extend(
            table_rows(&db, sql)
                .into_iter()
                .map(|row| format!("{sql}: {row}")),
        );
    }
    out
}

/// Every row `sql` selects, ordered by its first two columns, each as text.
pub(crate) fn table_rows(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut statement = db.prepare(&format!("{sql} ORDER BY 1, 2")).unwrap();
    let columns = statement.column_count();
    let rows = statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    rows.map(|row| row.unwrap().join(" | ")).collect()
}

/// Every migration file is recorded in `schema_migrations`.
#[track_caller]
fn assert_recorded(dir: &Path) {
    let recorded: BTreeSet<i64> = database(dir)
        .prepare("SELECT version FROM schema_migrations")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let files: BTreeSet<i64> = migration_files().into_iter().map(|(n, _)| n).collect();
    assert_eq!(recorded, files);
}

/// Every migration is recorded, and `user_version`, the runner's mark, says the schema is
/// current.
#[track_caller]
fn assert_schema_current(dir: &Path) {
    assert_recorded(dir);
    let version: i64 = database(dir)
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(Some(version), migration_files().last().map(|(n, _)| *n));
}

/// One request: its answer must have `status`.
#[track_caller]
fn expect(response: TestResponse, status: u16) -> Value {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    match response.header("content-type") {
        Some(json) if json.ends_with("json") => response.json(),
        _ => Value::Null,
    }
}

/// A receiver that refuses every connection, so events stay undelivered and redeliverable.
const DEAD_RECEIVER: &str = "order_events_urls=http://127.0.0.1:1/hooks";

/// Calls every operation of `api/openapi.json` once, each answering as it does on a healthy
/// app, and checks that none was left out.
fn serves_every_route(app: &TestApp) {
    let mut called = BTreeSet::new();
    let mut call =
        |method: &str, template: &str, path: &str, body: Value, headers: &[(&str, &str)]| {
            called.insert(format!("{method} {template}"));
            let bytes = (!body.is_null()).then(|| serde_json::to_vec(&body).unwrap());
            let mut all = vec![("content-type", "application/json")];
            all.extend_from_slice(headers);
            app.request(method, path, &all, bytes.as_deref())
        };
    let none = Value::Null;
    expect(call("GET", "/health", "/health", none.clone(), &[]), 200);
    let mug = json!({"name": "Mug", "price": 3, "stock": 10});
    let id = expect(call("POST", "/product", "/product", mug, &[]), 201)["id"]
        .as_i64()
        .unwrap();
    let cup = json!({"name": "Cup", "price": 2, "stock": 1});
    let other = expect(call("POST", "/product", "/product", cup, &[]), 201)["id"]
        .as_i64()
        .unwrap();
    let one = format!("/product/{id}");
    expect(call("GET", "/product", "/product", none.clone(), &[]), 200);
    expect(call("GET", "/product/{id}", &one, none.clone(), &[]), 200);
    let put = json!({"name": "Mug 2", "price": 3, "stock": 10});
    expect(
        call("PUT", "/product/{id}", &one, put, &[("if-match", "\"1\"")]),
        200,
    );
    let patch = json!({"stock": 12});
    expect(
        call(
            "PATCH",
            "/product/{id}",
            &one,
            patch,
            &[("if-match", "\"2\"")],
        ),
        200,
    );
    let deduct = json!({"quantity": 1, "order_id": "o-1"});
    let path = format!("{one}/deduct");
    expect(
        call(
            "POST",
            "/product/{id}/deduct",
            &path,
            deduct,
            &[("idempotency-key", &format!("k-1-{id}"))],
        ),
        200,
    );
    let path = format!("{one}/restock");
    let restock = json!({"quantity": 1});
    expect(
        call(
            "POST",
            "/product/{id}/restock",
            &path,
            restock,
            &[("idempotency-key", &format!("k-2-{id}"))],
        ),
        200,
    );
    let batch = json!({"order_id": "o-2", "lines": [{"product_id": id, "quantity": 1}]});
    expect(
        call(
            "POST",
            "/stock/deduct",
            "/stock/deduct",
            batch,
            &[("idempotency-key", &format!("k-3-{id}"))],
        ),
        200,
    );
    let path = format!("{one}/movements");
    expect(
        call("GET", "/product/{id}/movements", &path, none.clone(), &[]),
        200,
    );
    let hold = |key: &str| json!({"order_id": format!("o-{key}"), "lines": [{"product_id": id, "quantity": 1}], "ttl_seconds": 600});
    let first = expect(
        call(
            "POST",
            "/reservations",
            "/reservations",
            hold("h-1"),
            &[("idempotency-key", &format!("h-1-{id}"))],
        ),
        201,
    );
    let first = format!("/reservations/{}", first["id"].as_str().unwrap());
    let by_order = "/reservations?order_id=o-h-1";
    expect(
        call("GET", "/reservations", by_order, none.clone(), &[]),
        200,
    );
    expect(
        call("GET", "/reservations/{id}", &first, none.clone(), &[]),
        200,
    );
    let extend = json!({"ttl_seconds": 900});
    expect(
        call("PATCH", "/reservations/{id}", &first, extend, &[]),
        200,
    );
    let path = format!("{first}/commit");
    expect(
        call(
            "POST",
            "/reservations/{id}/commit",
            &path,
            none.clone(),
            &[],
        ),
        200,
    );
    let second = expect(
        call(
            "POST",
            "/reservations",
            "/reservations",
            hold("h-2"),
            &[("idempotency-key", &format!("h-2-{id}"))],
        ),
        201,
    );
    let path = format!("/reservations/{}/release", second["id"].as_str().unwrap());
    expect(
        call(
            "POST",
            "/reservations/{id}/release",
            &path,
            none.clone(),
            &[],
        ),
        200,
    );
    let events = expect(call("GET", "/events", "/events", none.clone(), &[]), 200);
    let event = events["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no undelivered event to a dead receiver: {events}"))
        .to_owned();
    let path = format!("/events/{event}/redeliver");
    expect(
        call(
            "POST",
            "/events/{event_id}/redeliver",
            &path,
            none.clone(),
            &[],
        ),
        200,
    );
    expect(
        call(
            "POST",
            "/events/deliver",
            "/events/deliver",
            none.clone(),
            &[],
        ),
        200,
    );
    expect(call("GET", "/metrics", "/metrics", none.clone(), &[]), 200);
    // A second location: a unit moved there, counted out, its level and itself deleted.
    let tour = json!({"id": "tour", "name": "Tour", "priority": 10});
    expect(call("POST", "/locations", "/locations", tour, &[]), 201);
    expect(
        call("GET", "/locations", "/locations", none.clone(), &[]),
        200,
    );
    let at = "/locations/tour";
    let template = "/locations/{location_id}";
    expect(call("GET", template, at, none.clone(), &[]), 200);
    let patch = json!({"priority": 20});
    expect(
        call("PATCH", template, at, patch, &[("if-match", "\"1\"")]),
        200,
    );
    let transfer = json!({"product_id": id, "from": "default", "to": "tour", "quantity": 1});
    let key = format!("t-1-{id}");
    let moved = expect(
        call(
            "POST",
            "/transfers",
            "/transfers",
            transfer,
            &[("idempotency-key", &key)],
        ),
        201,
    );
    let path = format!("/transfers/{}", moved["id"].as_str().unwrap());
    expect(
        call("GET", "/transfers/{id}", &path, none.clone(), &[]),
        200,
    );
    let path = format!("{one}/stock");
    expect(
        call("GET", "/product/{id}/stock", &path, none.clone(), &[]),
        200,
    );
    let level = "/product/{id}/stock/{location_id}";
    let path = format!("{one}/stock/tour");
    expect(call("GET", level, &path, none.clone(), &[]), 200);
    let count = json!({"stock": 0});
    expect(
        call("PUT", level, &path, count, &[("if-match", "\"1\"")]),
        200,
    );
    expect(call("DELETE", level, &path, none.clone(), &[]), 204);
    expect(call("DELETE", template, at, none.clone(), &[]), 204);
    let path = format!("/product/{other}");
    expect(
        call(
            "DELETE",
            "/product/{id}",
            &path,
            none,
            &[("if-match", "\"1\"")],
        ),
        204,
    );

    let text = std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert_eq!(
        called, documented,
        "serves_every_route must call every documented operation"
    );
}

fn every_file_applied_by_hand_on_an_empty_database_then_every_route_answers(target: Target) {
    let state = tempfile::tempdir().unwrap();
    let files = migration_files();
    let paths: Vec<&Path> = files.iter().map(|(_, p)| p.as_path()).collect();
    let mut args = sqlite_args(&paths);
    args.extend(["--variable".into(), DEAD_RECEIVER.into()]);
    args.extend(["--state-dir".into(), state.path().display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    {
        let app = target.spawn_app_with(&args);
        // Applied by hand, every file counts as applied: the runner has nothing to apply.
        assert_recorded(state.path());
        serves_every_route(&app);
        assert_schema_current(state.path());
    }
    // The same start again, on the database they have migrated (and the app has written).
    let before = rows_of_the_release(state.path(), i64::MAX);
    let app = target.spawn_app_with(&args);
    assert_eq!(rows_of_the_release(state.path(), i64::MAX), before);
    assert_schema_current(state.path());
    serves_every_route(&app);
}

fn each_file_applied_by_hand_on_the_database_one_version_before_it(target: Target) {
    for (number, path) in migration_files() {
        let state = tempfile::tempdir().unwrap();
        migrated_to(state.path(), number - 1);
        let mut args = sqlite_args(&[&path]);
        args.extend(["--variable".into(), DEAD_RECEIVER.into()]);
        args.extend(["--state-dir".into(), state.path().display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = target.spawn_app_with(&args);
        // Applied by hand, the file counts as applied: the runner applies only those after it.
        let db = database(state.path());
        let recorded: i64 = db
            .query_row(
                "SELECT count(*) FROM schema_migrations WHERE version = ?1",
                [number],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(recorded, 1, "{}", path.display());
        serves_every_route(&app);
        assert_schema_current(state.path());
    }
}

fn the_files_applied_by_hand_after_the_runner_migrated_change_nothing(target: Target) {
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().display().to_string();
    {
        let app = target.spawn_app_with(&["--state-dir", &state_arg, "--variable", DEAD_RECEIVER]);
        serves_every_route(&app);
    }
    assert_schema_current(state.path());
    let before = rows_of_the_release(state.path(), i64::MAX);
    let files = migration_files();
    let paths: Vec<&Path> = files.iter().map(|(_, p)| p.as_path()).collect();
    let mut args = sqlite_args(&paths);
    args.extend(["--state-dir".into(), state_arg.clone()]);
    args.extend(["--variable".into(), DEAD_RECEIVER.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = target.spawn_app_with(&args);
    assert_eq!(rows_of_the_release(state.path(), i64::MAX), before);
    serves_every_route(&app);
}

fn a_database_written_by_the_release_before_each_migration_upgrades_with_its_rows_intact(
    target: Target,
) {
    for (number, path) in migration_files().into_iter().skip(1) {
        let release = number - 1;
        let state = tempfile::tempdir().unwrap();
        written_by_release(state.path(), release);
        let before = rows_of_the_release(state.path(), release);
        let state_arg = state.path().display().to_string();
        let app = target.spawn_app_with(&["--state-dir", &state_arg, "--variable", DEAD_RECEIVER]);
        let held = if release >= 4 { 2 } else { 0 };
        let product = expect(app.get("/product/1"), 200);
        assert_eq!(
            (product["stock"].as_i64(), product["reserved"].as_i64()),
            (Some(7), Some(held)),
            "upgrading past {}: {product}",
            path.display()
        );
        assert_eq!(
            rows_of_the_release(state.path(), release),
            before,
            "{}",
            path.display()
        );
        assert_schema_current(state.path());
        // All of it at `default`, where a client that never names a location finds it: the
        // level, the hold, and the ledger with its ids.
        assert_eq!(
            product["by_location"],
            json!([{"location_id": "default", "stock": 7, "reserved": held,
                    "available": 7 - held}]),
            "upgrading past {}",
            path.display()
        );
        let entries: Vec<(i64, String, i64)> = assert_ledger_sums(&app, 1)
            .iter()
            .map(|e| {
                let location = e["location_id"].as_str().unwrap().to_owned();
                (
                    e["id"].as_i64().unwrap(),
                    location,
                    e["delta"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [(2, "default".to_owned(), -2), (1, "default".to_owned(), 9)],
            "upgrading past {}",
            path.display()
        );
        if release >= 2 {
            // The stored answer is there: its key, sent with another request, is refused.
            post_keyed(
                &app,
                "/product/1/deduct",
                "old-key",
                &json!({"quantity": 1, "order_id": "o"}),
            )
            .assert_problem(422, "idempotency-conflict");
        }
        if release >= 4 {
            expect(
                app.request(
                    "POST",
                    "/reservations/res_0123456789abcdef0123456789abcdef/commit",
                    &[],
                    None,
                ),
                200,
            );
            assert_eq!(expect(app.get("/product/1"), 200)["stock"], 5);
        }
        serves_every_route(&app);
    }
}

fn a_migration_that_fails_changes_nothing_answers_503_and_is_tried_again_after_30_seconds(
    target: Target,
) {
    let (last, path) = migration_files().pop().unwrap();
    let name = stem(&path);
    let state = tempfile::tempdir().unwrap();
    written_by_release(state.path(), last - 1);
    // The file runs whole but for its last statement, which records it: a failure half way
    // through, which the file's transaction must undo.
    database(state.path())
        .execute_batch(
            "CREATE TRIGGER refuse_migrations BEFORE INSERT ON schema_migrations \
             BEGIN SELECT RAISE(ABORT, 'refused by the migrations test'); END",
        )
        .unwrap();
    let schema = |dir: &Path| -> Vec<String> {
        let db = database(dir);
        let mut statement = db
            .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'schema_migration_failure%' ORDER BY name")
            .unwrap();
        let names = statement.query_map([], |row| row.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    };
    let schema_before = schema(state.path());
    let rows_before = rows_of_the_release(state.path(), last - 1);
    let state_arg = state.path().display().to_string();
    let app = target.spawn_app_with(&["--state-dir", &state_arg]);

    for path in [
        "/health",
        "/product/1",
        "/product",
        "/health",
        "/reservations/res_0123456789abcdef0123456789abcdef",
    ] {
        let response = app.get(path);
        let body = response.assert_problem(503, "unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("schema could not be brought up to date") && detail.contains(&name),
            "{detail}"
        );
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry), "Retry-After: {retry}");
    }
    let post = app.post_json("/product", &json!({"name": "New", "price": 1, "stock": 1}));
    post.assert_problem(503, "unavailable");
    assert_eq!(
        schema(state.path()),
        schema_before,
        "the failed file was not rolled back"
    );
    assert_eq!(rows_of_the_release(state.path(), last - 1), rows_before);

    // Logged once, with the file and SQLite's message: not once per request.
    let log = app.access_log(6);
    assert_eq!(log.len(), 6, "{log:?}");
    let telling: Vec<&Value> = log
        .iter()
        .filter(|line| {
            line["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused by the migrations test"))
        })
        .collect();
    assert_eq!(telling.len(), 1, "{log:?}");
    assert!(
        telling[0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("{name}.sql")),
        "{telling:?}"
    );

    // Mended, but within the 30 seconds: still refused, without another attempt.
    database(state.path())
        .execute_batch("DROP TRIGGER refuse_migrations")
        .unwrap();
    app.get("/health").assert_problem(503, "unavailable");
    // The 30 seconds pass: the next request tries again, and the app serves.
    database(state.path())
        .execute_batch("UPDATE schema_migration_failure SET retry_at = 0")
        .unwrap();
    assert_eq!(expect(app.get("/health"), 200), json!({"status": "ok"}));
    assert_schema_current(state.path());
    assert_eq!(expect(app.get("/product/1"), 200)["stock"], 7);
    assert_eq!(rows_of_the_release(state.path(), last - 1), rows_before);
}

on_every_target!(
    every_file_applied_by_hand_on_an_empty_database_then_every_route_answers,
    each_file_applied_by_hand_on_the_database_one_version_before_it,
    the_files_applied_by_hand_after_the_runner_migrated_change_nothing,
    a_database_written_by_the_release_before_each_migration_upgrades_with_its_rows_intact,
    a_migration_that_fails_changes_nothing_answers_503_and_is_tried_again_after_30_seconds,
);

#[test]
fn every_migration_file_applied_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    for (_, path) in migration_files() {
        let sql = std::fs::read_to_string(&path).unwrap();
        db.execute_batch(&sql).unwrap();
    }
    let dump = |db: &rusqlite::Connection| -> Vec<String> {
        let mut out = Vec::new();
        let tables: Vec<(String, String)> = db
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, sql) in tables {
            out.push(sql.clone());
            if sql.starts_with("CREATE TABLE") {
                let rows = table_rows(db, &format!("SELECT * FROM \"{name}\""));
                out.extend(rows.into_iter().map(|row| format!("{name}: {row}")));
            }
        }
        out
    };
    let once = dump(&db);
    // A second later, so an `applied_at` written again would show.
    std::thread::sleep(Duration::from_millis(1100));
    for (_, path) in migration_files() {
        let sql = std::fs::read_to_string(&path).unwrap();
        db.execute_batch(&sql)
            .unwrap_or_else(|err| panic!("{} applied again: {err}", path.display()));
        assert_eq!(
            dump(&db),
            once,
            "{} applied again changed the database",
            path.display()
        );
    }
}
