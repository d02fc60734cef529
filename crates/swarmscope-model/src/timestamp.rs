//! Times on the wire are RFC 3339 strings (the seed's `new Date().toISOString()`);
//! inside swarmscope they are integer nanoseconds since the Unix epoch.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parses an RFC 3339 timestamp into Unix nanoseconds, or `None` when it is not
/// a valid RFC 3339 time representable in an `i64` of nanoseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos()).ok()
}

/// Formats Unix nanoseconds as RFC 3339 in UTC with the precision the value
/// needs (milliseconds for the seed's times, more when the source had more).
pub fn format_rfc3339(nanos: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)) {
        Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| nanos.to_string()),
        Err(_) => nanos.to_string(),
    }
}

/// Current time in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_iso_strings_round_trip() {
        let n = parse_rfc3339("2025-12-14T10:30:45.123Z").expect("valid");
        assert_eq!(n, 1_765_708_245_123_000_000);
        assert_eq!(format_rfc3339(n), "2025-12-14T10:30:45.123Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = parse_rfc3339("2025-12-14T11:30:45+01:00").expect("valid");
        let b = parse_rfc3339("2025-12-14T10:30:45Z").expect("valid");
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-12-14 10:30:45",
            "1734170000",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
