//! The headers a response gets because of the session: `Vary: Cookie`, and `Cache-Control:
//! no-store` when it sets the cookie.
//!
//! Each has its own grammar. `Vary` is a list of field names in which `*` already says "varies
//! on everything", so `Cookie` need not be added next to it. `Cache-Control` is a list of
//! directives, `name` or `name=argument`, the argument a token or a quoted string that may hold
//! commas (RFC 9111 5.2); `*` is not one of them, and a `no-store` inside an argument
//! (`no-cache="set-cookie, no-store"`) or with one (`no-store="x"`, which 5.2.2.5 does not
//! define) is not the directive. A response that sets a session cookie must not be stored by
//! any cache (a shared one would hand the cookie to the next visitor; `private` would still
//! let the browser's cache replay the response), so unless the handler already said
//! `no-store`, its `Cache-Control` is replaced by `no-store`.

use http::header::{Entry, HeaderValue, CACHE_CONTROL, VARY};
use http::HeaderMap;

/// Adds `Cookie` to `Vary` unless it is there (or `*` is).
pub(super) fn vary_cookie(headers: &mut HeaderMap) {
    match headers.entry(VARY) {
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("Cookie"));
        }
        Entry::Occupied(mut entry) => {
            let listed = entry.iter().any(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(',')
                        .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("cookie"))
                })
            });
            if !listed {
                entry.append(HeaderValue::from_static("Cookie"));
            }
        }
    }
}

/// Makes `Cache-Control` `no-store` unless it already has that directive: a response that
/// sets a session cookie must not be stored by a cache. Replaces what the handler set.
pub(super) fn no_store(headers: &mut HeaderMap) {
    // Through `entry`: one lookup of the name, where a check and an insert took two.
    match headers.entry(CACHE_CONTROL) {
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("no-store"));
        }
        Entry::Occupied(mut entry) => {
            let said = entry
                .iter()
                .any(|v| directives(v.as_bytes()).any(|d| d.eq_ignore_ascii_case(b"no-store")));
            if !said {
                drop(entry.insert(HeaderValue::from_static("no-store")));
            }
        }
    }
}

/// The directives of one `Cache-Control` field value, each as written (name, and `=argument`
/// if it has one) without surrounding whitespace. Commas inside a quoted string (with its
/// `\` escapes) do not end a directive; empty list elements are skipped.
fn directives(field: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = field;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (mut quoted, mut escaped) = (false, false);
        let end = rest
            .iter()
            .position(|&b| {
                if escaped {
                    escaped = false;
                } else if quoted {
                    match b {
                        b'\\' => escaped = true,
                        b'"' => quoted = false,
                        _ => {}
                    }
                } else if b == b'"' {
                    quoted = true;
                } else {
                    return b == b',';
                }
                false
            })
            .unwrap_or(rest.len());
        let directive = rest.get(..end).unwrap_or_default().trim_ascii();
        rest = rest.get(end + 1..).unwrap_or_default();
        if !directive.is_empty() {
            return Some(directive);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_appended_and_no_store_kept() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60"),
        );
        vary_cookie(&mut h);
        no_store(&mut h);
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
        assert_eq!(h[CACHE_CONTROL], "no-store");

        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("cookie, accept"));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        vary_cookie(&mut h);
        no_store(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        assert_eq!(h[CACHE_CONTROL], "no-store, no-cache");

        // `*` is a `Vary` value, not a cache directive.
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("*"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("*"));
        vary_cookie(&mut h);
        no_store(&mut h);
        assert_eq!(h[VARY], "*");
        assert_eq!(h[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn directives_are_split_outside_quoted_strings() {
        let list = |s: &str| -> Vec<String> {
            directives(s.as_bytes())
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect()
        };
        assert_eq!(list(" a, ,b=1 ,"), ["a", "b=1"]);
        assert_eq!(
            list(r#"no-cache="x, no-store", private"#),
            [r#"no-cache="x, no-store""#, "private"]
        );
        assert_eq!(list(r#"a="q\", b", c"#), [r#"a="q\", b""#, "c"]);
        // An unclosed quote runs to the end: nothing after it is a directive.
        assert_eq!(list(r#"a="x, no-store"#), [r#"a="x, no-store"#]);
        assert!(list("").is_empty());
    }
}
