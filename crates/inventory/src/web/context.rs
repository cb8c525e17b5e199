//! Who and what a request is, for every stage of the pipeline and for the access log.

use std::cell::OnceCell;
use std::time::Instant;

use crate::store::db::NotifierCall;
use crate::store::{self, Db};
use crate::web::guard::Decision;
use crate::web::http::{header, Req};
use crate::web::problem::ApiError;

#[derive(Debug)]
pub struct Ctx {
    pub request_id: String,
    pub started: Instant,
    pub client_addr: Option<String>,
    pub component: &'static str,
    /// The authenticated subject, once known.
    pub sub: Option<String>,
    /// The rate limiter's decision, once made; reported in the `RateLimit` headers.
    pub rate: Option<Decision>,
    /// The database, once the handler opened it (`db`). After the response the pipeline
    /// asks it whether to call the notifier.
    db: OnceCell<Db>,
}

impl Ctx {
    pub fn new(req: &Req, component: &'static str) -> Self {
        let request_id = req
            .header(header::REQUEST_ID)
            .filter(|id| is_sane_request_id(id))
            .map_or_else(|| crate::ids::random_hex(16), str::to_owned);
        Self {
            request_id,
            started: Instant::now(),
            client_addr: req.last_header(header::SPIN_CLIENT_ADDR).map(str::to_owned),
            component,
            sub: None,
            rate: None,
            db: OnceCell::new(),
        }
    }

    /// The app's database for this request, opened on first use (`store::open`: the schema
    /// brought up to date, and the app's clock read).
    pub fn db(&self) -> Result<&Db, ApiError> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let db = store::open()?;
        Ok(self.db.get_or_init(|| db))
    }

    /// What the request's database work leaves the notifier, and the database it used.
    /// `probe`: the request is a probe.
    pub fn notifier_call(&self, probe: bool) -> Option<(&Db, NotifierCall)> {
        self.db.get().map(|db| (db, db.notifier_call(probe)))
    }

    /// Whether the client is on this machine (a loopback address, IPv4-mapped or not).
    pub fn client_is_loopback(&self) -> bool {
        match self.client_ip().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(std::net::IpAddr::V6(v6))) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Some(Ok(ip)) => ip.is_loopback(),
            _ => false,
        }
    }

    /// The client's IP address, without the port.
    pub fn client_ip(&self) -> Option<&str> {
        let addr = self.client_addr.as_deref()?;
        Some(match addr.rsplit_once(':') {
            Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                ip.trim_start_matches('[').trim_end_matches(']')
            }
            _ => addr,
        })
    }
}

/// A client's request id is echoed only if it is short and plain.
fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_from(addr: &str) -> Ctx {
        let req = Req::new(
            crate::web::http::Method::Get,
            "/",
            vec![
                ("x-request-id".into(), b"test".to_vec()),
                ("spin-client-addr".into(), addr.as_bytes().to_vec()),
            ],
        );
        Ctx::new(&req, "test")
    }

    #[test]
    fn loopback_clients_are_recognised_in_every_form() {
        for addr in [
            "127.0.0.1:5000",
            "127.9.9.9:1",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(ctx_from(addr).client_is_loopback(), "{addr}");
        }
        for addr in ["192.0.2.2:5000", "[fd00::2]:1", "0.0.0.0:0", "garbage"] {
            assert!(!ctx_from(addr).client_is_loopback(), "{addr}");
        }
    }

    #[test]
    fn request_ids_from_clients_must_be_plain() {
        assert!(is_sane_request_id("abc-123_x.y:z"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("a b"));
        assert!(!is_sane_request_id(&"a".repeat(129)));
    }
}
