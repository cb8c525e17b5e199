//! The request as the pipeline sees it, and the response it builds.

use std::future::Future;

use futures::future::LocalBoxFuture;
use serde::Serialize;

/// Header names used across the service, in one place.
pub mod header {
    pub const ALLOW: &str = "allow";
    pub const AUTHORIZATION: &str = "authorization";
    pub const CONTENT_LENGTH: &str = "content-length";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const ETAG: &str = "etag";
    pub const IF_MATCH: &str = "if-match";
    pub const IF_NONE_MATCH: &str = "if-none-match";
    pub const LINK: &str = "link";
    pub const LOCATION: &str = "location";
    pub const RATE_LIMIT: &str = "ratelimit";
    pub const RATE_LIMIT_POLICY: &str = "ratelimit-policy";
    pub const REQUEST_ID: &str = "x-request-id";
    pub const RETRY_AFTER: &str = "retry-after";
    pub const SPIN_CLIENT_ADDR: &str = "spin-client-addr";
    pub const WWW_AUTHENTICATE: &str = "www-authenticate";
}

/// Status codes the service answers with, by name.
pub mod status {
    pub const OK: u16 = 200;
    pub const CREATED: u16 = 201;
    pub const ACCEPTED: u16 = 202;
    pub const NO_CONTENT: u16 = 204;
    pub const NOT_MODIFIED: u16 = 304;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const FORBIDDEN: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const METHOD_NOT_ALLOWED: u16 = 405;
    pub const CONFLICT: u16 = 409;
    pub const PRECONDITION_FAILED: u16 = 412;
    pub const PAYLOAD_TOO_LARGE: u16 = 413;
    pub const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
    pub const UNPROCESSABLE_CONTENT: u16 = 422;
    pub const PRECONDITION_REQUIRED: u16 = 428;
    pub const TOO_MANY_REQUESTS: u16 = 429;
    pub const INTERNAL_SERVER_ERROR: u16 = 500;
    pub const SERVICE_UNAVAILABLE: u16 = 503;

    /// 4xx: the client's request was refused (and may be answered again as it was).
    pub fn is_client_error(status: u16) -> bool {
        (400..500).contains(&status)
    }
}

/// HTTP methods the service routes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// The method of a request line's name (`Other` for one the API does not use).
    pub fn from_name(name: &str) -> Self {
        match name {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "OTHER",
        }
    }

    /// Methods whose requests carry a JSON body.
    pub fn has_body(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

/// A request: head plus (once read) body. Header names are lower-case.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: Method, path_with_query: &str, headers: Vec<(String, Vec<u8>)>) -> Self {
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query, ""));
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: Vec::new(),
        }
    }

    /// The first value of a header, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every field line of a header, in order, as sent.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The last value of a header. Spin appends the headers it sets after any a client
    /// sent under the same name, so for `spin-*` headers the last value is Spin's.
    pub fn last_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A response under construction.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Once the response is sent, the pipeline asks the notifier to deliver what is due,
    /// whatever the app's clock says (a redelivery made events due now).
    pub notify: bool,
    /// Work of the component's own for after the response is sent.
    pub after: After,
    /// The request was a probe (`GET /health`): the app's clock (see `Db::notifier_call`).
    pub probe: bool,
}

/// Work a response leaves for after it is sent: the client never waits for it.
#[derive(Default)]
pub struct After(Option<LocalBoxFuture<'static, ()>>);

impl After {
    pub async fn run(self) {
        if let Some(work) = self.0 {
            work.await;
        }
    }
}

impl std::fmt::Debug for After {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "After(work)"
        } else {
            "After(nothing)"
        })
    }
}

impl Resp {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            notify: false,
            after: After::default(),
            probe: false,
        }
    }

    /// Marks the answer to a probe.
    pub fn probing(mut self) -> Self {
        self.probe = true;
        self
    }

    /// Asks for the notifier after the response if `needed` (otherwise the app's clock
    /// decides: `Db::notifier_call`).
    pub fn notifying(mut self, needed: bool) -> Self {
        self.notify = needed;
        self
    }

    /// Leaves `work` for after the response is sent.
    pub fn then(mut self, work: impl Future<Output = ()> + 'static) -> Self {
        self.after = After(Some(Box::pin(work)));
        self
    }

    /// A JSON response. Serializing our own view types cannot fail; if it ever did, the
    /// body would be empty rather than a panic.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        let mut resp = Self::new(status);
        resp.body = serde_json::to_vec(body).unwrap_or_default();
        resp.set_header(header::CONTENT_TYPE, "application/json");
        resp
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = value.to_owned(),
            None => self.headers.push((name.to_owned(), value.to_owned())),
        }
    }

    /// A header this response has set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.set_header(name, value);
        self
    }
}
