//! Times given on the command line: RFC 3339 (`2026-12-01T00:00:00Z`, `2026-12-01T09:30:00+01:00`,
//! with or without fractions of a second), parsed strictly so that a typo is an error, never
//! another time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `text` as an RFC 3339 date and time with an offset (`Z` or `+HH:MM`), or why not.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    let bad = |why: &str| {
        format!("{text:?} is not an RFC 3339 time ({why}); write it as 2026-12-01T00:00:00Z")
    };
    // ASCII only, so that every slice below falls on a character boundary.
    if !text.is_ascii() {
        return Err(bad("not ASCII"));
    }
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(bad("too short"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = &text[range];
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().map_err(|_| bad("not a number"))
        } else {
            Err(bad("a digit is missing"))
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad("the date is not YYYY-MM-DD followed by T"));
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad("the time of day is not HH:MM:SS"));
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    // A leap second (:60) is refused: no clock this compares with ever shows one.
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a '.' without digits"));
        }
        for (i, d) in fraction.bytes().take(digits.min(9)).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad("the offset is not Z or +HH:MM"));
            }
            let [h1, h2, m1, m2] = digits.map(|d| i64::from(d - b'0'));
            let (hours, minutes) = (h1 * 10 + h2, m1 * 10 + m2);
            if hours > 23 || minutes > 59 {
                return Err(bad("the offset is not Z or +HH:MM"));
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(bad("the offset is not Z or +HH:MM")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // Checked both ways: a platform's `SystemTime` may not reach a year RFC 3339 allows
    // (Windows' starts in 1601).
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    at.and_then(|at| at.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or_else(|| bad("the time is outside what this system can represent"))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm; the inverse
/// of `output::civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_times_parse_and_typos_do_not() {
        // 2026-12-02 01:55:03 UTC, as `output::rfc3339` prints it.
        assert_eq!(parse_rfc3339("2026-12-02T01:55:03Z"), Ok(at(1_796_176_503)));
        assert_eq!(parse_rfc3339("2026-12-02t01:55:03z"), Ok(at(1_796_176_503)));
        assert_eq!(
            parse_rfc3339("2026-12-02T02:55:03+01:00"),
            Ok(at(1_796_176_503))
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T20:25:03-05:30"),
            Ok(at(1_796_176_503))
        );
        assert_eq!(
            parse_rfc3339("2026-12-02T01:55:03.25Z"),
            Ok(at(1_796_176_503) + Duration::from_millis(250))
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(at(0)));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Ok(at(951_782_400)));
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T00:00:00",
            "2026-12-01 00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-32T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:60Z",
            "2026-12-01T00:00:00.Z",
            "2026-12-01T00:00:00+1:00",
            "2026-12-01T00:00:00+01:60",
            "2026-12-01T00:00:00UTC",
            "2O26-12-01T00:00:00Z",
            "+026-12-01T00:00:00Z",
            "2026-12-01T00:00:00Zjunk",
            "2026-12-01T00:00:00+01:00:00",
            "２026-12-01T00:00:00Z",
        ] {
            let e = parse_rfc3339(bad).expect_err(bad);
            assert!(e.contains("2026-12-01T00:00:00Z"), "{e}");
        }
    }
}
