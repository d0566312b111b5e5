//! How the tool prints: aligned tables and times for people, JSON for scripts; neither passes
//! a control character to the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `text` with every C0 control (U+0000 to U+001F), DEL (U+007F) and C1 control (U+0080 to
/// U+009F) written as Rust writes it, `\u{1b}` (hexadecimal), and `\` as `\\`, so that a
/// string an application recorded (a user agent, a user id, a data key) cannot move the cursor,
/// clear the screen or retitle the operator's terminal, and every escape reads back one way.
/// C1 matters too: a terminal may take U+009B for CSI, as it takes `ESC [`.
pub fn escape(text: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() || c == '\\';
    if !text.contains(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            // `is_control` is exactly C0, DEL and C1 (Unicode's Cc).
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of JSON in which DEL and the C1 controls are escaped too (`\u009b`):
/// serde_json escapes only what JSON requires (C0), and JSON is often read on a terminal.
pub fn json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    // Outside strings JSON is ASCII, so every such character is inside a string, where an
    // escape means the same character.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-12-02 01:55:03 UTC (5 min ago)`: absolute in UTC, and relative to `now`.
pub fn when(t: SystemTime, now: SystemTime) -> String {
    format!("{} ({})", utc(t, ' '), relative(t, now))
}

/// `2026-12-02T01:55:03Z`, for JSON.
pub fn rfc3339(t: SystemTime) -> String {
    utc(t, 'T').replace(" UTC", "Z")
}

fn utc(t: SystemTime, sep: char) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02} UTC")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `5 min ago`, `in 3 h`, `just now`.
pub fn relative(t: SystemTime, now: SystemTime) -> String {
    let (span, past) = match now.duration_since(t) {
        Ok(ago) => (ago, true),
        Err(ahead) => (ahead.duration(), false),
    };
    if span < Duration::from_secs(5) {
        return "just now".into();
    }
    let text = rough(span);
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

fn rough(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// A size in bytes for people: `4.2 MB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints `rows` under `header` (none if every title is empty) with each column as wide as its
/// widest cell, each cell [escaped](escape).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    if header.iter().any(|title| !title.is_empty()) {
        line(header.to_vec());
    }
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates_and_rough_spans() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_176_503); // 2026-12-02 01:55:03 UTC
        assert_eq!(utc(t, ' '), "2026-12-02 01:55:03 UTC");
        assert_eq!(rfc3339(t), "2026-12-02T01:55:03Z");
        assert_eq!(utc(UNIX_EPOCH, ' '), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400), ' '),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(relative(t, t + Duration::from_secs(300)), "5 min ago");
        assert_eq!(relative(t + Duration::from_secs(3 * 3600), t), "in 3 h");
        assert_eq!(relative(t, t), "just now");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(4_200_000), "4.2 MB");
    }

    #[test]
    fn controls_are_escaped_and_read_back_one_way() {
        assert_eq!(escape("Firefox/128 (X11)"), "Firefox/128 (X11)");
        assert_eq!(
            escape("a\x1b[2J\u{9b}31m\x7f\t\\u{1b}é"),
            "a\\u{1b}[2J\\u{9b}31m\\u{7f}\\u{9}\\\\u{1b}é"
        );
        let value = serde_json::json!({ "ua": "a\x1b\u{9b}\x7f\u{a0}" });
        // U+00A0 (no-break space) is no control: it stays.
        assert_eq!(json(&value), "{\"ua\":\"a\\u001b\\u009b\\u007f\u{a0}\"}");
        let back: serde_json::Value = serde_json::from_str(&json(&value)).unwrap();
        assert_eq!(back, value);
    }
}
