//! The native baseline of `bench/side-by-side.sh`: the app's guarded `GET /product/{id}` and
//! durable `POST /product/{id}/deduct`, doing the same work per request, written as a Rust
//! team would without Spin: axum on tokio, rusqlite.
//!
//! Per request, as the app: a JWT verified (HS256, issuer, audience, expiry with 60 s of
//! leeway, subject, the route's scope), the subject's rate-limit counter incremented in a
//! SQLite file of its own (WAL, `synchronous=NORMAL`, as the host's key-value store), the
//! work in the main database (WAL, `synchronous=FULL`: durable commits, as the app's), the
//! answer with its ETag, rate-limit and request-id headers, and one JSON access-log line on
//! stdout. Stock is kept per location, as the app keeps it (a product's levels, each less
//! what unexpired holds have there; the product's totals their sums over active locations).
//! The deduct is the app's transaction: the idempotency record looked up (a retry is
//! replayed), the product's levels at active locations read in priority order, the units
//! taken from the first that has them (split over the next ones if none has them all), each
//! level moved with its ledger row, the product's stock and version, the idempotency record
//! written, a few expired ones removed. The read answers the product with its levels
//! (`by_location`).
//!
//! Made as fast as such a service is made: SQLite calls on the runtime's worker threads
//! (`block_in_place`, no hand-off), prepared statements cached per connection, one writer
//! connection for the writes SQLite serializes anyway (no busy-waiting), a pool of readers.
//!
//! `ADDR` (default 127.0.0.1:3900), `JWT_SECRET` (the app's dev secret by default), `DB`
//! (a fresh file in the temp dir by default). It seeds products 1 to 1,000 with a stock of
//! 1,000,000,000.

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jwt_simple::prelude::*;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// The app's limits of a stock request: the domain crate's own constants, included alone.
#[path = "../../../crates/domain/src/limits.rs"]
#[allow(dead_code)]
mod limits;

const DEV_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-0123456789";
const LIMIT: i64 = 1_000_000_000;
const WINDOW_SECONDS: i64 = 60;
const READERS: usize = 4;
const IDEMPOTENCY_RETENTION_SECONDS: i64 = 24 * 60 * 60;

struct App {
    key: HS256Key,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writer: Mutex<Connection>,
    counters: Mutex<Connection>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    scope: Option<String>,
}

/// An answer, as the app gives it: status, JSON body, extra headers.
struct Answer {
    status: StatusCode,
    body: String,
    etag: Option<String>,
    replayed: bool,
}

impl Answer {
    fn problem(status: StatusCode, slug: &str, detail: &str, request_id: &str) -> Self {
        let body = serde_json::json!({
            "type": format!("https://inventory.example/problems/{slug}"),
            "title": slug, "status": status.as_u16(), "detail": detail, "request_id": request_id,
        });
        Self {
            status,
            body: body.to_string(),
            etag: None,
            replayed: false,
        }
    }
}

fn open(path: &str, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open the database");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=5000;"
    ))
    .expect("pragmas");
    conn.set_prepared_statement_cache_capacity(32);
    conn
}

#[tokio::main]
async fn main() {
    let path = std::env::var("DB").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join(format!("bench-native-{}.db", std::process::id()))
            .to_string_lossy()
            .into_owned()
    });
    for suffix in ["", "-wal", "-shm", ".kv", ".kv-wal", ".kv-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let writer = open(&path, "FULL");
    writer
        .execute_batch(
            "CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT UNIQUE,
                 name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', price_cents INTEGER NOT NULL,
                 stock INTEGER NOT NULL CHECK (stock >= 0), category_id INTEGER,
                 version INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE locations (id TEXT PRIMARY KEY, name TEXT NOT NULL,
                 priority INTEGER NOT NULL DEFAULT 100, active INTEGER NOT NULL DEFAULT 1,
                 version INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE stock_levels (product_id INTEGER NOT NULL, location_id TEXT NOT NULL,
                 stock INTEGER NOT NULL CHECK (stock >= 0), version INTEGER NOT NULL DEFAULT 1,
                 PRIMARY KEY (product_id, location_id)) WITHOUT ROWID;
             CREATE TABLE stock_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, product_id INTEGER NOT NULL,
                 location_id TEXT NOT NULL, delta INTEGER NOT NULL, stock_after INTEGER NOT NULL,
                 reason TEXT NOT NULL, order_id TEXT, idempotency_key TEXT, transfer_id TEXT, at TEXT NOT NULL);
             CREATE INDEX stock_ledger_product ON stock_ledger (product_id, id);
             CREATE INDEX stock_ledger_level ON stock_ledger (product_id, location_id, id);
             CREATE TABLE idempotency_keys (subject TEXT NOT NULL, key TEXT NOT NULL,
                 fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
                 created_at INTEGER NOT NULL, PRIMARY KEY (subject, key));
             CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
             CREATE TABLE hold_allocations (reservation_id TEXT NOT NULL, product_id INTEGER NOT NULL,
                 location_id TEXT NOT NULL, quantity INTEGER NOT NULL, holds_until INTEGER,
                 committed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (reservation_id, product_id, location_id));
             CREATE INDEX hold_allocations_holding ON hold_allocations (product_id, location_id, holds_until)
                 WHERE holds_until IS NOT NULL;",
        )
        .expect("schema");
    let now = rfc3339(now_millis());
    writer.execute_batch("BEGIN").expect("seed");
    writer
        .execute(
            "INSERT INTO locations (id, name, created_at, updated_at) VALUES ('default', 'Default location', ?1, ?1)",
            params![now],
        )
        .expect("seed");
    for i in 1..=1000 {
        writer
            .execute(
                "INSERT INTO products (sku, name, description, price_cents, stock, category_id, created_at, updated_at)
                 VALUES (?1, ?2, '350 ml', 1250, 1000000000, 3, ?3, ?3)",
                params![format!("BENCH-{i}"), format!("Bench {i}"), now],
            )
            .expect("seed");
        writer
            .execute(
                "INSERT INTO stock_levels (product_id, location_id, stock) VALUES (?1, 'default', 1000000000)",
                params![i],
            )
            .expect("seed");
    }
    writer.execute_batch("COMMIT").expect("seed");
    let counters = open(&format!("{path}.kv"), "NORMAL");
    counters
        .execute_batch(
            "CREATE TABLE kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .expect("counters");
    let app = Arc::new(App {
        key: HS256Key::from_bytes(
            std::env::var("JWT_SECRET")
                .unwrap_or_else(|_| DEV_SECRET.into())
                .as_bytes(),
        ),
        readers: (0..READERS)
            .map(|_| Mutex::new(open(&path, "FULL")))
            .collect(),
        next_reader: AtomicUsize::new(0),
        writer: Mutex::new(writer),
        counters: Mutex::new(counters),
    });
    let router = Router::new()
        .route("/product/{id}", get(get_product))
        // Nothing but an answer: the floor `bench/floor.sh` sets beside the host's.
        .route("/empty", get(|| async { "hello, world" }))
        .route("/product/{id}/deduct", post(deduct_stock))
        .with_state(app);
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3900".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("Serving http://{addr}");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .expect("serve");
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The verified subject, if the token is valid and carries `scope`.
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    scope: &str,
) -> Result<String, (StatusCode, &'static str)> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or((StatusCode::UNAUTHORIZED, "unauthorized"))?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&["inventory-dev"])),
        allowed_audiences: Some(HashSet::from_strings(&["inventory"])),
        time_tolerance: Some(Duration::from_secs(60)),
        max_token_length: Some(4096),
        ..Default::default()
    };
    let claims = app
        .key
        .verify_token::<Claims>(token, Some(options))
        .map_err(|_| (StatusCode::UNAUTHORIZED, "unauthorized"))?;
    if claims.expires_at.is_none() {
        return Err((StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    let subject = claims
        .subject
        .ok_or((StatusCode::UNAUTHORIZED, "unauthorized"))?;
    let allowed = claims
        .custom
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == scope));
    if !allowed {
        return Err((StatusCode::FORBIDDEN, "forbidden"));
    }
    Ok(subject)
}

/// The subject's count in this window, after this request: (remaining, seconds to reset).
fn count(app: &App, subject: &str) -> (i64, i64) {
    let now = now_millis() / 1000;
    let window = now / WINDOW_SECONDS;
    let key = format!("rl:{subject}:{window}");
    let counters = lock(&app.counters);
    let count: i64 = counters
        .prepare_cached(
            "INSERT INTO kv (key, value) VALUES (?1, 1)
             ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
        )
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)))
        .unwrap_or(LIMIT);
    (LIMIT - count, WINDOW_SECONDS - now % WINDOW_SECONDS)
}

#[derive(Serialize)]
struct ProductView {
    id: i64,
    sku: Option<String>,
    name: String,
    description: String,
    price: serde_json::Number,
    stock: i64,
    reserved: i64,
    available: i64,
    category_id: Option<i64>,
    version: i64,
    by_location: Vec<LevelView>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct LevelView {
    location_id: String,
    stock: i64,
    reserved: i64,
    available: i64,
}

/// A product's levels at active locations, each with what unexpired holds have of it
/// (`?2`: now, in ms), in the order a taking chooses them: priority, then id.
const LEVELS: &str = "SELECT s.location_id, s.stock,
        (SELECT coalesce(sum(a.quantity), 0) FROM hold_allocations a
         WHERE a.product_id = s.product_id AND a.location_id = s.location_id AND a.holds_until > ?2)
    FROM stock_levels s JOIN locations l ON l.id = s.location_id
    WHERE s.product_id = ?1 AND l.active = 1 ORDER BY l.priority, s.location_id";

/// The levels `LEVELS` selects.
fn levels(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<Vec<LevelView>> {
    conn.prepare_cached(LEVELS)?
        .query_map(params![id, now], |r| {
            let (stock, reserved): (i64, i64) = (r.get(1)?, r.get(2)?);
            Ok(LevelView {
                location_id: r.get(0)?,
                stock,
                reserved,
                available: (stock - reserved).max(0),
            })
        })?
        .collect()
}

async fn get_product(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/product/{id}");
    guarded(
        &app,
        client,
        &headers,
        "GET",
        &path,
        "inventory:read",
        |_, request_id| read_product(&app, &id, request_id),
    )
}

/// The product `id` as the app answers it, with its ETag.
fn read_product(app: &App, id: &str, request_id: &str) -> Answer {
    let Ok(id) = id.parse::<i64>() else {
        return Answer::problem(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "`id` must be a positive integer",
            request_id,
        );
    };
    let reader = app.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
    let conn = lock(&app.readers[reader]);
    let product = conn
        .prepare_cached(
            "SELECT id, sku, name, description, price_cents, category_id, version, created_at,
                    updated_at FROM products WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![id], |r| {
                Ok(ProductView {
                    id: r.get(0)?,
                    sku: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    price: price(r.get(4)?),
                    stock: 0,
                    reserved: 0,
                    available: 0,
                    category_id: r.get(5)?,
                    version: r.get(6)?,
                    by_location: Vec::new(),
                    created_at: r.get(7)?,
                    updated_at: r.get(8)?,
                })
            })
            .optional()
        })
        .and_then(|product| {
            let Some(mut product) = product else {
                return Ok(None);
            };
            let mut levels = levels(&conn, id, now_millis())?;
            levels.sort_by(|a, b| a.location_id.cmp(&b.location_id));
            for level in &levels {
                product.stock += level.stock;
                product.reserved += level.reserved;
                product.available += level.available;
            }
            product.by_location = levels;
            Ok(Some(product))
        });
    let answer = match product {
        Ok(Some(p)) => Answer {
            status: StatusCode::OK,
            etag: Some(match p.reserved {
                0 => format!("\"{}\"", p.version),
                r => format!("\"{}-{r}\"", p.version),
            }),
            body: serde_json::to_string(&p).unwrap_or_default(),
            replayed: false,
        },
        Ok(None) => Answer::problem(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no product with id {id}"),
            request_id,
        ),
        Err(_) => Answer::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred",
            request_id,
        ),
    };
    answer
}

/// The guard's stages as the app runs them (the token and its scope, the subject's
/// counter), then `work` for the verified subject; the answer with its headers, and the
/// log line. SQLite is called on this worker thread (`block_in_place`).
fn guarded(
    app: &App,
    client: SocketAddr,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    scope: &str,
    work: impl FnOnce(&str, &str) -> Answer,
) -> Response {
    let started = Instant::now();
    let request_id = request_id();
    let (answer, subject, rate) =
        tokio::task::block_in_place(|| match authenticate(app, headers, scope) {
            Err((status, slug)) => (
                Answer::problem(
                    status,
                    slug,
                    "a valid bearer token is required",
                    &request_id,
                ),
                None,
                None,
            ),
            Ok(subject) => {
                let rate = count(app, &subject);
                let answer = work(&subject, &request_id);
                (answer, Some(subject), Some(rate))
            }
        });
    respond(
        answer,
        method,
        path,
        client,
        subject.as_deref(),
        rate,
        &request_id,
        started,
    )
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DeductBody {
    quantity: i64,
    order_id: String,
}

async fn deduct_stock(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/product/{id}/deduct");
    guarded(
        &app,
        client,
        &headers,
        "POST",
        &path,
        "stock:deduct",
        |subject, request_id| deduct(&app, subject, &id, &headers, &body, &path, request_id),
    )
}

fn deduct(
    app: &App,
    subject: &str,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
    request_id: &str,
) -> Answer {
    let invalid = |detail: &str| {
        Answer::problem(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            detail,
            request_id,
        )
    };
    let Ok(id) = id.parse::<i64>() else {
        return invalid("`id` must be a positive integer");
    };
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| {
            (1..=limits::MAX_IDEMPOTENCY_KEY_CHARS).contains(&k.len())
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
    else {
        return invalid(&format!(
            "an Idempotency-Key header (1 to {} visible ASCII characters) is required",
            limits::MAX_IDEMPOTENCY_KEY_CHARS
        ));
    };
    let request: DeductBody = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return invalid(&format!("the body is not a deduct: {e}")),
    };
    let order_id_chars = request.order_id.chars().count();
    if !(1..=limits::MAX_QUANTITY).contains(&request.quantity)
        || !(1..=limits::MAX_ORDER_ID_CHARS).contains(&order_id_chars)
        || request.order_id.chars().any(char::is_control)
    {
        return Answer::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "1 field(s) are invalid",
            request_id,
        );
    }
    // What a retry must repeat: the method, the path and the body, canonically.
    let canonical = serde_json::to_string(&serde_json::to_value(&request).unwrap_or_default())
        .unwrap_or_default();
    let fingerprint = hex(&hmac_sha256::Hash::hash(
        format!("POST {path}\n{canonical}").as_bytes(),
    ));
    let now = now_millis();
    let mut conn = lock(&app.writer);
    let result = (|| -> rusqlite::Result<Answer> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stored: Option<(String, u16, String)> = tx
            .prepare_cached("SELECT fingerprint, status, body FROM idempotency_keys WHERE subject = ?1 AND key = ?2")?
            .query_row(params![subject, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((stored_fingerprint, status, body)) = stored {
            if stored_fingerprint != fingerprint {
                return Ok(Answer::problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-conflict",
                    "this Idempotency-Key was used for a different request",
                    request_id,
                ));
            }
            return Ok(Answer {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
                etag: None,
                replayed: true,
            });
        }
        let levels = levels(&tx, id, now)?;
        // Whole from the first level that has it all, else split in the same order.
        let mut allocations: Vec<(&str, i64)> = Vec::new();
        if let Some(level) = levels.iter().find(|l| l.available >= request.quantity) {
            allocations.push((&level.location_id, request.quantity));
        } else {
            let mut wanted = request.quantity;
            for level in &levels {
                let here = wanted.min(level.available);
                if here > 0 {
                    allocations.push((&level.location_id, here));
                    wanted -= here;
                }
            }
            if wanted > 0 {
                allocations.clear();
            }
        }
        let (status, body) = if allocations.is_empty() {
            let exists = tx
                .prepare_cached("SELECT 1 FROM products WHERE id = ?1")?
                .exists(params![id])?;
            if exists {
                let mut problem: serde_json::Value = serde_json::from_str(
                    &Answer::problem(
                        StatusCode::CONFLICT,
                        "insufficient-stock",
                        "nothing was changed",
                        request_id,
                    )
                    .body,
                )
                .unwrap_or_default();
                problem["requested"] = request.quantity.into();
                problem["available"] = levels.iter().map(|l| l.available).sum::<i64>().into();
                (StatusCode::CONFLICT, problem.to_string())
            } else {
                (
                    StatusCode::NOT_FOUND,
                    Answer::problem(
                        StatusCode::NOT_FOUND,
                        "not-found",
                        &format!("no product with id {id}"),
                        request_id,
                    )
                    .body,
                )
            }
        } else {
            let at = rfc3339(now);
            for (location, quantity) in &allocations {
                let stock_after: i64 = tx
                    .prepare_cached(
                        "UPDATE stock_levels SET stock = stock - ?1, version = version + 1
                         WHERE product_id = ?2 AND location_id = ?3 RETURNING stock",
                    )?
                    .query_row(params![quantity, id, location], |r| r.get(0))?;
                tx.prepare_cached(
                    "INSERT INTO stock_ledger (product_id, location_id, delta, stock_after, reason,
                         order_id, idempotency_key, at)
                     VALUES (?1, ?2, ?3, ?4, 'deducted', ?5, ?6, ?7)",
                )?
                .execute(params![
                    id,
                    location,
                    -quantity,
                    stock_after,
                    request.order_id,
                    key,
                    at
                ])?;
            }
            let stock: i64 = levels.iter().map(|l| l.stock).sum::<i64>() - request.quantity;
            let reserved: i64 = levels.iter().map(|l| l.reserved).sum();
            tx.prepare_cached(
                "UPDATE products SET stock = ?1, version = version + 1, updated_at = ?2 WHERE id = ?3",
            )?
            .execute(params![stock, at, id])?;
            let allocations: Vec<serde_json::Value> = allocations
                .iter()
                .map(|(location, quantity)| serde_json::json!({"location_id": location, "quantity": quantity}))
                .collect();
            let body = serde_json::json!({"product_id": id, "stock": stock, "reserved": reserved,
                "available": (stock - reserved).max(0), "deducted": request.quantity,
                "allocations": allocations, "order_id": request.order_id});
            (StatusCode::OK, body.to_string())
        };
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (subject, key, fingerprint, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            subject,
            key,
            fingerprint,
            status.as_u16(),
            body,
            now / 1000
        ])?;
        tx.prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN
             (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT 2)",
        )?
        .execute(params![now / 1000 - IDEMPOTENCY_RETENTION_SECONDS])?;
        tx.commit()?;
        Ok(Answer {
            status,
            body,
            etag: None,
            replayed: false,
        })
    })();
    result.unwrap_or_else(|_| {
        Answer::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred",
            request_id,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn respond(
    answer: Answer,
    method: &str,
    path: &str,
    client: SocketAddr,
    subject: Option<&str>,
    rate: Option<(i64, i64)>,
    request_id: &str,
    started: Instant,
) -> Response {
    let status = answer.status;
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    if let Some(etag) = answer.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert("etag", etag);
    }
    if answer.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some((remaining, reset)) = rate {
        if let Ok(policy) =
            HeaderValue::from_str(&format!("\"default\";q={LIMIT};w={WINDOW_SECONDS}"))
        {
            headers.insert("ratelimit-policy", policy);
        }
        if let Ok(limit) =
            HeaderValue::from_str(&format!("\"default\";r={};t={reset}", remaining.max(0)))
        {
            headers.insert("ratelimit", limit);
        }
    }
    let line = serde_json::json!({
        "ts": rfc3339(now_millis()), "request_id": request_id, "ip": client.ip().to_string(),
        "method": method, "path": path, "status": status.as_u16(),
        "duration_ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "sub": subject, "component": "native",
    });
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    response
}

/// Cents as the JSON number clients see: `1250` is `12.5`.
fn price(cents: i64) -> serde_json::Number {
    let text = match cents % 100 {
        0 => format!("{}", cents / 100),
        c if c % 10 == 0 => format!("{}.{}", cents / 100, c / 10),
        c => format!("{}.{c:02}", cents / 100),
    };
    text.parse().unwrap_or_else(|_| serde_json::Number::from(0))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-12-01T23:17:44.123Z`.
fn rfc3339(millis: i64) -> String {
    let (days, ms) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// 16 random bytes in hex, from a per-thread generator seeded by the OS.
fn request_id() -> String {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    let next = || {
        STATE.with(|s| {
            // xorshift64*
            let mut x = s.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            s.set(x);
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
    };
    format!("{:016x}{:016x}", next(), next())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_prices_are_written_as_the_app_writes_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_168_264_123), "2026-12-01T23:37:44.123Z");
        assert_eq!(price(1250).to_string(), "12.5");
        assert_eq!(price(1205).to_string(), "12.05");
        assert_eq!(price(1200).to_string(), "12");
    }
}
