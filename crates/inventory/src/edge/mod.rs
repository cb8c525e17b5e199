//! The app's one seam with the Spin SDK: the HTTP entry point, reading a request's body and
//! sending its response, outbound requests, timers and randomness. Nothing above this module
//! knows which Spin generation it runs on; the crate's features pick one:
//!
//! - `wasip3` (the default, `p3.rs`): spin-sdk 7, exporting `wasi:http/handler@0.3.0`.
//!   Spin 4.1 and later, and this project's host, reuse such an instance across requests,
//!   several at once;
//! - `wasip2` (`p2.rs`): spin-sdk 5, exporting `wasi:http/incoming-handler@0.2.0`, for Spin
//!   hosts before WASI 0.3 final (a fresh instance per request).
//!
//! The store reaches SQLite and variables through its own bindings (`store::spin`), the same
//! in both builds, and the guard is a component of its own.

use std::fmt;
use std::time::Duration;

use futures::future::LocalBoxFuture;

#[cfg(all(feature = "wasip2", feature = "wasip3"))]
compile_error!("the features `wasip2` and `wasip3` pick one Spin generation: enable one");
#[cfg(not(any(feature = "wasip2", feature = "wasip3")))]
compile_error!("enable the feature `wasip3` (spin-sdk 7) or `wasip2` (spin-sdk 5)");

#[cfg(feature = "wasip2")]
mod p2;
#[cfg(feature = "wasip2")]
pub use p2::*;

#[cfg(all(feature = "wasip3", not(feature = "wasip2")))]
mod p3;
#[cfg(all(feature = "wasip3", not(feature = "wasip2")))]
pub use p3::*;

/// What the edge knows of a request before its body is read.
#[derive(Debug)]
pub struct Head {
    /// The method's name (`GET`...), or `OTHER` for one the API does not use.
    pub method: &'static str,
    pub path_with_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The answer to a request, for the edge to send whole; then `after` runs, once the
/// client has it (the access log, handing events to the notifier...).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// For the edge's own log lines.
    pub request_id: String,
    pub after: LocalBoxFuture<'static, ()>,
}

/// An outbound request's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A `POST` to send (the app's only outbound method).
#[derive(Debug)]
pub struct Post<'a> {
    pub scheme: Scheme,
    pub authority: &'a str,
    pub path_with_query: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: &'a [u8],
    /// The host's limit on connecting, the first byte, and between bytes; `None` for its
    /// default.
    pub timeout: Option<Duration>,
}

impl Post<'_> {
    /// The headers as wasi:http's `fields` take them.
    fn header_list(&self) -> Vec<(String, Vec<u8>)> {
        self.headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone().into_bytes()))
            .collect()
    }

    /// The time limit in nanoseconds, as wasi:http's request options take it (saturated).
    fn timeout_nanos(&self) -> Option<u64> {
        self.timeout
            .map(|limit| u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// An answer to an outbound request, its body read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an outbound request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The host refused it: the origin is not in the component's `allowed_outbound_hosts`.
    Denied,
    /// The receiver refused the connection.
    Refused,
    /// A time limit ran out.
    TimedOut,
    /// Anything else, as the host said it.
    Failed(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied => f.write_str("denied by allowed_outbound_hosts"),
            Self::Refused => f.write_str("the connection was refused"),
            Self::TimedOut => f.write_str("timed out"),
            Self::Failed(why) => write!(f, "{why}"),
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit. A body that passes it is read on, and dropped, to its end
    /// (up to a bound), so the refusal reaches the client: a server that closes the
    /// connection with the client's bytes unread resets it, and the reset can overtake the
    /// answer (Spin 4.1's WASI 0.3 edge did, for a 70 KB body).
    TooLarge,
    /// The stream failed (the client went away, say).
    Failed(String),
}

/// Defines the component's HTTP entry point: every request goes through the app's pipeline
/// with `routes` (`inventory::http_component!("products", routes::ROUTES)`), or, with
/// `private`, through the pipeline of a component reached only by service chaining. On the
/// WASI 0.2 build the component names spin-sdk 5 `spin_sdk` at its root, for the SDK's
/// `#[http_component]` (see its `lib.rs`).
#[macro_export]
macro_rules! http_component {
    ($component:literal, $routes:expr) => {
        $crate::__entry_point!(|head, body| $crate::web::pipeline::serve(
            head, body, $component, $routes
        ));
    };
    (private $component:literal, $routes:expr) => {
        $crate::__entry_point!(|head, body| $crate::web::pipeline::serve_private(
            head, body, $component, $routes
        ));
    };
}
