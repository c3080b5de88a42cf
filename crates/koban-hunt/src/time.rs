//! Times and durations as the query writes them: `earliest=-24h`, `latest=now`,
//! `earliest=2023-08-15T10:00:00Z`, `earliest=2023-08-15`, `span=5m`. Calendar
//! arithmetic is done here (days from a civil date), without a date library.
//!
//! Errors are `(offset, message)`: a byte offset into the text given, always just
//! past characters already checked to be ASCII, so the caller can map it back.

use crate::ast::TimeBound;

pub(crate) type TimeError = (usize, String);

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Milliseconds in one `unit` (s, m, h, d, w; either case).
fn unit_ms(unit: char) -> Option<i64> {
    match unit.to_ascii_lowercase() {
        's' => Some(SECOND),
        'm' => Some(MINUTE),
        'h' => Some(HOUR),
        'd' => Some(DAY),
        'w' => Some(7 * DAY),
        _ => None,
    }
}

/// A whole number and a unit (`5m`, `0s`), as milliseconds.
fn amount(s: &str, what: &str) -> Result<i64, TimeError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let hint = "write a whole number and a unit s, m, h, d or w (like 5m or 1h)";
    if digits == 0 {
        return Err((0, format!("bad {what} '{s}': {hint}")));
    }
    let mut rest = s[digits..].chars();
    let (Some(unit), None) = (rest.next(), rest.next()) else {
        return Err((digits, format!("bad {what} '{s}': {hint}")));
    };
    let Some(per) = unit_ms(unit) else {
        return Err((digits, format!("unknown unit '{unit}' in '{s}': {hint}")));
    };
    s[..digits]
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .ok_or_else(|| (0, format!("the {what} '{s}' is too long")))
}

/// `5m`, `1h`, `90s`, `2d`: a whole number and a unit, as milliseconds (> 0).
pub(crate) fn duration(s: &str) -> Result<i64, TimeError> {
    match amount(s, "duration")? {
        0 => Err((0, "a duration must be longer than 0".to_string())),
        ms => Ok(ms),
    }
}

/// The value of `earliest=` or `latest=`: `now`, `-24h` / `+1d`, an RFC 3339 time or
/// a date (UTC midnight).
pub(crate) fn bound(s: &str) -> Result<TimeBound, TimeError> {
    if s.eq_ignore_ascii_case("now") {
        return Ok(TimeBound::Relative(0));
    }
    if let Some(rest) = s.strip_prefix('-') {
        let ms = amount(rest, "relative time").map_err(|(at, m)| (at + 1, m))?;
        return Ok(TimeBound::Relative(-ms));
    }
    if let Some(rest) = s.strip_prefix('+') {
        let ms = amount(rest, "relative time").map_err(|(at, m)| (at + 1, m))?;
        return Ok(TimeBound::Relative(ms));
    }
    let b = s.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return absolute(s).map(TimeBound::Absolute);
    }
    if amount(s, "").is_ok() {
        return Err((
            0,
            format!("a relative time needs a sign: -{s} (in the past) or +{s}"),
        ));
    }
    Err((
        0,
        format!(
            "bad time '{s}': expected now, a relative time like -24h, -15m, -7d, \
             or a UTC date or time like 2023-08-15 or 2023-08-15T10:00:00Z"
        ),
    ))
}

/// Two ASCII digits at `at`, or an error naming `what`.
fn two_digits(b: &[u8], at: usize, what: &str) -> Result<u32, TimeError> {
    match b.get(at..at + 2) {
        Some([x, y]) if x.is_ascii_digit() && y.is_ascii_digit() => {
            Ok(u32::from(x - b'0') * 10 + u32::from(y - b'0'))
        }
        _ => Err((at, format!("expected the {what} as two digits"))),
    }
}

fn expect_byte(b: &[u8], at: usize, want: u8, what: &str) -> Result<(), TimeError> {
    if b.get(at) == Some(&want) {
        Ok(())
    } else {
        Err((at, format!("expected '{}' {what}", want as char)))
    }
}

fn in_range(v: u32, lo: u32, hi: u32, at: usize, what: &str) -> Result<i64, TimeError> {
    if (lo..=hi).contains(&v) {
        Ok(i64::from(v))
    } else {
        Err((
            at,
            format!("the {what} must be {lo:02}-{hi:02}, not {v:02}"),
        ))
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date, counting eras of 400 years
/// (146 097 days) and years that start in March, so the leap day ends the year.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM[:SS[.fraction]]`
/// and an offset (`Z`, `+02:00`; none means UTC). Milliseconds since the epoch.
pub(crate) fn absolute(s: &str) -> Result<i64, TimeError> {
    let b = s.as_bytes();
    let year_digits = b.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if year_digits < 4 {
        return Err((0, "expected the year as four digits".to_string()));
    }
    let year = i64::from(two_digits(b, 0, "year")? * 100 + two_digits(b, 2, "year")?);
    expect_byte(b, 4, b'-', "after the year")?;
    let month = two_digits(b, 5, "month")?;
    in_range(month, 1, 12, 5, "month")?;
    expect_byte(b, 7, b'-', "after the month")?;
    let day = two_digits(b, 8, "day")?;
    in_range(day, 1, days_in_month(year, month), 8, "day")?;
    let date_ms = days_from_civil(year, month, day) * DAY;
    if b.len() == 10 {
        return Ok(date_ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err((10, "expected 'T' between the date and the time".to_string()));
    }
    let hour = in_range(two_digits(b, 11, "hour")?, 0, 23, 11, "hour")?;
    expect_byte(b, 13, b':', "after the hour")?;
    let minute = in_range(two_digits(b, 14, "minute")?, 0, 59, 14, "minute")?;
    let mut at = 16;
    let mut ms = date_ms + hour * HOUR + minute * MINUTE;
    if b.get(at) == Some(&b':') {
        ms += in_range(two_digits(b, at + 1, "second")?, 0, 59, at + 1, "second")? * SECOND;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || digits > 9 {
                return Err((at + 1, "expected 1 to 9 digits of fraction".to_string()));
            }
            let mut frac_ms = 0;
            for (i, d) in b[at + 1..at + 1 + digits.min(3)].iter().enumerate() {
                frac_ms += i64::from(d - b'0') * [100, 10, 1][i];
            }
            ms += frac_ms;
            at += 1 + digits;
        }
    }
    match b.get(at) {
        None => Ok(ms),
        Some(b'Z' | b'z') if at + 1 == b.len() => Ok(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = in_range(
                two_digits(b, at + 1, "offset hours")?,
                0,
                23,
                at + 1,
                "offset hours",
            )?;
            expect_byte(b, at + 3, b':', "in the offset (+02:00)")?;
            let om = in_range(
                two_digits(b, at + 4, "offset minutes")?,
                0,
                59,
                at + 4,
                "offset minutes",
            )?;
            if at + 6 != b.len() {
                return Err((
                    at + 6,
                    "unexpected text after the time's offset".to_string(),
                ));
            }
            let offset = oh * HOUR + om * MINUTE;
            Ok(if sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        Some(_) => Err((
            at,
            "expected the end of the time, 'Z' or an offset like +02:00".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2023, 8, 15), 19_584);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1600, 2, 29), -135_081);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
    }

    #[test]
    fn civil_days_are_consecutive() {
        let mut expected = days_from_civil(1899, 12, 31);
        for year in 1900..=2100 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    expected += 1;
                    assert_eq!(
                        days_from_civil(year, month, day),
                        expected,
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
    }

    #[test]
    fn absolute_times() {
        assert_eq!(absolute("2023-08-15"), Ok(1_692_057_600_000));
        assert_eq!(absolute("2023-08-15T10:00:00Z"), Ok(1_692_093_600_000));
        assert_eq!(absolute("2023-08-15t10:00z"), Ok(1_692_093_600_000));
        assert_eq!(absolute("2023-08-15 12:00:00+02:00"), Ok(1_692_093_600_000));
        assert_eq!(absolute("2023-08-15T10:00:00.25Z"), Ok(1_692_093_600_250));
        assert_eq!(
            absolute("2023-08-15T10:00:00.123456789-00:30"),
            Ok(1_692_095_400_123)
        );
        assert_eq!(absolute("2024-02-29"), Ok(1_709_164_800_000));
        assert!(absolute("2023-02-29").is_err());
        assert_eq!(absolute("2023-13-01").map_err(|e| e.0), Err(5));
        assert_eq!(absolute("2023-08-15T24:00").map_err(|e| e.0), Err(11));
        assert_eq!(absolute("2023-08-15T10:00:00Zx").map_err(|e| e.0), Err(19));
    }

    #[test]
    fn relative_bounds_and_durations() {
        assert_eq!(bound("now"), Ok(TimeBound::Relative(0)));
        assert_eq!(bound("-24h"), Ok(TimeBound::Relative(-86_400_000)));
        assert_eq!(bound("+15m"), Ok(TimeBound::Relative(900_000)));
        assert_eq!(bound("-0s"), Ok(TimeBound::Relative(0)));
        assert!(bound("24h").is_err_and(|e| e.1.contains("needs a sign")));
        assert_eq!(duration("90s"), Ok(90_000));
        assert_eq!(duration("1d"), Ok(86_400_000));
        assert!(duration("0h").is_err());
        assert!(duration("99999999999999999d").is_err());
        assert_eq!(duration("5x").map_err(|e| e.0), Err(1));
    }
}
