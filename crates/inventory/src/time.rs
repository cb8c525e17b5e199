//! Wall-clock time as RFC 3339 UTC, from the WASI clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as `2026-11-21T10:05:00.123Z`.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_unix(since.as_secs(), since.subsec_millis())
}

/// Now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Unix milliseconds as `2026-11-21T10:05:00Z` (whole seconds, as the `*_at` columns).
pub fn rfc3339_seconds(millis: i64) -> String {
    let secs = u64::try_from(millis.max(0) / 1000).unwrap_or(0);
    let full = format_unix(secs, 0);
    full.replace(".000Z", "Z")
}

/// Unix milliseconds as `2026-11-21T10:05:00.123Z`.
pub fn rfc3339_millis(millis: i64) -> String {
    let millis = u64::try_from(millis.max(0)).unwrap_or(0);
    format_unix(millis / 1000, u32::try_from(millis % 1000).unwrap_or(0))
}

fn format_unix(secs: u64, millis: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_format_as_rfc3339_utc() {
        assert_eq!(format_unix(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(format_unix(1_795_256_700, 123), "2026-11-21T10:25:00.123Z");
        assert_eq!(rfc3339_seconds(1_795_256_700_999), "2026-11-21T10:25:00Z");
        assert_eq!(
            rfc3339_millis(1_795_256_700_999),
            "2026-11-21T10:25:00.999Z"
        );
    }
}
