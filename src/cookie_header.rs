//! Reading our cookie out of `Cookie` request headers, and rendering `Set-Cookie` lines.
//!
//! Our cookies are found, and `Set-Cookie` lines written, by narrower routines than the `cookie`
//! crate's, each held to the crate by a property test (`scan.rs`, `render.rs`). This module
//! decides which cookies are ours and which attributes ours carries. A session too long for one cookie is split over
//! several (`NAME`, `NAME.1`, ...): the scheme and its input rules are in `chunks.rs`.

use std::time::Duration;

#[cfg(test)]
use cookie::Cookie;
use http::header::{HeaderMap, COOKIE};
pub(crate) use memchr::memmem::Finder;

mod chunks;
mod render;
mod scan;

use scan::Scan;

pub(crate) use chunks::{parse_head, Chunks, Head, Layout, Plan};

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only on requests that start on this site.
    Strict,
    /// Also sent on top-level navigations from other sites (following a link). The default: it
    /// blocks cross-site form posts (CSRF) without signing people out when they follow a link.
    #[default]
    Lax,
    /// Sent on every request, including cross-site ones; requires `Secure`.
    None,
}

/// The name and attributes of the session cookie, validated by the config builder.
#[derive(Clone)]
pub(crate) struct CookieSettings {
    pub(crate) name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    /// How a sealed value is split over cookies; set by [`Self::with_size_limit`].
    pub(crate) layout: Layout,
    /// Finds `name` in a `Cookie` header ([`find_session_cookies`]): built once, with the
    /// configuration, as it costs more than a usual header's whole scan.
    pub(crate) finder: Finder<'static>,
}

impl std::fmt::Debug for CookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the finder: its searcher's internals say nothing the name does not.
        f.debug_struct("CookieSettings")
            .field("name", &self.name)
            .field("domain", &self.domain)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl CookieSettings {
    /// These settings, sending at most `max_size` bytes of cookies per request (the sum of
    /// `name=value` and the `; ` between them in the `Cookie` header), with `Set-Cookie` lines
    /// sized for a `Max-Age` up to `longest_max_age`.
    pub(crate) fn with_size_limit(mut self, longest_max_age: Duration, max_size: usize) -> Self {
        let reserve = self.attribute_reserve(longest_max_age);
        self.layout = Layout::new(self.name.len(), reserve, max_size);
        self
    }

    /// The sealer's limit for `name=value` (see `Sealer::with_limit`): the longest value the
    /// layout can send, under our name.
    pub(crate) fn seal_limit(&self) -> usize {
        self.name.len() + 1 + self.layout.max_value_len()
    }
}

/// A cookie of the session's names (see `chunks.rs`), with its value's bytes as sent: a sealed
/// value is ASCII, and the cache of opened values compares bytes, so the usual request never
/// checks the value's UTF-8 (about 230 instructions for a 300-character value).
#[derive(PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// A cookie named `name`: a whole sealed value, or the first of its chunks.
    Head(&'a [u8]),
    /// A cookie named `name.k`, `k` in 1..=7.
    Chunk(usize, &'a [u8]),
}

impl std::fmt::Debug for Found<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Head(v) => f
                .debug_tuple("Head")
                .field(&String::from_utf8_lossy(v))
                .finish(),
            Found::Chunk(k, v) => f
                .debug_tuple("Chunk")
                .field(k)
                .field(&String::from_utf8_lossy(v))
                .finish(),
        }
    }
}

/// What [`find_session_cookies`] does after a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Next,
    /// Go on with chunk cookies only: headers (and the rest of this one) that do not contain
    /// `name` at all are not parsed, so the usual request, whose session cookie is the last
    /// of its name, stops here for the price of a substring search.
    ChunksOnly,
}

/// Calls `f` with every cookie named `name` (the needle of `finder`, for example
/// [`CookieSettings::finder`]) or `name.k` in every `Cookie` header, in order,
/// as `f` says (see [`Flow`]), reading each header as the `cookie` crate's
/// `Cookie::split_parse` does (see `scan.rs`). Values are handed over as bytes, so a byte that
/// is not UTF-8 spoils only the cookie it is in (the `cookie` crate, the oracle, reads such a
/// header lossily, to the same effect); unparsable cookies are skipped.
/// `name` is a cookie name (see [`is_valid_name`]). Never panics.
pub(crate) fn find_session_cookies<'h>(
    headers: &'h HeaderMap,
    finder: &Finder<'_>,
    mut f: impl FnMut(Found<'h>) -> Flow,
) {
    let mut chunks_only = false;
    for header in headers.get_all(COOKIE) {
        let bytes = header.as_bytes();
        for (index, range) in Scan::new(bytes, finder) {
            if index == 0 && chunks_only {
                continue;
            }
            let Some(value) = bytes.get(range) else {
                continue;
            };
            let found = match index {
                0 => Found::Head(value),
                k => Found::Chunk(k, value),
            };
            if f(found) == Flow::ChunksOnly {
                chunks_only = true;
            }
        }
    }
}

/// The implementation [`find_session_cookies`] replaced, through the `cookie` crate: the
/// oracle of its property test (but for names behind non-ASCII whitespace, see `scan.rs`).
#[cfg(test)]
fn find_session_cookies_oracle(
    headers: &HeaderMap,
    name: &str,
    mut f: impl FnMut(Found<'_>) -> Flow,
) {
    use std::borrow::Cow;
    let mut chunks_only = false;
    for header in headers.get_all(COOKIE) {
        let text = match header.to_str() {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(header.as_bytes()),
        };
        let text = text.as_ref();
        if chunks_only && !text.contains(name) {
            continue;
        }
        for cookie in Cookie::split_parse(text).flatten() {
            // The one departure from the crate (see `scan.rs`).
            if !scan::tests::named_without_unicode_space(text, cookie.name()) {
                continue;
            }
            let index = match chunks::chunk_index(cookie.name(), name) {
                Some(0) if chunks_only => continue,
                Some(index) => index,
                None => continue,
            };
            let value = cookie.value();
            let found = match index {
                0 => Found::Head(value.as_bytes()),
                k => Found::Chunk(k, value.as_bytes()),
            };
            if f(found) == Flow::ChunksOnly {
                chunks_only = true;
                // The value lies in `text`; were it ever not to, read on.
                let rest = (value.as_ptr() as usize)
                    .checked_sub(text.as_ptr() as usize)
                    .and_then(|at| text.get(at + value.len()..));
                if rest.is_some_and(|rest| rest.len() <= name.len() || !rest.contains(name)) {
                    break;
                }
            }
        }
    }
}

/// Whether `name` is a valid cookie name: an RFC 9110 token (visible ASCII, no separators).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Whether `s` may appear as a `Domain` or `Path` attribute value: visible ASCII without `;`
/// (which would end the attribute) or `,` (on which a `Set-Cookie` line folded with another,
/// as some proxies and clients do, would be split). Its length is checked on its own
/// ([`MAX_ATTRIBUTE_LEN`]).
pub(crate) fn is_valid_attribute(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

/// The longest `Domain` or `Path` a browser heeds: it ignores a longer one (RFC 6265bis 5.6),
/// so the cookie would get the default scope instead, and its removal would miss it.
pub(crate) const MAX_ATTRIBUTE_LEN: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::strategy::{Just, Strategy};

    fn found(headers: &HeaderMap) -> Vec<String> {
        let mut out = Vec::new();
        find_session_cookies(headers, &Finder::new("id"), |f| {
            if let Found::Head(v) = f {
                out.push(String::from_utf8_lossy(v).into_owned());
            }
            Flow::Next
        });
        out
    }

    #[test]
    fn finds_every_cookie_of_our_name_across_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; id=junk; b=2"));
        h.append(COOKIE, HeaderValue::from_static("id=good"));
        assert_eq!(found(&h), ["junk", "good"]);
        let mut stopped = Vec::new();
        find_session_cookies(&h, &Finder::new("id"), |f| {
            stopped.push(format!("{f:?}"));
            Flow::ChunksOnly
        });
        assert_eq!(stopped, [r#"Head("junk")"#], "no more heads once told");
    }

    #[test]
    fn after_the_session_only_chunks_are_read() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("id=a; x=1; id.1=b; id=c"));
        h.append(COOKIE, HeaderValue::from_static("y=2"));
        h.append(COOKIE, HeaderValue::from_static("id.2=d; id.9=e; idx=f"));
        let mut seen = Vec::new();
        find_session_cookies(&h, &Finder::new("id"), |f| {
            seen.push(format!("{f:?}"));
            Flow::ChunksOnly
        });
        assert_eq!(
            seen,
            [r#"Head("a")"#, r#"Chunk(1, "b")"#, r#"Chunk(2, "d")"#]
        );
        // Nothing of our name after it: stops without parsing on.
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("id=a; other=\"q\""));
        let mut n = 0;
        find_session_cookies(&h, &Finder::new("id"), |_| {
            n += 1;
            Flow::ChunksOnly
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn non_utf8_header_spoils_only_its_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"x=\xff\xfe; id=good; =; ;;").unwrap(),
        );
        assert_eq!(found(&h), ["good"]);
    }

    /// [`find_session_cookies`] or its oracle.
    type Find = fn(&HeaderMap, &str, &mut dyn FnMut(Found<'_>) -> Flow);

    /// What `find` calls its callback with, answering the `i`-th call `ChunksOnly` if
    /// `stop[i % len]`.
    fn calls(find: Find, headers: &HeaderMap, name: &str, stop: &[bool]) -> Vec<String> {
        let mut seen = Vec::new();
        find(headers, name, &mut |found| {
            let flow = match stop.get(seen.len() % stop.len().max(1)) {
                Some(true) => Flow::ChunksOnly,
                _ => Flow::Next,
            };
            seen.push(format!("{found:?}"));
            flow
        });
        seen
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn finds_what_the_cookie_crate_finds(
            (name, values) in scan::tests::names().prop_flat_map(|n| {
                let header = scan::tests::header(&n);
                (Just(n), proptest::collection::vec(header, 0..4))
            }),
            stop in proptest::collection::vec(proptest::bool::ANY, 0..6),
        ) {
            let mut headers = HeaderMap::new();
            for mut bytes in values {
                // What a `HeaderValue` may hold: no controls but tab.
                bytes.retain(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
                headers.append(COOKIE, HeaderValue::from_bytes(&bytes).unwrap());
            }
            proptest::prop_assert_eq!(
                calls(|h, n, f| find_session_cookies(h, &Finder::new(n), f), &headers, &name, &stop),
                calls(|h, n, f| find_session_cookies_oracle(h, n, f), &headers, &name, &stop),
            );
        }
    }

    #[test]
    fn cookie_names_are_tokens() {
        assert!(is_valid_name("__Host-session"));
        for bad in ["", "a b", "a;b", "a=b", "é", "a\"b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
