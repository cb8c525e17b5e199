//! Every id the app makes, from one generator: random hex, and the prefixed ids of the
//! things it stores (`res_` holds, `evt_` events), which sort roughly by creation.

/// `bytes` random bytes as lower-case hex (request ids, lease tokens).
pub fn random_hex(bytes: usize) -> String {
    hex(&crate::edge::random_bytes(bytes))
}

/// `<prefix>_` and 32 lower-case hex digits: the time in milliseconds (12), then 80 random
/// bits (20), so ids sort roughly by creation and never collide.
pub fn prefixed(prefix: &str) -> String {
    format!(
        "{prefix}_{:012x}{}",
        crate::time::now_millis(),
        random_hex(10)
    )
}

/// Whether `id` could be one `prefixed(prefix)` made.
pub fn is_prefixed(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_ids_are_the_prefix_and_32_hex_digits() {
        assert!(is_prefixed("res", "res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5c"));
        for bad in [
            "",
            "res_",
            "res019a2b3c4d5e6f7a8b9c0d1e2f3a4b5c",
            "res_019A2B3C4D5E6F7A8B9C0D1E2F3A4B5C",
            "evt_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5c",
            "res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5",
            "res_019a2b3c4d5e6f7a8b9c0d1e2f3a4b5g",
        ] {
            assert!(!is_prefixed("res", bad), "{bad}");
        }
    }

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
