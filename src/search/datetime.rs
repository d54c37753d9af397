//! FHIR `date` / `dateTime` / `instant` values as the half-open range of time they cover, in
//! microseconds since the Unix epoch (UTC).

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// `[start, end)` of `text` at its precision: `1990` is the whole year, `1990-05` the month,
/// `1990-05-17` the day (dates have no zone: taken as UTC), `1990-05-17T10:30` the minute,
/// `…T10:30:05` the second, `…T10:30:05.25` the hundredth of a second (down to 1 µs). A time
/// without a zone (not allowed by FHIR, accepted here) is taken as UTC. `None` if `text` is
/// not such a value or names a day that does not exist.
pub fn date_range(text: &str) -> Option<(i64, i64)> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    if b.len() == 4 {
        return Some((
            days_from_civil(year, 1, 1) * DAY,
            days_from_civil(year + 1, 1, 1) * DAY,
        ));
    }
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2).filter(|m| (1..=12).contains(m))?;
    if b.len() == 7 {
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Some((
            days_from_civil(year, month, 1) * DAY,
            days_from_civil(next_year, next_month, 1) * DAY,
        ));
    }
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2).filter(|&d| d >= 1 && d <= days_in_month(year, month))?;
    let midnight = days_from_civil(year, month, day) * DAY;
    if b.len() == 10 {
        return Some((midnight, midnight + DAY));
    }
    expect(b, 10, b'T')?;
    let hour = digits(b, 11, 2).filter(|&h| h <= 23)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2).filter(|&m| m <= 59)?;
    let mut start = midnight + hour * HOUR + minute * MINUTE;
    let mut width = MINUTE;
    let mut pos = 16;
    if b.get(pos) == Some(&b':') {
        // 60 is a leap second.
        start += digits(b, 17, 2).filter(|&s| s <= 60)? * SECOND;
        width = SECOND;
        pos = 19;
        if b.get(pos) == Some(&b'.') {
            let frac = b[pos + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if frac == 0 {
                return None;
            }
            // Digits beyond microseconds are below the index's resolution.
            let used = frac.min(6);
            let mut micros = digits(b, pos + 1, used)?;
            for _ in used..6 {
                micros *= 10;
            }
            start += micros;
            width = 10i64.pow(6 - used as u32);
            pos += 1 + frac;
        }
    }
    let offset = match b.get(pos) {
        None => 0,
        Some(b'Z') if b.len() == pos + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == pos + 6 => {
            let hours = digits(b, pos + 1, 2).filter(|&h| h <= 14)?;
            expect(b, pos + 3, b':')?;
            let minutes = digits(b, pos + 4, 2).filter(|&m| m <= 59)?;
            let offset = hours * HOUR + minutes * MINUTE;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let start = start - offset;
    Some((start, start + width))
}

/// The decimal number in `b[at..at + len]` (ASCII digits only).
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let s = b.get(at..at + len)?;
    s.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn micros(t: time::OffsetDateTime) -> i64 {
        i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap()
    }

    #[test]
    fn precision_ranges() {
        let y1990 = micros(datetime!(1990-01-01 0:00 UTC));
        assert_eq!(
            date_range("1990"),
            Some((y1990, micros(datetime!(1991-01-01 0:00 UTC))))
        );
        assert_eq!(
            date_range("1990-12"),
            Some((
                micros(datetime!(1990-12-01 0:00 UTC)),
                micros(datetime!(1991-01-01 0:00 UTC))
            ))
        );
        assert_eq!(
            date_range("2020-02-29"),
            Some((
                micros(datetime!(2020-02-29 0:00 UTC)),
                micros(datetime!(2020-03-01 0:00 UTC))
            ))
        );
        let t = micros(datetime!(2015-02-07 13:28:17 -5));
        assert_eq!(
            date_range("2015-02-07T13:28:17-05:00"),
            Some((t, t + SECOND))
        );
        let t = micros(datetime!(2015-02-07 13:28:17.239 +2));
        assert_eq!(
            date_range("2015-02-07T13:28:17.239+02:00"),
            Some((t, t + 1000))
        );
        assert_eq!(
            date_range("2015-02-07T13:28:17.2391234Z"),
            Some((t + 2 * HOUR + 123, t + 2 * HOUR + 124))
        );
        let t = micros(datetime!(2015-02-07 13:28 UTC));
        assert_eq!(date_range("2015-02-07T13:28Z"), Some((t, t + MINUTE)));
        assert_eq!(date_range("2015-02-07T13:28:00"), Some((t, t + SECOND)));
        assert_eq!(date_range("1969-12-31T23:59:59Z"), Some((-SECOND, 0)));
        assert_eq!(
            date_range("0001").map(|r| r.0),
            Some(micros(datetime!(0001-01-01 0:00 UTC)))
        );
    }

    #[test]
    fn rejects_non_dates() {
        for bad in [
            "",
            "199",
            "19901",
            "1990-13",
            "1990-00",
            "1990-02-29",
            "1990-04-31",
            "1990-05-17T",
            "1990-05-17T24:00:00Z",
            "1990-05-17T10:60Z",
            "1990-05-17T10:00:00.Z",
            "1990-05-17T10:00:00+15:00",
            "1990-05-17T10:00:00+02",
            "1990-05-17 10:00",
            "12:00:00",
            "１９９０",
            "1990-05-17T10:00:00Zjunk",
        ] {
            assert_eq!(date_range(bad), None, "{bad:?}");
        }
    }
}
