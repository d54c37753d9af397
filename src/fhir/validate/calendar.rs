//! Calendar checks for `date`, `dateTime`, `instant` and `time` values.
//!
//! The types' regexes check the lexical shape (and already limit months to 01-12, days to
//! 01-31, hours to 00-23, ...); these checks add what a regex cannot express, chiefly
//! whether the day exists in its month (30 April, 29 February of leap years only), and
//! give a precise message for any out-of-range field:
//!
//! * month 01-12; day 01 up to the length of the month (proleptic Gregorian leap years:
//!   divisible by 4, centuries only when divisible by 400);
//! * hour 00-23 (`24:00:00` is rejected, as FHIR's regex does), minute 00-59, second
//!   00-60 (`60` is accepted anywhere, as the regex does, for leap seconds);
//! * time zone offset from `-14:00` to `+14:00`, minutes 00-59.
//!
//! A field that is missing or not made of digits at its position is left to the regex.

/// Which calendar-bearing primitive a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    Date,
    /// A date, optionally followed by `Thh:mm:ss[.fff](Z|±hh:mm)`.
    DateTime,
    /// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`.
    Instant,
    /// `hh:mm:ss[.fff]`.
    Time,
}

impl Temporal {
    /// The temporal kind of a FHIR primitive type, if it is one.
    pub(crate) fn of_type(name: &str) -> Option<Temporal> {
        match name {
            "date" => Some(Temporal::Date),
            "dateTime" => Some(Temporal::DateTime),
            "instant" => Some(Temporal::Instant),
            "time" => Some(Temporal::Time),
            _ => None,
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Whether `year` is a leap year in the (proleptic) Gregorian calendar.
pub(crate) fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Number of days of `month` (1-12) in `year`.
pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The first calendar field of `s` that is out of range, described for a message
/// (e.g. `day 30 does not exist in February 2019`); `None` when every field present at
/// its expected position is in range.
pub(crate) fn calendar_error(kind: Temporal, s: &str) -> Option<String> {
    let b = s.as_bytes();
    match kind {
        Temporal::Time => time_error(b, 0),
        Temporal::Date | Temporal::DateTime | Temporal::Instant => date_time_error(b),
    }
}

/// `YYYY[-MM[-DD[Thh:mm:ss[.f+](Z|±hh:mm)]]]`.
fn date_time_error(b: &[u8]) -> Option<String> {
    let year = digits(b, 0, 4)?;
    if !sep(b, 4, b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    if !(1..=12).contains(&month) {
        return Some(format!("month {month:02} is out of range (01-12)"));
    }
    if !sep(b, 7, b'-') {
        return None;
    }
    let day = digits(b, 8, 2)?;
    let last = days_in_month(year, month);
    if day == 0 || day > last {
        let month_name = MONTHS[month as usize - 1];
        return Some(if month == 2 && day == 29 {
            format!("{year:04} is not a leap year, February has 28 days")
        } else {
            format!("day {day:02} does not exist in {month_name} {year:04} ({last} days)")
        });
    }
    if !sep(b, 10, b'T') {
        return None;
    }
    time_error(b, 11)
}

/// `hh:mm:ss[.f+]` at `at`, followed (within a dateTime / instant) by a time zone.
fn time_error(b: &[u8], at: usize) -> Option<String> {
    let hour = digits(b, at, 2)?;
    if hour > 23 {
        return Some(format!("hour {hour:02} is out of range (00-23)"));
    }
    if !sep(b, at + 2, b':') {
        return None;
    }
    let minute = digits(b, at + 3, 2)?;
    if minute > 59 {
        return Some(format!("minute {minute:02} is out of range (00-59)"));
    }
    if !sep(b, at + 5, b':') {
        return None;
    }
    let second = digits(b, at + 6, 2)?;
    if second > 60 {
        return Some(format!(
            "second {second:02} is out of range (00-59, 60 for a leap second)"
        ));
    }
    let mut i = at + 8;
    if sep(b, i, b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    match b.get(i) {
        Some(&sign @ (b'+' | b'-')) => {
            let hh = digits(b, i + 1, 2)?;
            if !sep(b, i + 3, b':') {
                return None;
            }
            let mm = digits(b, i + 4, 2)?;
            if mm > 59 || hh > 14 || (hh == 14 && mm > 0) {
                let sign = char::from(sign);
                return Some(format!(
                    "time zone offset {sign}{hh:02}:{mm:02} is out of range (-14:00 to +14:00)"
                ));
            }
            None
        }
        _ => None,
    }
}

/// The decimal number made of the `len` ASCII digits at `at`, if they are all there.
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let field = b.get(at..at + len)?;
    field.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Whether `b[at]` is the separator `c`.
fn sep(b: &[u8], at: usize, c: u8) -> bool {
    b.get(at) == Some(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_years() {
        assert!(is_leap_year(1960));
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2019));
        assert!(!is_leap_year(2021));
        assert_eq!(days_in_month(2020, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2021, 4), 30);
        assert_eq!(days_in_month(2021, 12), 31);
    }

    #[test]
    fn fields() {
        use Temporal::*;
        for ok in [
            "2019",
            "2019-02",
            "1960-02-29",
            "2000-02-29",
            "2019-12-31",
            "2019-04-30T23:59:59Z",
            "2019-04-30T23:59:60.123+14:00",
            "2019-04-30T00:00:00-14:00",
            "2019-04-30T00:00:00+05:45",
        ] {
            assert_eq!(calendar_error(DateTime, ok), None, "{ok}");
        }
        assert_eq!(calendar_error(Time, "23:59:60.5"), None);
        assert_eq!(calendar_error(Time, "00:00:00"), None);
        let err = |k, s| calendar_error(k, s).unwrap_or_else(|| panic!("{s} accepted"));
        assert_eq!(err(Date, "2019-13"), "month 13 is out of range (01-12)");
        assert_eq!(err(Date, "2019-00-01"), "month 00 is out of range (01-12)");
        assert_eq!(
            err(Date, "2019-02-30"),
            "day 30 does not exist in February 2019 (28 days)"
        );
        assert_eq!(
            err(Date, "2021-02-29"),
            "2021 is not a leap year, February has 28 days"
        );
        assert_eq!(
            err(Date, "1900-02-29"),
            "1900 is not a leap year, February has 28 days"
        );
        assert_eq!(
            err(Date, "2021-04-31"),
            "day 31 does not exist in April 2021 (30 days)"
        );
        assert_eq!(
            err(Date, "2021-04-00"),
            "day 00 does not exist in April 2021 (30 days)"
        );
        assert_eq!(
            err(Instant, "2021-04-01T24:00:00Z"),
            "hour 24 is out of range (00-23)"
        );
        assert_eq!(
            err(Instant, "2021-04-01T10:60:00Z"),
            "minute 60 is out of range (00-59)"
        );
        assert_eq!(
            err(DateTime, "2021-04-01T10:00:61Z"),
            "second 61 is out of range (00-59, 60 for a leap second)"
        );
        assert_eq!(
            err(DateTime, "2021-04-01T10:00:00.5+14:30"),
            "time zone offset +14:30 is out of range (-14:00 to +14:00)"
        );
        assert_eq!(
            err(DateTime, "2021-04-01T10:00:00-15:00"),
            "time zone offset -15:00 is out of range (-14:00 to +14:00)"
        );
        assert_eq!(
            err(DateTime, "2021-04-01T10:00:00+01:60"),
            "time zone offset +01:60 is out of range (-14:00 to +14:00)"
        );
        assert_eq!(err(Time, "24:00:00"), "hour 24 is out of range (00-23)");
        // Shape errors are left to the regex.
        for odd in [
            "",
            "x",
            "20",
            "2019-1",
            "2019/02/30",
            "2019-02-3x",
            "T",
            "1:00:00",
        ] {
            assert_eq!(calendar_error(DateTime, odd), None, "{odd}");
            assert_eq!(calendar_error(Time, odd), None, "{odd}");
        }
    }
}
