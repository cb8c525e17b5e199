//! Conditional requests on a product (RFC 9110 §13). Its ETag is its version, `"4"`, and,
//! while units are held, what is held: `"4-3"`. Every change bumps the version, but a hold
//! that expires changes `reserved` with no write at all, so the ETag names it too, and a
//! cached copy from before the expiry is not taken for the current one.
//!
//! `If-Match` compares versions only: a stock count taken at version 4 is still right after
//! a hold of that version expired, and wrong after any change.

use inventory::store::products::Product;
use inventory::web::http::{header, Req};
use inventory::ApiError;

/// The product's ETag.
pub fn etag(product: &Product) -> String {
    match product.reserved {
        0 => format!("\"{}\"", product.version),
        reserved => format!("\"{}-{reserved}\"", product.version),
    }
}

/// What `If-Match` asks of a write.
#[derive(Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match`: unconditional.
    Absent,
    /// `If-Match: *`: the product must exist, at any version.
    Any,
    /// The versions the product may be at. Tags that are not ours (weak, or not a
    /// version) match nothing, so a stale or foreign tag is a 412.
    Versions(Vec<i64>),
}

impl IfMatch {
    /// The versions a write must find, if it names any.
    pub fn versions(self) -> Option<Vec<i64>> {
        match self {
            Self::Versions(versions) => Some(versions),
            Self::Absent | Self::Any => None,
        }
    }
}

/// Reads `If-Match` (every field line of it, as one list). A value that is neither `*` nor
/// a list of entity tags is a 400 naming the header, as `api/openapi.json`'s pattern says.
pub fn if_match(req: &Req) -> Result<IfMatch, ApiError> {
    let Some(value) = joined(req, header::IF_MATCH) else {
        return Ok(IfMatch::Absent);
    };
    let malformed = || {
        ApiError::InvalidRequest(
            "`If-Match` must be `*` or a comma-separated list of entity tags such as `\"4\"`"
                .into(),
        )
    };
    let value = value.ok_or_else(malformed)?;
    if value.trim_matches(OWS) == "*" {
        return Ok(IfMatch::Any);
    }
    let tags = entity_tags(&value).ok_or_else(malformed)?;
    Ok(IfMatch::Versions(
        tags.into_iter()
            .filter(|tag| !tag.weak)
            .filter_map(|tag| parse_version(tag.opaque))
            .collect(),
    ))
}

/// Whether `If-None-Match` matches the product's ETag, by weak comparison (`W/"4"` matches
/// `"4"` too). A value that is not a list of entity tags matches nothing: a read stays a
/// read.
pub fn if_none_match(req: &Req, product: &Product) -> bool {
    let Some(Some(value)) = joined(req, header::IF_NONE_MATCH) else {
        return false;
    };
    if value.trim_matches(OWS) == "*" {
        return true;
    }
    let current = etag(product);
    let current = current.trim_matches('"');
    entity_tags(&value)
        .unwrap_or_default()
        .iter()
        .any(|tag| tag.opaque == current)
}

/// Whether `If-None-Match` is `*`: the write must find nothing there.
pub fn if_none_match_any(req: &Req) -> bool {
    matches!(joined(req, header::IF_NONE_MATCH), Some(Some(value)) if value.trim_matches(OWS) == "*")
}

const OWS: [char; 2] = [' ', '\t'];

/// The field lines of `name` joined by commas: `None` when absent, `Some(None)` when a line
/// is not ASCII.
fn joined(req: &Req, name: &str) -> Option<Option<String>> {
    let mut lines = req.header_values(name).peekable();
    lines.peek()?;
    let lines: Option<Vec<&str>> = lines
        .map(|line| std::str::from_utf8(line).ok().filter(|s| s.is_ascii()))
        .collect();
    Some(lines.map(|lines| lines.join(",")))
}

struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// `1#entity-tag` with optional whitespace around the commas: `W/"a", "b,c"`. An opaque tag
/// may hold commas, so this scans rather than splits.
fn entity_tags(value: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut rest = value.trim_matches(OWS);
    let mut tags = Vec::new();
    loop {
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(quoted) => (true, quoted),
            None => (false, rest),
        };
        let body = quoted.strip_prefix('"')?;
        let end = body.find('"')?;
        let opaque = &body[..end];
        // etagc: %x21 / %x23-7E (obs-text is refused: we never send it).
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push(EntityTag { weak, opaque });
        rest = body[end + 1..].trim_start_matches(OWS);
        if rest.is_empty() {
            return Some(tags);
        }
        rest = rest.strip_prefix(',')?.trim_start_matches(OWS);
    }
}

/// The version an ETag of ours names: `4` of `"4"` or `"4-3"`.
fn parse_version(opaque: &str) -> Option<i64> {
    let version = match opaque.split_once('-') {
        Some((version, reserved))
            if !reserved.is_empty() && reserved.bytes().all(|b| b.is_ascii_digit()) =>
        {
            version
        }
        Some(_) => return None,
        None => opaque,
    };
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::web::http::Method;

    fn req(lines: &[&str]) -> Req {
        let headers = lines
            .iter()
            .map(|v| ("If-Match".to_owned(), v.as_bytes().to_vec()))
            .collect();
        Req::new(Method::Put, "/product/1", headers)
    }

    fn versions(lines: &[&str]) -> Option<IfMatch> {
        if_match(&req(lines)).ok()
    }

    #[test]
    fn if_match_reads_lists_of_strong_versions() {
        assert_eq!(versions(&[]), Some(IfMatch::Absent));
        assert_eq!(versions(&["*"]), Some(IfMatch::Any));
        assert_eq!(versions(&["\"4\""]), Some(IfMatch::Versions(vec![4])));
        assert_eq!(
            versions(&["\"4\" ,\t\"5-2\"", "\"6\""]),
            Some(IfMatch::Versions(vec![4, 5, 6]))
        );
        // Weak and foreign tags are well formed but match nothing.
        assert_eq!(
            versions(&["W/\"4\", \"a,b\", \"\", \"+5\", \"5-\", \"-5\""]),
            Some(IfMatch::Versions(vec![]))
        );
    }

    #[test]
    fn malformed_if_match_is_refused() {
        for bad in [
            "",
            " ",
            "4",
            "\"4",
            "\"4\",",
            ",\"4\"",
            "\"4\" \"5\"",
            "*, \"4\"",
            "w/\"4\"",
            "\"a b\"",
            "\"é\"",
        ] {
            assert_eq!(versions(&[bad]), None, "{bad:?}");
        }
    }

    fn product(version: i64, reserved: i64) -> Product {
        Product {
            id: 1,
            sku: None,
            name: "Mug".into(),
            description: String::new(),
            price: inventory::domain::Price::from_checked(100),
            stock: 10,
            reserved,
            available: 10 - reserved,
            category_id: None,
            version,
            by_location: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_etag_names_what_is_held() {
        assert_eq!(etag(&product(4, 0)), "\"4\"");
        assert_eq!(etag(&product(4, 3)), "\"4-3\"");
    }

    #[test]
    fn if_none_match_compares_weakly_and_sees_an_expiry() {
        let req = |v: &str| {
            Req::new(
                Method::Get,
                "/product/1",
                vec![("if-none-match".to_owned(), v.as_bytes().to_vec())],
            )
        };
        assert!(if_none_match(&req("W/\"4\""), &product(4, 0)));
        assert!(if_none_match(&req("\"3\", \"4\""), &product(4, 0)));
        assert!(if_none_match(&req("*"), &product(4, 0)));
        assert!(!if_none_match(&req("\"3\""), &product(4, 0)));
        assert!(!if_none_match(&req("4"), &product(4, 0)));
        // A hold of version 4 expired: same version, another representation.
        assert!(if_none_match(&req("\"4-3\""), &product(4, 3)));
        assert!(!if_none_match(&req("\"4-3\""), &product(4, 0)));
    }
}
