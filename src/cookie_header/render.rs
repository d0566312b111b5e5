//! Rendering `Set-Cookie` lines.
//!
//! A line is written straight into a `String` of its exact length: going through the `cookie`
//! crate's `Display` (a `Cookie` built, then `write!` piece by piece) cost ~1,600 instructions
//! of a response that sets the cookie. The attributes come in the order that `Display` writes
//! them (`name=value; HttpOnly; SameSite=..; Secure; Path=..; Domain=..; Max-Age=..;
//! Expires=..`): browsers take them in any order (RFC 6265bis, section 5.6), and keeping the
//! crate's makes every line byte for byte what it was. A property test holds the two to that,
//! and the `cookie` crate's parser to reading ours back as the same cookie.
//!
//! What the crate does that we repeat: `Secure` only when set (we always set it to a value,
//! so `SameSite=None` does not add it), one leading `.` of the domain dropped (its `domain()`
//! getter strips it), `Max-Age` as an `i64` of seconds (longer is capped), and a removal's
//! `Max-Age=0` followed by the epoch as `Expires`.

use std::ops::Range;
use std::time::Duration;

use http::HeaderValue;

use super::{CookieSettings, SameSite};

const HTTP_ONLY: &str = "; HttpOnly";
const SECURE: &str = "; Secure";
const PATH: &str = "; Path=";
const DOMAIN: &str = "; Domain=";
const MAX_AGE: &str = "; Max-Age=";
/// What ends a removal line.
const REMOVAL: &str = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

impl SameSite {
    fn attribute(self) -> &'static str {
        match self {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        }
    }
}

/// How a line ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// A browser-session cookie: no `Max-Age`.
    Session,
    /// `Max-Age` of this many seconds.
    MaxAge(u64),
    /// A removal.
    Removal,
}

impl End {
    fn max_age(max_age: Option<Duration>) -> Self {
        // The `cookie` crate keeps `Max-Age` as an `i64` of seconds.
        max_age.map_or(End::Session, |age| {
            End::MaxAge(age.as_secs().min(i64::MAX as u64))
        })
    }
}

/// Digits of `n` in decimal.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

fn push_decimal(line: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    line.extend(digits[at..].iter().copied().map(char::from));
}

impl CookieSettings {
    /// The `Set-Cookie` value for a sealed `value`; `max_age` for a persistent cookie, `None`
    /// for a browser-session cookie. (The middleware seals into the line: [`Self::render_with`].)
    #[cfg(test)]
    pub(crate) fn render(&self, value: &str, max_age: Option<Duration>) -> Option<HeaderValue> {
        self.render_as(&self.name, value, max_age)
    }

    /// [`Self::render`] for a value of `value_len` characters that `write` appends to the line
    /// (the sealer, straight from its encrypted envelope: no copy of the value of its own).
    /// Returns the line and where the value is in it; `None` if the line is not a valid header
    /// value.
    pub(crate) fn render_with(
        &self,
        value_len: usize,
        max_age: Option<Duration>,
        write: impl FnOnce(&mut String),
    ) -> Option<(HeaderValue, Range<usize>)> {
        self.line_with(&self.name, value_len, End::max_age(max_age), write)
    }

    /// [`Self::render`] under the cookie name `name` (a chunk's).
    pub(super) fn render_as(
        &self,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
    ) -> Option<HeaderValue> {
        self.line(name, value, End::max_age(max_age))
    }

    /// The `Set-Cookie` value that makes the browser delete the cookie.
    pub(crate) fn render_removal(&self) -> Option<HeaderValue> {
        self.render_removal_as(&self.name)
    }

    /// [`Self::render_removal`] under the cookie name `name` (a chunk's).
    pub(super) fn render_removal_as(&self, name: &str) -> Option<HeaderValue> {
        self.line(name, "", End::Removal)
    }

    /// Bytes of a rendered `Set-Cookie` line beyond `name=value`, for the longest `Max-Age` we
    /// may send, so that the sealer refuses any cookie whose whole line would not fit.
    pub(crate) fn attribute_reserve(&self, longest_max_age: Duration) -> usize {
        self.attributes_len(End::max_age(Some(longest_max_age)))
    }

    /// The domain as the `cookie` crate writes it.
    fn domain_attribute(&self) -> Option<&str> {
        let domain = self.domain.as_deref()?;
        Some(domain.strip_prefix('.').unwrap_or(domain))
    }

    /// Bytes of a line after `name=value`.
    fn attributes_len(&self, end: End) -> usize {
        let flag = |on: bool, text: &str| if on { text.len() } else { 0 };
        flag(self.http_only, HTTP_ONLY)
            + self.same_site.attribute().len()
            + flag(self.secure, SECURE)
            + PATH.len()
            + self.path.len()
            + self
                .domain_attribute()
                .map_or(0, |d| DOMAIN.len() + d.len())
            + match end {
                End::Session => 0,
                End::MaxAge(secs) => MAX_AGE.len() + decimal_len(secs),
                End::Removal => REMOVAL.len(),
            }
    }

    fn line(&self, name: &str, value: &str, end: End) -> Option<HeaderValue> {
        self.line_with(name, value.len(), end, |line| line.push_str(value))
            .map(|(line, _)| line)
    }

    /// The line for `name` and a value of `value_len` characters that `write` appends, and
    /// where the value is in it.
    fn line_with(
        &self,
        name: &str,
        value_len: usize,
        end: End,
        write: impl FnOnce(&mut String),
    ) -> Option<(HeaderValue, Range<usize>)> {
        let len = name.len() + 1 + value_len + self.attributes_len(end);
        let mut line = String::with_capacity(len);
        line.push_str(name);
        line.push('=');
        let start = line.len();
        write(&mut line);
        let value = start..line.len();
        if self.http_only {
            line.push_str(HTTP_ONLY);
        }
        line.push_str(self.same_site.attribute());
        if self.secure {
            line.push_str(SECURE);
        }
        line.push_str(PATH);
        line.push_str(&self.path);
        if let Some(domain) = self.domain_attribute() {
            line.push_str(DOMAIN);
            line.push_str(domain);
        }
        match end {
            End::Session => {}
            End::MaxAge(secs) => {
                line.push_str(MAX_AGE);
                push_decimal(&mut line, secs);
            }
            End::Removal => line.push_str(REMOVAL),
        }
        // (Against what `write` wrote, which only a bug elsewhere would make differ from
        // `value_len`: the line is then as long as it needs to be, and correct.)
        debug_assert_eq!(
            line.len() - value.len(),
            len - value_len,
            "attributes_len counts what line writes"
        );
        // Checks every byte: the value comes from the sealer, not the config builder.
        HeaderValue::try_from(line).ok().map(|line| (line, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie_header::scan::tests::names;
    use crate::cookie_header::Layout;
    use cookie::{Cookie, Expiration};
    use proptest::prelude::*;

    fn settings() -> CookieSettings {
        CookieSettings {
            name: "id".into(),
            domain: None,
            path: "/".into(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            layout: Layout::default(),
            finder: crate::cookie_header::Finder::new("id"),
        }
    }

    #[test]
    fn renders_secure_defaults_and_removal() {
        let s = settings();
        let line = s.render("v", None).unwrap();
        let line = line.to_str().unwrap();
        assert!(line.starts_with("id=v"), "{line}");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(line.contains(attr), "{line} lacks {attr}");
        }
        assert!(!line.contains("Max-Age"), "{line}");
        let line = s.render("v", Some(Duration::from_secs(60))).unwrap();
        assert!(line.to_str().unwrap().contains("Max-Age=60"));
        let removal = s.render_removal().unwrap();
        let removal = removal.to_str().unwrap();
        assert!(
            removal.starts_with("id=;") && removal.contains("Max-Age=0"),
            "{removal}"
        );
        assert_eq!(
            s.attribute_reserve(Duration::from_secs(60)),
            line.len() - "id=v".len()
        );
    }

    #[test]
    fn decimals_are_written_in_full() {
        for n in [0, 1, 9, 10, 99, 100, 86_400, u64::MAX / 2, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
            assert_eq!(decimal_len(n), s.len());
        }
    }

    /// The line the `cookie` crate renders for the same cookie: the implementation this module
    /// replaced, and the oracle of its property test.
    fn oracle(s: &CookieSettings, name: &str, value: &str, end: End) -> String {
        let same_site = match s.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        };
        let mut c = Cookie::build((name, value))
            .path(s.path.as_str())
            .secure(s.secure)
            .http_only(s.http_only)
            .same_site(same_site);
        if let Some(domain) = &s.domain {
            c = c.domain(domain.as_str());
        }
        let mut c = c.build();
        match end {
            End::Session => {}
            End::MaxAge(secs) => c.set_max_age(cookie::time::Duration::seconds(
                i64::try_from(secs).unwrap_or(i64::MAX),
            )),
            End::Removal => {
                c.set_max_age(cookie::time::Duration::ZERO);
                c.set_expires(Expiration::DateTime(
                    cookie::time::OffsetDateTime::UNIX_EPOCH,
                ));
            }
        }
        c.to_string()
    }

    /// Everything `Set-Cookie` says about a cookie, as the `cookie` crate parses it.
    fn parsed(line: &str) -> impl PartialEq + std::fmt::Debug {
        let c = Cookie::parse(line.to_owned()).unwrap();
        (
            (c.name().to_owned(), c.value().to_owned()),
            (c.path().map(str::to_owned), c.domain().map(str::to_owned)),
            (c.secure(), c.http_only(), c.same_site()),
            (c.max_age(), c.expires()),
        )
    }

    /// `Path` and `Domain` values as `is_valid_attribute` allows them (the builder further
    /// wants a path to start with `/` and a domain not to be empty), often with a leading `.`.
    fn attribute() -> impl Strategy<Value = String> {
        let visible: Vec<char> = (b'!'..=b'~')
            .filter(|&b| b != b';')
            .map(char::from)
            .collect();
        (
            prop::sample::select(vec!["", "/", ".", "..", "/a/"]),
            prop::collection::vec(prop::sample::select(visible), 0..12),
        )
            .prop_map(|(start, rest)| start.chars().chain(rest).collect())
    }

    fn settings_strategy() -> impl Strategy<Value = CookieSettings> {
        (
            names(),
            prop::option::of(attribute()),
            attribute(),
            any::<(bool, bool)>(),
            prop::sample::select(vec![SameSite::Strict, SameSite::Lax, SameSite::None]),
        )
            .prop_map(|(name, domain, path, (secure, http_only), same_site)| {
                let mut s = settings();
                (s.name, s.domain, s.path) = (name, domain, path);
                (s.secure, s.http_only, s.same_site) = (secure, http_only, same_site);
                s
            })
    }

    fn ends() -> impl Strategy<Value = End> {
        prop_oneof![
            Just(End::Session),
            Just(End::Removal),
            (0..100_000u64).prop_map(End::MaxAge),
            any::<u64>().prop_map(End::MaxAge),
            (i64::MAX as u64 - 2..=i64::MAX as u64 + 2).prop_map(End::MaxAge),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn lines_are_the_cookie_crates(
            s in settings_strategy(),
            chunk in prop::option::of(1..8usize),
            // Sealed values: base64url, a chunk count's `.`.
            value in "[A-Za-z0-9_.-]{0,300}",
            end in ends(),
        ) {
            let name = match chunk {
                Some(k) => format!("{}.{k}", s.name),
                None => s.name.clone(),
            };
            let value = if matches!(end, End::Removal) { "" } else { value.as_str() };
            let line = match end {
                End::Session => s.render_as(&name, value, None),
                End::MaxAge(secs) => s.render_as(&name, value, Some(Duration::from_secs(secs))),
                End::Removal => s.render_removal_as(&name),
            };
            let line = line.unwrap();
            let line = line.to_str().unwrap();
            let theirs = oracle(&s, &name, value, end);
            prop_assert_eq!(parsed(line), parsed(&theirs));
            prop_assert_eq!(line, theirs.as_str());
            let c = Cookie::parse(line).unwrap();
            prop_assert_eq!((c.name(), c.value()), (name.as_str(), value));
            if let End::Removal = end {
                prop_assert_eq!(c.max_age(), Some(cookie::time::Duration::ZERO));
                prop_assert_eq!(
                    c.expires_datetime(),
                    Some(cookie::time::OffsetDateTime::UNIX_EPOCH)
                );
            } else if let End::MaxAge(secs) = end {
                let reserve = s.attribute_reserve(Duration::from_secs(secs));
                prop_assert_eq!(line.len(), name.len() + 1 + value.len() + reserve);
            }
        }
    }
}
