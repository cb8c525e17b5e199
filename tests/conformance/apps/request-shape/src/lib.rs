//! What a request looks like to a component: its method, authority, path and query, scheme,
//! and the `spin-*` headers a Spin host adds for the route
//! `/base/:path_segment/:path_end/...`, each exactly once, and no others.

// `export!` expands to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

use std::collections::BTreeMap;

use conformance_helper::{answer, check, check_eq, Failure};
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam, Scheme};

struct App;

impl wasi::exports::http::incoming_handler::Guest for App {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        answer(out, inspect(&request));
    }
}

wasi::http::proxy::export!(App);

/// The headers a Spin host sets, with the values it gives them for this request.
const SPIN_HEADERS: &[(&str, &str)] = &[
    (
        "spin-raw-component-route",
        "/base/:path_segment/:path_end/...",
    ),
    ("spin-component-route", "/base/:path_segment/:path_end"),
    ("spin-matched-route", "/base/:path_segment/:path_end/..."),
    ("spin-path-info", "/rest"),
    ("spin-base-path", "/"),
    ("spin-path-match-path-segment", "path"),
    ("spin-path-match-path-end", "end"),
];

fn inspect(request: &IncomingRequest) -> Result<(), Failure> {
    check(matches!(request.method(), Method::Get), || {
        format!("method: expected GET, got {:?}", request.method())
    })?;
    check_eq(
        "authority",
        request.authority().as_deref(),
        Some("example.com"),
    )?;
    check_eq(
        "path with query",
        request.path_with_query().as_deref(),
        Some("/base/path/end/rest?key=value"),
    )?;
    let scheme = request.scheme();
    check(matches!(scheme, Some(Scheme::Http | Scheme::Https)), || {
        format!("scheme: expected http or https, got {scheme:?}")
    })?;
    let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in request.headers().entries() {
        headers
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }
    for (name, expected) in SPIN_HEADERS {
        check_eq(name, one(&headers, name)?.as_deref(), Some(*expected))?;
    }
    let full_url = one(&headers, "spin-full-url")?;
    check(
        ["http", "https"].iter().any(|scheme| {
            full_url.as_deref()
                == Some(format!("{scheme}://example.com/base/path/end/rest?key=value").as_str())
        }),
        || format!("spin-full-url: got {full_url:?}"),
    )?;
    if let Some(addr) = one(&headers, "spin-client-addr")? {
        check(addr.parse::<std::net::SocketAddr>().is_ok(), || {
            format!("spin-client-addr is not an address: {addr:?}")
        })?;
    }
    let known = |name: &str| {
        SPIN_HEADERS.iter().any(|(known, _)| *known == name)
            || matches!(name, "spin-full-url" | "spin-client-addr")
    };
    let unknown: Vec<&String> = headers
        .keys()
        .filter(|name| (name.starts_with("spin-") || name.starts_with("spin_")) && !known(name))
        .collect();
    check(unknown.is_empty(), || {
        format!("unexpected headers: {unknown:?}")
    })
}

/// The value of a header that may be sent at most once, as text.
fn one(headers: &BTreeMap<String, Vec<Vec<u8>>>, name: &str) -> Result<Option<String>, Failure> {
    match headers.get(name).map(Vec::as_slice) {
        None => Ok(None),
        Some([value]) => String::from_utf8(value.clone())
            .map(Some)
            .map_err(|_| Failure(format!("{name} is not UTF-8"))),
        Some(values) => Err(Failure(format!("{name} sent {} times", values.len()))),
    }
}
