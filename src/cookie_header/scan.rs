//! Finding the cookies of our name in one `Cookie` header, without parsing the others.
//!
//! The `cookie` crate's `Cookie::split_parse` parses every cookie of a header to hand back the
//! few we want, and cost about 40 % of a signed-in request. This scan searches the header's
//! bytes for our name with `memchr`'s SIMD substring finder and parses only around the matches.
//! It reads what `split_parse` reads (a property test below holds it to that, with the `cookie`
//! crate as the oracle), which for a header `H`, lossily decoded as UTF-8, is:
//!
//! - `H` split on every `;` (no quoting: `a="x;y"` is two pieces);
//! - in each piece, the text before its first `=` is the name and the text after it the value,
//!   each trimmed of Unicode White_Space (`str::trim`: ASCII `\t \n \x0b \x0c \r` and space,
//!   U+0085, U+00A0, U+1680, U+2000 to U+200A, U+2028, U+2029, U+202F, U+205F, U+3000);
//! - a piece without `=`, or whose name is empty, is no cookie; nothing is percent-decoded,
//!   and quotes are part of the value;
//!
//! with one exception: **a name is trimmed of ASCII whitespace only.** A browser trims only
//! spaces and tabs from a cookie's name (RFC 6265bis, section 5.6) and applies the `__Host-`
//! and `__Secure-` rules to what is left, so it holds `\u{2000}__Host-session` as an ordinary
//! cookie, which a sibling subdomain may set for the whole site; trimmed of U+2000 it would
//! read as ours, and the attacker's own valid session would be planted past the prefix
//! (PortSwigger, "Cookie Chaos", 2025). Such a cookie is not ours. Values are trimmed as the
//! crate trims them: what a value holds is its setter's choice anyway.
//!
//! Working on bytes, the scan decodes nothing but the values it returns: `;`, `=`, our name
//! (a token, so ASCII) and whitespace characters are whole code points wherever they appear,
//! because lossy decoding replaces only ill-formed sequences, which never swallow an ASCII
//! byte or a lead byte. A value that is not UTF-8 is decoded lossily on its own, which gives
//! the same text as decoding the whole header.
//!
//! Work is linear in the header: each match is looked at once, the whitespace before and after
//! a name is not shared between matches (a name holds no whitespace), and after one of our
//! cookies the search goes on after its value.

use std::ops::Range;

use memchr::memmem::Finder;

/// Bytes of the Unicode White_Space character that `bytes` starts with, if it does.
fn space_at_start(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ', ..] => Some(1),
        [0xc2, 0x85 | 0xa0, ..] => Some(2),
        [0xe1, 0x9a, 0x80, ..]
        | [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..]
        | [0xe2, 0x81, 0x9f, ..]
        | [0xe3, 0x80, 0x80, ..] => Some(3),
        _ => None,
    }
}

/// Bytes of the Unicode White_Space character that `bytes` ends with, if it does.
fn space_at_end(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [.., b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '] => Some(1),
        [.., 0xc2, 0x85 | 0xa0] => Some(2),
        [.., 0xe1, 0x9a, 0x80]
        | [.., 0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf]
        | [.., 0xe2, 0x81, 0x9f]
        | [.., 0xe3, 0x80, 0x80] => Some(3),
        _ => None,
    }
}

/// Whether `b` is ASCII whitespace to `str::trim` (`u8::is_ascii_whitespace` and `\x0b`).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// `range` of `bytes` without the whitespace it starts with (`str::trim_start`).
fn trim_start(bytes: &[u8], mut range: Range<usize>) -> Range<usize> {
    while let Some(n) = bytes.get(range.clone()).and_then(space_at_start) {
        range.start += n;
    }
    range
}

/// `range` of `bytes` without the whitespace it ends with (`str::trim_end`).
fn trim_end(bytes: &[u8], mut range: Range<usize>) -> Range<usize> {
    while let Some(n) = bytes.get(range.clone()).and_then(space_at_end) {
        range.end -= n;
    }
    range
}

/// The cookies of one name in one header, in order: the chunk index (0 for the name itself,
/// `k` for `name.k`, see `chunks::chunk_index`) and the byte range of the value.
pub(super) struct Scan<'a> {
    header: &'a [u8],
    finder: &'a Finder<'a>,
    /// Where the search goes on.
    from: usize,
}

impl<'a> Scan<'a> {
    /// The cookies named by `finder`'s needle, a cookie name (a token: ASCII, no whitespace,
    /// `;` or `=`), in `header`.
    pub(super) fn new(header: &'a [u8], finder: &'a Finder<'a>) -> Self {
        Scan {
            header,
            finder,
            from: 0,
        }
    }

    /// Whether the match of our name at `at` is one of our cookies: its chunk index and the
    /// range of its value.
    fn cookie_at(&self, at: usize) -> Option<(usize, Range<usize>)> {
        let h = self.header;
        // The name must start its piece: only (ASCII) whitespace back to a `;` or the start.
        let before = h.get(..at)?.iter().rposition(|&b| !is_ascii_space(b));
        if before.is_some_and(|i| h.get(i) != Some(&b';')) {
            return None;
        }
        let mut end = at + self.finder.needle().len();
        let index = match h.get(end..) {
            Some([b'.', digit @ b'1'..=b'7', ..]) => {
                end += 2;
                (digit - b'0') as usize
            }
            _ => 0,
        };
        // Then only (ASCII) whitespace up to the piece's first `=`.
        let eq = end + h.get(end..)?.iter().position(|&b| !is_ascii_space(b))?;
        if h.get(eq) != Some(&b'=') {
            return None;
        }
        let value_end = memchr::memchr(b';', h.get(eq + 1..)?).map_or(h.len(), |n| eq + 1 + n);
        let value = trim_end(h, trim_start(h, eq + 1..value_end));
        Some((index, value))
    }
}

impl Iterator for Scan<'_> {
    type Item = (usize, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let at = self.from + self.finder.find(self.header.get(self.from..)?)?;
            match self.cookie_at(at) {
                Some((index, value)) => {
                    // The next cookie starts after this one's `;`, which the value precedes
                    // (the `;` itself cannot start a name).
                    self.from = value.end;
                    return Some((index, value));
                }
                // No cookie of our name starts inside this match: its bytes are a name's, so
                // none of them is whitespace or a `;`, which must come before one of ours.
                None => self.from = at + self.finder.needle().len(),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cookie_header::chunks::chunk_index;
    use cookie::Cookie;
    use proptest::prelude::*;

    #[test]
    fn whitespace_is_what_str_trim_trims() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            let expected = c.is_whitespace().then_some(bytes.len());
            assert_eq!(space_at_start(bytes), expected, "{c:?}");
            assert_eq!(space_at_end(bytes), expected, "{c:?}");
            let padded = [b"x", bytes, b"x"].concat();
            assert_eq!(space_at_start(&padded[1..]).is_some(), c.is_whitespace());
            assert_eq!(
                space_at_end(&padded[..padded.len() - 1]).is_some(),
                c.is_whitespace()
            );
        }
    }

    fn scan(header: &[u8], name: &str) -> Vec<(usize, String)> {
        let finder = Finder::new(name);
        Scan::new(header, &finder)
            .map(|(k, v)| (k, String::from_utf8_lossy(&header[v]).into_owned()))
            .collect()
    }

    #[test]
    fn finds_only_cookies_of_the_name() {
        let h = b"xs=1; s2=2; s=3;s.1=4 ; \t s.7 =\xc2\xa05\xe3\x80\x80;a=s=6; s.8=7; s.0=8; s=; s";
        assert_eq!(
            scan(h, "s"),
            [
                (0, "3".into()),
                (1, "4".into()),
                (7, "5".into()),
                (0, String::new())
            ]
        );
        assert_eq!(
            scan(b"s.1.1=a; s.1=b", "s.1"),
            [(1, "a".into()), (0, "b".into())]
        );
        assert_eq!(scan(b"ss=a; sss=b; s s=c", "ss"), [(0, "a".into())]);
        assert_eq!(scan(b"x=\"s=1;s=2\"", "s"), [(0, "2\"".into())]);
    }

    /// Whether the `cookie` crate found a cookie whose `name` (a slice of `text`) has no more
    /// than ASCII whitespace around it in its piece: the rule in which the scan departs from
    /// the crate (see the module docs).
    pub(in crate::cookie_header) fn named_without_unicode_space(text: &str, name: &str) -> bool {
        let Some(at) = (name.as_ptr() as usize).checked_sub(text.as_ptr() as usize) else {
            return false;
        };
        let (Some(before), Some(after)) = (text.get(..at), text.get(at + name.len()..)) else {
            return false;
        };
        let before = before.rsplit(';').next().unwrap_or_default();
        let after = after.split('=').next().unwrap_or_default();
        before.bytes().chain(after.bytes()).all(is_ascii_space)
    }

    /// What `Cookie::split_parse` makes of `header`, lossily decoded as `find_session_cookies`
    /// did before this scan: the cookies of `name` (but for names it found by trimming
    /// non-ASCII whitespace).
    fn oracle(header: &[u8], name: &str) -> Vec<(usize, String)> {
        let text = String::from_utf8_lossy(header);
        Cookie::split_parse(text.as_ref())
            .flatten()
            .filter(|c| named_without_unicode_space(&text, c.name()))
            .filter_map(|c| Some((chunk_index(c.name(), name)?, c.value().to_owned())))
            .collect()
    }

    #[test]
    fn a_name_behind_unicode_whitespace_is_not_ours() {
        let h = "\u{2000}__Host-s=planted; __Host-s\u{a0}=x; \u{85}__Host-s.1=y; __Host-s=ours";
        assert_eq!(scan(h.as_bytes(), "__Host-s"), [(0, "ours".into())]);
        let crate_reads = Cookie::split_parse(h)
            .flatten()
            .filter(|c| c.name() == "__Host-s");
        assert_eq!(
            crate_reads.count(),
            3,
            "the cookie crate reads all but the chunk as ours"
        );
        assert_eq!(oracle(h.as_bytes(), "__Host-s"), [(0, "ours".into())]);
        let h = b" \t__Host-s \t= \xe3\x80\x80v\xc2\xa0";
        assert_eq!(scan(h, "__Host-s"), [(0, "v".into())], "ASCII is trimmed");
    }

    /// Cookie names as the config builder allows them (`is_valid_name`), biased towards
    /// names that overlap themselves or look like a chunk's.
    pub(in crate::cookie_header) fn names() -> impl Strategy<Value = String> {
        let token: Vec<char> = (b'!'..=b'~')
            .filter(|b| !b"()<>@,;:\\\"/[]?={}".contains(b))
            .map(char::from)
            .collect();
        prop_oneof![
            prop::sample::select(vec!["s", "id", "aa", "aba", "s.1", ".1", "__Host-session"])
                .prop_map(String::from),
            prop::collection::vec(prop::sample::select(token), 1..5)
                .prop_map(|c| c.into_iter().collect()),
        ]
    }

    /// Every character `str::trim` trims, and some it does not.
    const SPACES: &[&str] = &[
        " ", "\t", "\n", "\x0b", "\x0c", "\r", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}",
        "\u{2005}", "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
        "\u{200b}", "\u{feff}", "\u{180e}", "\u{1c}",
    ];

    /// Header bytes made of pieces that matter to a cookie parser around `name`, and any byte.
    pub(in crate::cookie_header) fn header(name: &str) -> impl Strategy<Value = Vec<u8>> {
        let mut pieces: Vec<Vec<u8>> = [";", "; ", "=", "\"", ",", "a", "AQAB", "\u{fffd}", "é"]
            .iter()
            .chain(SPACES)
            .map(|s| s.as_bytes().to_vec())
            .collect();
        for affix in [
            "", ".1", ".7", ".8", ".0", ".", ".1x", "2", "=", "=x", ".3=", " =",
        ] {
            pieces.push(format!("{name}{affix}").into_bytes());
        }
        for affix in ["x", "__Host-", "a=", ". "] {
            pieces.push(format!("{affix}{name}").into_bytes());
        }
        for bytes in [
            &b"\xff"[..],
            b"\xc2",
            b"\xe2\x80",
            b"\xe3\x80",
            b"\xc2\xc2\xa0",
        ] {
            pieces.push(bytes.to_vec());
        }
        let piece = prop_oneof![
            4 => prop::sample::select(pieces),
            1 => any::<u8>().prop_map(|b| vec![b]),
            1 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        #[test]
        fn scan_reads_what_split_parse_reads(
            (name, header) in names().prop_flat_map(|n| (Just(n.clone()), header(&n))),
        ) {
            prop_assert_eq!(scan(&header, &name), oracle(&header, &name));
        }

        #[test]
        fn scan_reads_random_bytes_as_split_parse_does(
            name in names(),
            header in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            prop_assert_eq!(scan(&header, &name), oracle(&header, &name));
        }
    }

    #[test]
    fn long_hostile_headers_read_as_split_parse_does() {
        let name = "aa";
        for header in [
            "a".repeat(1 << 16),
            "aa ".repeat(1 << 14),
            format!("{};aa=1", " ".repeat(1 << 16)),
            ";aa.1 ".repeat(1 << 13),
            "\u{3000}aa\u{3000}=\u{3000}".repeat(1 << 12),
        ] {
            assert_eq!(
                scan(header.as_bytes(), name),
                oracle(header.as_bytes(), name)
            );
        }
    }
}
