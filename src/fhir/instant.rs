//! Server timestamps: microseconds since the Unix epoch, rendered as FHIR instants and HTTP dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch, now: the unit of every time in the auth tables and in JWTs.
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn to_datetime(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2024-05-01T12:00:00.123456Z`: a FHIR instant with the full stored precision.
pub fn to_fhir_instant(micros: i64) -> String {
    to_datetime(micros)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// An HTTP date (`Last-Modified`), which has whole-second precision.
pub fn to_http_date(micros: i64) -> String {
    let seconds = u64::try_from(micros.div_euclid(1_000_000)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Parses an HTTP date into microseconds since the epoch.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let time = httpdate::parse_http_date(value).ok()?;
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since_epoch.as_micros()).ok()
}

/// Parses a FHIR instant or dateTime (`_since`, `_at`) into microseconds since the epoch.
/// Dates without a time or zone are taken as the start of that day in UTC.
pub fn parse_fhir_datetime(value: &str) -> Option<i64> {
    let parsed = if let Ok(datetime) = OffsetDateTime::parse(value, &Rfc3339) {
        datetime
    } else {
        let date = time::Date::parse(
            value,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok()?;
        date.midnight().assume_utc()
    };
    i64::try_from(parsed.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let micros = 1_714_564_800_123_456;
        assert_eq!(to_fhir_instant(micros), "2024-05-01T12:00:00.123456Z");
        assert_eq!(to_http_date(micros), "Wed, 01 May 2024 12:00:00 GMT");
        assert_eq!(
            parse_http_date("Wed, 01 May 2024 12:00:00 GMT"),
            Some(1_714_564_800_000_000)
        );
        assert_eq!(
            parse_fhir_datetime("2024-05-01T12:00:00.123456Z"),
            Some(micros)
        );
        assert_eq!(
            parse_fhir_datetime("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800_000_000)
        );
        assert_eq!(
            parse_fhir_datetime("2024-05-01"),
            Some(1_714_521_600_000_000)
        );
        assert_eq!(parse_fhir_datetime("yesterday"), None);
    }
}
