//! `allowed_outbound_hosts`, with Spin's semantics: each entry is
//! `<scheme>://<host>[:<port>]`, where the scheme is a name or `*`; the host a name, an IP
//! address, a CIDR range, `*`, or `*.domain` (subdomains only, not the domain itself); the
//! port a number, a range `a..b` (end excluded), `*`, or absent for the scheme's well-known
//! port (http 80, https 443, ...). A request is allowed if any entry matches its scheme, host
//! and port. Variable templates are rendered at load; one that renders empty is skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};

/// The domain of service chaining: `http://<component>.spin.internal/...`.
pub const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    Subdomains(String),
    /// `self`: relative requests, which this host does not make; matches no URL.
    ToSelf,
    Name(Host),
    Network {
        addr: IpAddr,
        prefix: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(Range<u16>),
}

/// A URL host, normalised: lower-case names, parsed addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    fn parse(text: &str) -> Result<Self> {
        if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let addr: Ipv6Addr = v6.parse().context("invalid IPv6 address")?;
            return Ok(Self::Ip(IpAddr::V6(addr)));
        }
        if let Ok(addr) = text.parse::<Ipv4Addr>() {
            return Ok(Self::Ip(IpAddr::V4(addr)));
        }
        ensure!(!text.is_empty(), "empty host");
        ensure!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
            "invalid host name {text:?}"
        );
        Ok(Self::Domain(text.to_ascii_lowercase()))
    }
}

/// The port a scheme uses when a URL names none.
fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHosts {
    /// Parses the entries of one component, each already rendered.
    pub fn parse(entries: &[String]) -> Result<Self> {
        if let [only] = entries {
            ensure!(
                only != "insecure:allow-all",
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want \
                 to allow all outbound traffic"
            );
        }
        let entries = entries
            .iter()
            .filter(|entry| !renders_empty(entry))
            .map(|entry| Entry::parse(entry))
            .collect::<Result<_>>()?;
        Ok(Self { entries })
    }

    /// Whether a request to `scheme://host[:port]` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        self.entries.iter().any(|e| e.allows(scheme, &host, port))
    }
}

/// A template that rendered to nothing names no host: Spin skips it (an optional endpoint).
fn renders_empty(entry: &str) -> bool {
    matches!(entry.trim(), "" | "http://" | "https://")
}

impl Entry {
    fn parse(text: &str) -> Result<Self> {
        let entry = text.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!(
                "{entry:?} does not contain a scheme (e.g., 'http://' or '*://'): hosts must be \
                 in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each"
            );
        };
        // `host:port`, unless the whole rest is a host with colons of its own (IPv6).
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((host, "")) => (host, ""),
            Some(_) if HostPattern::parse(rest).is_ok() => (rest, ""),
            Some((host, tail)) => match tail.split_once('/') {
                Some((port, "")) => (host, port),
                Some(_) => bail!("{entry:?} has a path but is not allowed to"),
                None => (host, tail),
            },
        };
        let port = PortPattern::parse(port, scheme)
            .with_context(|| format!("{entry:?}: invalid port {port:?}"))?;
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => Some(s.to_owned()),
            s => bail!("{entry:?}: invalid scheme {s:?}: only letters, or `*`"),
        };
        let host = HostPattern::parse(host)
            .with_context(|| format!("{entry:?}: invalid host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &Host, port: Option<u16>) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.host.allows(host)
            && self.port.allows(port.or_else(|| well_known_port(scheme)))
    }
}

impl HostPattern {
    fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        match text {
            "*" => return Ok(Self::Any),
            "self" | "self.alt" => return Ok(Self::ToSelf),
            _ => {}
        }
        ensure!(!text.starts_with('{'), "host lists are not supported");
        if let Some((addr, prefix)) = text.split_once('/') {
            if let (Ok(addr), Ok(prefix)) = (addr.parse::<IpAddr>(), prefix.parse::<u8>()) {
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                ensure!(
                    prefix <= bits,
                    "a /{prefix} prefix is longer than the address"
                );
                return Ok(Self::Network { addr, prefix });
            }
        }
        let text = text.strip_suffix('/').unwrap_or(text);
        ensure!(!text.contains('/'), "must not include a path");
        if let Some(domain) = text.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "wildcards are allowed only as prefixes"
            );
            let Host::Domain(domain) = Host::parse(domain)? else {
                bail!("wildcard suffix must be a domain");
            };
            return Ok(Self::Subdomains(format!(".{domain}")));
        }
        ensure!(
            !text.contains('*'),
            "wildcards are allowed only as subdomains"
        );
        Ok(Self::Name(Host::parse(text)?))
    }

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::Subdomains(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::Name(name), host) => name == host,
            (Self::Network { addr, prefix }, Host::Ip(ip)) => in_network(*addr, *prefix, *ip),
            _ => false,
        }
    }
}

fn in_network(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let (network, ip, bits) = match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= 128 || network >> shift == ip >> shift
}

impl PortPattern {
    fn parse(text: &str, scheme: &str) -> Result<Self> {
        if text.is_empty() {
            let port = well_known_port(scheme).with_context(|| {
                format!(
                    "no port was provided and the scheme {scheme:?} does not have a known \
                     default port number"
                )
            })?;
            return Ok(Self::Range(port..port.saturating_add(1)));
        }
        if text == "*" {
            return Ok(Self::Any);
        }
        ensure!(!text.starts_with('{'), "port lists are not supported");
        if let Some((start, end)) = text.split_once("..") {
            let number = |s: &str| {
                s.parse::<u16>()
                    .with_context(|| format!("port range {text:?} contains non-number"))
            };
            return Ok(Self::Range(number(start)?..number(end)?));
        }
        let port: u16 = text
            .parse()
            .with_context(|| format!("port {text:?} is not a number"))?;
        Ok(Self::Range(port..port.saturating_add(1)))
    }

    fn allows(&self, port: Option<u16>) -> bool {
        match (self, port) {
            (Self::Any, _) => true,
            (Self::Range(range), Some(port)) => range.contains(&port),
            (Self::Range(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn error(entry: &str) -> String {
        format!(
            "{:#}",
            AllowedHosts::parse(&[entry.to_owned()]).unwrap_err()
        )
    }

    #[test]
    fn scheme_host_and_port_must_all_match_with_default_ports() {
        let h = hosts(&["https://api.example.com", "http://10.0.0.1:8080"]);
        assert!(h.allows("https", "api.example.com", None));
        assert!(h.allows("https", "API.example.com", Some(443)));
        assert!(!h.allows("http", "api.example.com", None));
        assert!(!h.allows("https", "api.example.com", Some(8443)));
        assert!(h.allows("http", "10.0.0.1", Some(8080)));
        assert!(!h.allows("http", "10.0.0.1", None));
    }

    #[test]
    fn wildcards_cover_subdomains_schemes_and_ports() {
        let h = hosts(&["*://*.example.com:*"]);
        assert!(h.allows("http", "a.example.com", Some(1)));
        assert!(h.allows("https", "a.b.example.com", None));
        assert!(!h.allows("https", "example.com", None));
        assert!(!h.allows("https", "badexample.com", None));
        assert!(hosts(&["http://*:*"]).allows("http", "anything", Some(9)));
    }

    #[test]
    fn port_ranges_exclude_their_end() {
        let h = hosts(&["http://127.0.0.1:8000..8010"]);
        assert!(h.allows("http", "127.0.0.1", Some(8000)));
        assert!(h.allows("http", "127.0.0.1", Some(8009)));
        assert!(!h.allows("http", "127.0.0.1", Some(8010)));
    }

    #[test]
    fn cidr_ranges_and_ipv6_literals_match_addresses() {
        let h = hosts(&["http://10.0.0.0/8:*", "http://[::1]:3000"]);
        assert!(h.allows("http", "10.1.2.3", Some(80)));
        assert!(!h.allows("http", "11.0.0.1", Some(80)));
        assert!(!h.allows("http", "ten.example", Some(80)));
        assert!(h.allows("http", "[::1]", Some(3000)));
        assert!(!h.allows("http", "[::2]", Some(3000)));
    }

    #[test]
    fn service_chaining_hosts_are_names_like_any_other() {
        let h = hosts(&["http://notifier.spin.internal"]);
        assert!(h.allows("http", "notifier.spin.internal", None));
        assert!(!h.allows("http", "stock.spin.internal", None));
        assert!(hosts(&["http://*.spin.internal"]).allows("http", "stock.spin.internal", None));
    }

    #[test]
    fn templates_that_render_empty_are_skipped() {
        let h = hosts(&["", "http://", "https://example.com"]);
        assert_eq!(h.entries.len(), 1);
    }

    #[test]
    fn malformed_entries_are_refused_with_the_reason() {
        assert!(error("example.com").contains("does not contain a scheme"));
        assert!(error("*://example.com").contains("does not have a known default port"));
        assert!(error("http://example.com/path").contains("path"));
        assert!(error("http://example.com:x").contains("is not a number"));
        assert!(error("http://example.com:99999").contains("is not a number"));
        assert!(error("http://ex*mple.com").contains("only as subdomains"));
        assert!(error("http://*.*.com").contains("only as prefixes"));
        assert!(error("h1tp://example.com:80").contains("invalid scheme"));
        assert!(error("insecure:allow-all").contains("'*://*:*'"));
    }
}
