//! Query strings: `application/x-www-form-urlencoded` pairs, decoded without panics.

/// Decodes a query string into pairs. `None` for malformed percent-escapes or bytes that do
/// not decode to UTF-8.
pub fn parse(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(key)?, decode(value)?))
        })
        .collect()
}

/// Percent-decoding, with `+` as a space.
pub fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut iter = text.bytes();
    while let Some(b) = iter.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = hex(iter.next()?)?;
                let lo = hex(iter.next()?)?;
                bytes.push(hi << 4 | lo);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_percent_escapes_and_plus() {
        let pairs = parse("q=blue+mug&x=%C3%A9%26&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("q".into(), "blue mug".into()),
                ("x".into(), "é&".into()),
                ("flag".into(), String::new())
            ]
        );
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert!(parse("q=%").is_none());
        assert!(parse("q=%zz").is_none());
        assert!(parse("q=%ff").is_none());
    }

    #[test]
    fn encoding_round_trips() {
        let text = "blue mug/é&=%";
        assert_eq!(decode(&encode(text)).as_deref(), Some(text));
    }
}
