//! A session's browser as a person names it ("Chrome on Linux", "Safari on iPhone"), read from
//! the `User-Agent` the registry stored at sign-in.
//!
//! The parsing is woothee's: its patterns are compiled into the crate (no data file to ship or
//! load at start-up) and one parse takes microseconds. Its names are then put the way a person
//! says them. Windows is named without a version, because every Windows since 10 sends
//! `Windows NT 10.0`, and an iPad that asks for desktop sites reads as a Mac: the page shows
//! the raw string on hover for whoever wants the detail.

use woothee::parser::Parser;

/// Longest raw user agent shown in place of a name, when it names nothing woothee knows.
const RAW_SHOWN: usize = 60;

/// The name for a stored user agent: "Firefox on Windows", the browser or system alone if only
/// one is known, or the start of the raw string if neither is.
pub fn name(user_agent: Option<&str>) -> String {
    let Some(raw) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let parsed = Parser::new().parse(raw);
    let (browser, system) = match &parsed {
        Some(p) if p.category == "crawler" => (known(p.name), None),
        Some(p) => (
            known(p.name).map(browser_name),
            known(p.os).map(system_name),
        ),
        None => (None, None),
    };
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) => shortened(raw),
    }
}

/// woothee's value, unless it is its word for "no idea".
fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then_some(value)
}

fn browser_name(name: &str) -> &str {
    match name {
        "SamsungBrowser" => "Samsung Internet",
        "YaBrowser" => "Yandex Browser",
        "Webview" => "An app's web view",
        other => other,
    }
}

fn system_name(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "Windows Phone OS" => "Windows Phone",
        os if os.starts_with("Windows") => "Windows",
        other => other,
    }
}

fn shortened(raw: &str) -> String {
    match raw.char_indices().nth(RAW_SHOWN) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn everyday_browsers_are_named_as_people_name_them() {
        for (ua, expected) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            // What the browser test's headless Chromium sends.
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/126.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
                "Chrome on iPhone",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.56",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
        ] {
            assert_eq!(name(Some(ua)), expected, "{ua}");
        }
    }

    #[test]
    fn an_unknown_agent_shows_its_start_and_a_missing_one_says_so() {
        assert_eq!(name(Some("Browser-A/1.0")), "Browser-A/1.0");
        let long = "x".repeat(200);
        let shown = name(Some(&long));
        assert_eq!(shown, format!("{}…", "x".repeat(60)));
        // Cut on a character boundary, whatever the bytes.
        let wide = "é".repeat(100);
        assert_eq!(name(Some(&wide)).chars().count(), 61);
        assert_eq!(name(None), "Unknown browser");
        assert_eq!(name(Some("  ")), "Unknown browser");
    }
}
