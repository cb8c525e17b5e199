//! The request pipeline. One function fixes the order of the stages for every component:
//!
//! 1. request context (request id, start time, client address);
//! 2. route match; an open route (`Access::Open`, i.e. `/health`) skips 3 to 7;
//! 3. the guard verifies the bearer token, if there is one, to learn whom to count;
//! 4. rate limit: the guard counts the request against the token's subject, or the client
//!    address when there is no valid token; every request counts, failed ones too; 429;
//! 5. the route match's own failure: 404, or 405 with `Allow`;
//! 6. authentication: no token or a refused one is 401 with `WWW-Authenticate`;
//! 7. authorization: one of the route's scopes; 403;
//! 8. body: size limit, media type, read (the handler has the guard validate it);
//! 9. the handler;
//! 10. the response, errors rendered as problem+json, with the `RateLimit` headers, sent
//!     whole; then one access-log line;
//! 11. what the response leaves for after it, once the client has it: if the change wrote
//!     events, a chained request to the notifier (`notify.rs`).

use crate::edge::{Body, BodyError, Head, Reply};
use crate::store::db::NotifierCall;
use crate::web::context::Ctx;
use crate::web::guard::{self, Principal};
use crate::web::http::{header, Method, Req, Resp};
use crate::web::log;
use crate::web::notify;
use crate::web::problem::ApiError;
use crate::web::routing::{match_route, Access, Call, Handler, Route};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of a body over `MAX_BODY_BYTES` is read, and dropped, before the 413, so the
/// answer reaches the client (`BodyError::TooLarge`); a body past it is refused unread.
const DRAIN_BYTES: usize = 1024 * 1024;

/// Answers one request: a component's entry point (`inventory::http_component!`) hands
/// each request the edge receives to this.
pub async fn serve(
    head: Head,
    body: Body,
    component: &'static str,
    routes: &'static [Route],
) -> Reply {
    serve_with::<Guarded>(head, body, component, routes).await
}

/// The pipeline of a private component, reached only by service chaining from the app's own
/// components (the notifier): every route is `Access::Open`, and the guard's stages (3 to 7)
/// are left out, so such a component imports nothing of the guard and needs no dependency.
pub async fn serve_private(
    head: Head,
    body: Body,
    component: &'static str,
    routes: &'static [Route],
) -> Reply {
    serve_with::<Private>(head, body, component, routes).await
}

/// What differs between the pipelines. Chosen by type, so the private one does not even
/// link the guard's stages (a component imports what its code calls).
trait Stages {
    /// Stages 3 and 4 for a route with `access` (`None`: no route matched): whom the
    /// request speaks for (the verdict on its bearer token, if it sent one, for stage 6),
    /// the request counted against the rate limit; `Err` when it is refused before the
    /// route's own failure.
    fn admit(req: &Req, ctx: &mut Ctx, access: Option<Access>)
        -> Result<Option<Verdict>, ApiError>;

    /// Whether the request hands time-driven work it noticed to the notifier.
    const KEEPS_TIME: bool;
}

/// Every stage: reached by clients, through the guard.
struct Guarded;

/// No guard stages, and no time-driven work to hand on: the notifier does its own.
struct Private;

/// A bearer token, verified (or refused, with why).
type Verdict = Result<Principal, ApiError>;

/// Stages 1 to 10; stage 11 and the access log are the reply's `after`, for the edge to run
/// once the client has the response.
async fn serve_with<S: Stages>(
    head: Head,
    body: Body,
    component: &'static str,
    routes: &'static [Route],
) -> Reply {
    let method = Method::from_name(head.method);
    let mut req = Req::new(method, &head.path_with_query, head.headers);
    let mut ctx = Ctx::new(&req, component);
    let result = run::<S>(body, &mut req, &mut ctx, routes).await;
    let (resp, error) = match result {
        Ok(resp) => (resp, None),
        Err(err) => {
            let cause = err.log_cause();
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
    let headers = std::mem::take(&mut resp.headers)
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let (status, body) = (resp.status, std::mem::take(&mut resp.body));
    let request_id = ctx.request_id.clone();
    let after = Box::pin(async move {
        log::access(&log::AccessEntry {
            ctx: &ctx,
            method: method.as_str(),
            path: &req.path,
            status,
            error: error.as_deref(),
        });
        let call = match ctx.notifier_call(resp.probe) {
            _ if resp.notify => Some(NotifierCall::Now),
            Some((db, call)) if S::KEEPS_TIME => {
                if let NotifierCall::Watch { until, claim } = call {
                    notify::watch(db, until, claim, &ctx.request_id).await;
                }
                Some(call)
            }
            _ => None,
        };
        if call == Some(NotifierCall::Now) {
            notify::notifier(&ctx.request_id).await;
        }
        resp.after.run().await;
    });
    Reply {
        status,
        headers,
        body,
        request_id,
        after,
    }
}

async fn run<S: Stages>(
    body: Body,
    req: &mut Req,
    ctx: &mut Ctx,
    routes: &[Route],
) -> Result<Resp, ApiError> {
    let matched = match_route(routes, req.method, &req.path);
    let access = matched.as_ref().ok().map(|(route, _)| route.access);
    let verdict = S::admit(req, ctx, access)?;
    let (route, params) = matched?;
    if let Access::AnyOf(scopes) = route.access {
        let principal =
            verdict.unwrap_or_else(|| Err(ApiError::Unauthorized("no bearer token".into())))?;
        authorize(&principal, scopes)?;
    }
    let ctx: &Ctx = ctx;
    if req.method.has_body() {
        req.body = read_body(body, req).await?;
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
    match route.handler {
        Handler::Sync(handler) => handler(&call),
        Handler::Async(handler) => handler(&call).await,
    }
}

impl Stages for Guarded {
    const KEEPS_TIME: bool = true;

    /// With the guard: an open route (`/health`) skips stages 3 and 4; any other request,
    /// matched or not, has its token verified (to learn whom to count) and is counted.
    fn admit(
        req: &Req,
        ctx: &mut Ctx,
        access: Option<Access>,
    ) -> Result<Option<Verdict>, ApiError> {
        guarded(req, ctx, access)
    }
}

impl Stages for Private {
    const KEEPS_TIME: bool = false;

    /// Without the guard: nobody is verified or counted.
    fn admit(_: &Req, _: &mut Ctx, _: Option<Access>) -> Result<Option<Verdict>, ApiError> {
        Ok(None)
    }
}

fn guarded(req: &Req, ctx: &mut Ctx, access: Option<Access>) -> Result<Option<Verdict>, ApiError> {
    if access == Some(Access::Open) {
        return Ok(None);
    }
    // The token is verified before counting, so a valid token is counted per subject
    // wherever the client connects from.
    let verdict = bearer_token(req)
        .map(|token| guard::verify(token).and_then(|principal| honour(principal, ctx)));
    if let Some(Ok(valid)) = &verdict {
        // Known before the limit is checked, so a 429 is logged with who it refused.
        ctx.sub = Some(valid.subject.clone());
    }
    let client = match &verdict {
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
    Ok(verdict)
}

/// A token signed with the shipped development `jwt_secret` is honoured only for a client on
/// the same machine: that secret is public, so a deployment that kept it is open to anyone
/// who can reach it. Everyone else gets 401, and the log says what to set.
fn honour(principal: Principal, ctx: &Ctx) -> Result<Principal, ApiError> {
    if !principal.development_key || ctx.client_is_loopback() {
        return Ok(principal);
    }
    Err(ApiError::Unauthorized(format!(
        "a token signed with the shipped development jwt_secret, from {}: it is honoured only \
         for loopback clients; set your own jwt_secret (SPIN_VARIABLE_JWT_SECRET)",
        ctx.client_ip().unwrap_or("an unknown address")
    )))
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

async fn read_body(body: Body, req: &Req) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        // Read, and dropped, if it is not much larger, so the 413 reaches the client
        // (`BodyError::TooLarge`); refused unread if it is.
        if declared.is_some_and(|len| len <= DRAIN_BYTES as u64) {
            let _ = body.read(0, DRAIN_BYTES).await;
        }
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    // A body must be JSON; a request without one (`POST /events/deliver`) needs no type.
    // One that declares a length is refused before it is read; a chunked one (which Spin's
    // WASI 0.3 edge passes on as `transfer-encoding: chunked`, even when empty) once it
    // turns out not to be empty.
    let json = is_json(req.header(header::CONTENT_TYPE));
    if !json && declared.is_some_and(|len| len > 0) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body
        .read(MAX_BODY_BYTES, DRAIN_BYTES)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
            BodyError::Failed(why) => {
                ApiError::InvalidRequest(format!("the request body could not be read: {why}"))
            }
        })?;
    if !json && !body.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(body)
}

/// `application/json`, with or without parameters, in any case.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
