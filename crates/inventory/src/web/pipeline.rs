//! The request pipeline. One function fixes the order of the stages for every component:
//!
//! 1. request context (request id, start time, client address);
//! 2. route match; an open route (`Access::Open`, i.e. `/health`) skips 3 to 6;
//! 3. rate limit: the guard counts the request against the token's subject, or the client
//!    address when there is no valid token; every request counts, failed ones too; 429;
//! 4. the route match's own failure: 404, or 405 with `Allow`;
//! 5. authentication: the guard verifies the bearer token; 401 with `WWW-Authenticate`;
//! 6. authorization: one of the route's scopes; 403;
//! 7. body: size limit, media type, read (the handler has the guard validate it);
//! 8. the handler;
//! 9. the response, errors rendered as problem+json, with the `RateLimit` headers, then one
//!    access-log line.

use std::time::Instant;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method as SdkMethod, Response};

use crate::guard::{self, Decision, Principal};
use crate::http::{header, Method, Req, Resp};
use crate::problem::ApiError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who and what the request is, for every stage and the log.
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
}

impl Ctx {
    fn new(req: &Req, component: &'static str) -> Self {
        let request_id = req
            .header(header::REQUEST_ID)
            .filter(|id| is_sane_request_id(id))
            .map_or_else(new_request_id, str::to_owned);
        Self {
            request_id,
            started: Instant::now(),
            client_addr: req.last_header(header::SPIN_CLIENT_ADDR).map(str::to_owned),
            component,
            sub: None,
            rate: None,
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

fn new_request_id() -> String {
    let bytes = wasi::random::random::get_random_bytes(16);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub type Handler = fn(&Call<'_>) -> Result<Resp, ApiError>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, uncounted: no token, no rate limit (`/health`).
    Open,
    /// A valid token carrying at least one of these scopes.
    AnyOf(&'static [&'static str]),
}

/// One route of a component: method, path pattern (`/product/{id}`), who may call it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
}

/// What a handler gets.
pub struct Call<'a> {
    pub req: &'a Req,
    pub ctx: &'a Ctx,
    params: Vec<(&'static str, &'a str)>,
}

impl Call<'_> {
    /// A path parameter as a positive integer id; anything else is 400.
    pub fn id(&self, name: &str) -> Result<i64, ApiError> {
        let raw = self
            .params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or("");
        match raw.parse::<i64>() {
            Ok(id) if id >= 1 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
            _ => Err(ApiError::InvalidRequest(format!(
                "`{name}` must be a positive integer"
            ))),
        }
    }
}

/// Runs one request through the pipeline. A component's entry point is one call to this.
pub async fn serve(
    incoming: IncomingRequest,
    component: &'static str,
    routes: &[Route],
) -> Response {
    let method = method_of(&incoming.method());
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let mut req = Req::new(method, &path_with_query, incoming.headers().entries());
    let mut ctx = Ctx::new(&req, component);
    let result = run(incoming, &mut req, &mut ctx, routes).await;
    let (resp, error) = match result {
        Ok(resp) => (resp, None),
        Err(err) => {
            let cause = err.log_cause().map(str::to_owned);
            (err.into_response(&ctx.request_id), cause)
        }
    };
    let mut resp = resp.with_header(header::REQUEST_ID, &ctx.request_id);
    if let Some(rate) = &ctx.rate {
        resp.set_header(
            header::RATE_LIMIT_POLICY,
            &format!("\"default\";q={};w={}", rate.limit, rate.window),
        );
        resp.set_header(
            header::RATE_LIMIT,
            &format!("\"default\";r={};t={}", rate.remaining, rate.reset),
        );
    }
    crate::log::access(&crate::log::AccessEntry {
        ctx: &ctx,
        method: method.as_str(),
        path: &req.path,
        status: resp.status,
        error: error.as_deref(),
    });
    into_sdk(resp)
}

async fn run(
    incoming: IncomingRequest,
    req: &mut Req,
    ctx: &mut Ctx,
    routes: &[Route],
) -> Result<Resp, ApiError> {
    let matched = match_route(routes, req.method, &req.path);
    let open = matches!(&matched, Ok((route, _)) if route.access == Access::Open);
    let mut principal = None;
    if !open {
        // The token is verified before counting, so a valid token is counted per subject
        // wherever the client connects from.
        principal = bearer_token(req).map(guard::verify);
        if let Some(Ok(valid)) = &principal {
            // Known before the limit is checked, so a 429 is logged with who it refused.
            ctx.sub = Some(valid.subject.clone());
        }
        let client = match &principal {
            Some(Ok(principal)) => format!("sub:{}", principal.subject),
            _ => match ctx.client_ip() {
                Some(ip) => client_network(ip),
                // Failing open here would let a client without an address go unlimited.
                None => {
                    return Err(ApiError::Internal(
                        "no client address to rate-limit by (spin-client-addr)".into(),
                    ))
                }
            },
        };
        let rate = guard::check_rate(&client)?;
        let (allowed, retry_after) = (rate.allowed, rate.reset);
        ctx.rate = Some(rate);
        if !allowed {
            return Err(ApiError::RateLimited { retry_after });
        }
    }
    let (route, params) = matched?;
    if let Access::AnyOf(scopes) = route.access {
        let principal =
            principal.unwrap_or_else(|| Err(ApiError::Unauthorized("no bearer token".into())))?;
        authorize(&principal, scopes)?;
    }
    let ctx: &Ctx = ctx;
    if req.method.has_body() {
        req.body = read_body(incoming, req).await?;
    }
    let req: &Req = req;
    let call = Call {
        req,
        ctx,
        params: params
            .into_iter()
            .map(|(name, (start, end))| (name, req.path.get(start..end).unwrap_or("")))
            .collect(),
    };
    (route.handler)(&call)
}

/// Whom an anonymous request is counted against: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network; counting single IPv6 addresses would let a client rotate through
/// its 2^64 addresses to escape the limit).
fn client_network(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("ip:{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
        _ => format!("ip:{ip}"),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(req: &Req) -> Option<&str> {
    let value = req.header(header::AUTHORIZATION)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// 403 unless the token carries one of the route's scopes.
fn authorize(principal: &Principal, scopes: &[&str]) -> Result<(), ApiError> {
    if principal
        .scopes
        .iter()
        .any(|s| scopes.contains(&s.as_str()))
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this operation needs the scope `{}`",
            scopes.join("` or `")
        )))
    }
}

/// Path parameters by name, as byte ranges of the path.
type ParamRanges = Vec<(&'static str, (usize, usize))>;

/// Finds the route for a path and method.
fn match_route<'r>(
    routes: &'r [Route],
    method: Method,
    path: &str,
) -> Result<(&'r Route, ParamRanges), ApiError> {
    let mut allowed = Vec::new();
    for route in routes {
        let Some(params) = match_path(route.path, path) else {
            continue;
        };
        if route.method == method {
            return Ok((route, params));
        }
        allowed.push(route.method.as_str());
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound(format!("no resource at {path}")))
    } else {
        Err(ApiError::MethodNotAllowed(allowed))
    }
}

/// Matches `/product/{id}` against `/product/7`; a trailing slash is not the same path.
fn match_path(pattern: &'static str, path: &str) -> Option<ParamRanges> {
    let mut params = Vec::new();
    let mut pattern_parts = pattern.split('/');
    let mut offset = 0;
    for part in path.split('/') {
        let expected = pattern_parts.next()?;
        match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !part.is_empty() => params.push((name, (offset, offset + part.len()))),
            Some(_) => return None,
            None if expected == part => {}
            None => return None,
        }
        offset += part.len() + 1;
    }
    pattern_parts.next().is_none().then_some(params)
}

async fn read_body(incoming: IncomingRequest, req: &Req) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    if !is_json(req.header(header::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let mut body = Vec::new();
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::InvalidRequest(format!("the request body could not be read: {err:?}"))
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `application/json`, with or without parameters, in any case.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn method_of(method: &SdkMethod) -> Method {
    match method {
        SdkMethod::Get => Method::Get,
        SdkMethod::Head => Method::Head,
        SdkMethod::Post => Method::Post,
        SdkMethod::Put => Method::Put,
        SdkMethod::Patch => Method::Patch,
        SdkMethod::Delete => Method::Delete,
        SdkMethod::Options => Method::Options,
        _ => Method::Other,
    }
}

fn into_sdk(resp: Resp) -> Response {
    let mut builder = Response::builder();
    builder.status(resp.status);
    for (name, value) in resp.headers {
        builder.header(name, value);
    }
    builder.body(resp.body).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &Call<'_>) -> Result<Resp, ApiError> {
        Ok(Resp::new(200))
    }

    const ROUTES: &[Route] = &[
        Route {
            method: Method::Get,
            path: "/product/{id}",
            access: Access::Open,
            handler: ok,
        },
        Route {
            method: Method::Delete,
            path: "/product/{id}",
            access: Access::Open,
            handler: ok,
        },
        Route {
            method: Method::Get,
            path: "/product",
            access: Access::Open,
            handler: ok,
        },
    ];

    #[test]
    fn a_path_with_a_parameter_matches_and_captures_it() {
        let (route, params) = match_route(ROUTES, Method::Get, "/product/42").unwrap();
        assert_eq!(route.path, "/product/{id}");
        assert_eq!(params, vec![("id", (9, 11))]);
    }

    #[test]
    fn a_known_path_with_another_method_is_405_listing_the_allowed_ones() {
        match match_route(ROUTES, Method::Put, "/product/42") {
            Err(ApiError::MethodNotAllowed(allow)) => assert_eq!(allow, vec!["GET", "DELETE"]),
            other => panic!("{other:?}", other = other.map(|(r, _)| r.path)),
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in ["/products", "/product/1/x", "/product/", "/"] {
            assert!(
                matches!(
                    match_route(ROUTES, Method::Get, path),
                    Err(ApiError::NotFound(_))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/jsonx")));
        assert!(!is_json(None));
    }

    #[test]
    fn anonymous_clients_are_counted_by_ipv4_address_or_ipv6_64() {
        assert_eq!(client_network("203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(
            client_network("2001:db8:1:2:aaaa::1"),
            client_network("2001:db8:1:2:ffff::9")
        );
        assert_eq!(client_network("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(client_network("::ffff:203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(client_network("not-an-ip"), "ip:not-an-ip");
    }

    #[test]
    fn request_ids_from_clients_must_be_plain() {
        assert!(is_sane_request_id("abc-123_x.y:z"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("a b"));
        assert!(!is_sane_request_id(&"a".repeat(129)));
    }
}
