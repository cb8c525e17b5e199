//! One delivery: the event's body, POSTed to a receiver with the three Standard Webhooks 1.0
//! headers, signed with the `standardwebhooks` crate (the reference implementation's), within
//! a time limit. A 2xx answer is success; anything else is a failure with a reason.

use std::time::Duration;

use futures::future::{self, Either};
use standardwebhooks::Webhook;

use inventory::edge::{self, sleep, Post, Scheme, SendError};

/// No answer within this is a failure.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A `whsec_` secret decodes to this many bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// The `events_secret` the app ships with (`spin.toml`). It is public: anyone could sign
/// events with it, so it signs only for receivers on this machine (loopback).
const DEV_SECRET: &str = "whsec_ZGV2LW9ubHktaW5zZWN1cmUtZXZlbnRzLXNlY3JldCE=";

/// The signing keys of `events_secret`: one, or two during a rotation (space-separated);
/// every delivery carries a signature by each.
pub struct Signer {
    keys: Vec<Webhook>,
    /// One of the keys is the shipped development secret.
    development: bool,
}

impl Signer {
    pub fn from_variable(value: &str) -> Result<Self, String> {
        let keys = value
            .split_whitespace()
            .map(|secret| {
                let encoded = secret.strip_prefix("whsec_").ok_or_else(|| {
                    "each secret in `events_secret` must start with `whsec_`".to_owned()
                })?;
                let bytes = decoded_len(encoded).ok_or_else(|| {
                    "a secret in `events_secret` is not base64 after `whsec_`".to_owned()
                })?;
                if !SECRET_BYTES.contains(&bytes) {
                    return Err(format!(
                        "a secret in `events_secret` is {bytes} bytes; it must be 24 to 64"
                    ));
                }
                Webhook::new(secret).map_err(|err| format!("`events_secret`: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() || keys.len() > 2 {
            return Err("`events_secret` must hold one secret, or two during a rotation".into());
        }
        let development = value.split_whitespace().any(|secret| secret == DEV_SECRET);
        Ok(Self { keys, development })
    }

    /// `v1,<base64>` by each key, space-separated.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
        let signatures = self
            .keys
            .iter()
            .map(|key| key.sign(id, timestamp, body.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("cannot sign: {err}"))?;
        Ok(signatures.join(" "))
    }
}

/// The length of standard base64 text once decoded, if it is well-formed.
fn decoded_len(text: &str) -> Option<usize> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    (text.len().is_multiple_of(4) && padding <= 2 && body.bytes().all(alphabet))
        .then(|| text.len() / 4 * 3 - padding)
}

/// Sends `body` to `url` as event `id`. `Err` says why it failed, for `last_error`.
pub async fn deliver(signer: &Signer, url: &str, id: &str, body: &str) -> Result<(), String> {
    if signer.development && !Target::parse(url)?.is_loopback() {
        let refusal = "events are signed with the shipped development events_secret, which \
             signs only for loopback receivers: set your own events_secret \
             (SPIN_VARIABLE_EVENTS_SECRET)";
        eprintln!("{refusal}");
        return Err(refusal.to_owned());
    }
    let timestamp = inventory::time::now_millis() / 1000;
    let signature = signer.sign(id, timestamp, body)?;
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
        ("user-agent", "inventory-notifier".to_owned()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let send = Box::pin(post(url, &headers, body.as_bytes()));
    let outcome = match future::select(send, Box::pin(sleep(ATTEMPT_TIMEOUT))).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
    };
    outcome
}

/// One POST, with the host enforcing the time limits too.
async fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<(), String> {
    let target = Target::parse(url)?;
    let answer = edge::send(Post {
        scheme: target.scheme,
        authority: &target.authority,
        path_with_query: &target.path,
        headers,
        body,
        timeout: Some(ATTEMPT_TIMEOUT),
    })
    .await
    .map_err(describe)?;
    match answer.status {
        200..=299 => Ok(()),
        status => Err(format!("the receiver answered {status}")),
    }
}

/// A receiver URL, as wasi:http wants it. Errors never quote the URL: it may carry a
/// credential, and errors end up in `last_error`, which operators list.
struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Target {
    /// Whether the receiver is on this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
    fn is_loopback(&self) -> bool {
        let host = match self.authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "the receiver URL is not absolute".to_owned())?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "the receiver URL's scheme {other:?} is not http or https"
                ))
            }
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err("the receiver URL names no host".to_owned());
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path,
        })
    }
}

fn describe(err: SendError) -> String {
    match err {
        SendError::Denied => "denied: the receiver's origin is not in the notifier's \
             allowed_outbound_hosts (order_events_allowed_host)"
            .to_owned(),
        SendError::Refused => "the connection was refused".to_owned(),
        SendError::TimedOut => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        SendError::Failed(why) => format!("the request failed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification (and of its Python package).
        let signer = Signer::from_variable("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = signer
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn receiver_urls_split_into_what_wasi_http_wants() {
        let t = Target::parse("https://orders.example.com:8443/hooks/inventory?x=1").unwrap();
        assert!(matches!(t.scheme, Scheme::Https));
        assert_eq!(t.authority, "orders.example.com:8443");
        assert_eq!(t.path, "/hooks/inventory?x=1");
        assert_eq!(Target::parse("http://127.0.0.1:9000").unwrap().path, "/");
        for bad in ["orders.example.com/x", "ftp://x/y", "http:///path"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_receivers_count_as_this_machine() {
        let local = |url: &str| Target::parse(url).unwrap().is_loopback();
        assert!(local("http://127.0.0.1:8080/x"));
        assert!(local("http://localhost/x"));
        assert!(local("http://[::1]:9/x"));
        assert!(local("http://127.1.2.3/x"));
        assert!(!local("http://192.0.2.2:8080/x"));
        assert!(!local("https://orders.example.com/x"));
        assert!(!local("http://localhost.example.com/x"));
    }

    #[test]
    fn the_shipped_secret_is_recognised_even_in_a_rotation() {
        assert!(Signer::from_variable(DEV_SECRET).unwrap().development);
        let rotating = format!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw {DEV_SECRET}");
        assert!(Signer::from_variable(&rotating).unwrap().development);
        assert!(
            !Signer::from_variable("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .development
        );
    }

    #[test]
    fn two_secrets_sign_twice_and_bad_secrets_are_refused() {
        let signer = Signer::from_variable(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .unwrap();
        let signature = signer.sign("evt_1", 1, "{}").unwrap();
        assert_eq!(signature.split(' ').count(), 2, "{signature}");
        assert!(signature.split(' ').all(|s| s.starts_with("v1,")));
        for bad in [
            "",
            "plain",
            "whsec_c2hvcnQ=",
            "whsec_!!!!",
            "whsec_a whsec_b whsec_c",
        ] {
            assert!(Signer::from_variable(bad).is_err(), "{bad}");
        }
    }
}
