//! Chunked session cookies: a sealed value too long for one cookie, sent as several.
//!
//! A browser keeps a cookie only if its name and value take at most 4096 bytes (RFC 6265bis,
//! section 5.6), and drops a longer one silently. A sealed value that does not fit one cookie
//! is therefore split over up to [`MAX_CHUNKS`] cookies, as ASP.NET Core's
//! `ChunkingCookieManager` does:
//!
//! ```text
//! one cookie:  NAME=VALUE
//! n cookies:   NAME=n.PART0   NAME.1=PART1   ...   NAME.(n-1)=PART(n-1)      (2 <= n <= 8)
//!              VALUE = PART0 || PART1 || ... || PART(n-1)
//! ```
//!
//! - `VALUE` is the sealed value (unpadded base64url, the envelope of `seal.rs` unchanged), so
//!   the AEAD tag (or MAC) covers the whole of it: parts of two different seals put together
//!   fail to open, and are treated like any other bad cookie.
//! - The first cookie keeps the plain name and says how many cookies there are. A sealed value
//!   never contains `.` (not a base64url character), so a one-digit count and a `.` as its
//!   first two characters cannot be mistaken for a single cookie, and telling the two apart
//!   costs the usual request one byte comparison. The count makes chunks left over from a
//!   longer session harmless: only `NAME.1` to `NAME.(n-1)` are read.
//! - Chunk names are the full name, prefix included, plus `.k` (`__Host-session.1`), so a
//!   browser applies the same `__Host-`/`__Secure-` rules to every chunk. Every chunk carries
//!   the same attributes (`Path`, `Domain`, `Secure`, `HttpOnly`, `SameSite`, `Max-Age`).
//! - Unlike ASP.NET Core (whose first cookie holds only `chunks-N`, followed by `NAMEC1`...),
//!   the first cookie carries data too: one cookie fewer in every request.
//! - Parts are filled in order, each as long as its `Set-Cookie` line allows: the name, `=`,
//!   the part and the attributes (counted with the longest `Max-Age` the configuration sends)
//!   in at most 4096 bytes, as for a single cookie. The number of cookies is the least that
//!   holds the value; a value that needs more than [`MAX_CHUNKS`], or whose cookies would take
//!   more of the request's `Cookie` header than the configured maximum
//!   (`SessionConfigBuilder::max_cookie_size`), is not sealed: `Session::insert` refuses the
//!   change that would make it so.
//!
//! **Input rules (bounded work, whatever the client sends).** A count outside 2..=8 makes the
//! first cookie malformed. For each chunk name, at most [`MAX_COPIES`] values are kept (more
//! copies make the examination incomplete, so no removal cookie is sent for a refused
//! session; see `load.rs`); a chunk longer than a browser keeps is not ours and is not kept;
//! a reassembled value longer than the sealer accepts is refused before it is built; and every
//! reassembled value that is opened counts against `load.rs`'s `MAX_OPENED`. Duplicates
//! (the same names set for another path or the parent domain) are tried in order: the first
//! copy of every chunk first, then the other combinations, until that budget runs out.

use std::fmt::Write;

use http::{HeaderMap, HeaderValue};

use super::{find_session_cookies, CookieSettings, Finder, Flow, Found};
use crate::seal::MAX_COOKIE_LEN;

/// The most cookies one session is split over, and read from.
pub(crate) const MAX_CHUNKS: usize = 8;

/// The most values kept for one chunk name (copies for other paths or domains).
pub(crate) const MAX_COPIES: usize = 2;

/// What the first cookie of our name holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head<'a> {
    /// A whole sealed value.
    Single(&'a [u8]),
    /// The first part of a value split over `count` cookies.
    Chunked { count: usize, first: &'a [u8] },
    /// A count this version does not write.
    Malformed,
}

/// Reads the first cookie's value.
pub(crate) fn parse_head(value: &[u8]) -> Head<'_> {
    match value {
        [digit, b'.', first @ ..] => match digit.wrapping_sub(b'0') as usize {
            count @ 2..=MAX_CHUNKS => Head::Chunked { count, first },
            _ => Head::Malformed,
        },
        _ => Head::Single(value),
    }
}

/// Which of a value's cookies a cookie name is: 0 for `base` itself, `k` for `base.k`. The rule
/// `scan.rs` applies to the bytes after a match of `base`, stated on names for its oracle.
#[cfg(test)]
pub(crate) fn chunk_index(name: &str, base: &str) -> Option<usize> {
    match name.strip_prefix(base)?.as_bytes() {
        [] => Some(0),
        [b'.', digit @ b'1'..=b'7'] => Some((digit - b'0') as usize),
        _ => None,
    }
}

/// The name of chunk `k` (at least 1) of `base`.
pub(crate) fn chunk_name(base: &str, k: usize) -> String {
    format!("{base}.{k}")
}

/// How values are split for one configuration: sizes only, checked once at build.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Layout {
    /// Bytes of the cookie name.
    name_len: usize,
    /// Bytes of a `Set-Cookie` line beyond `name=value`.
    reserve: usize,
    /// The most bytes the session's cookies may take in a `Cookie` request header.
    budget: usize,
    /// The longest value that lays out; see [`Self::max_value_len`].
    max_value_len: usize,
}

impl Layout {
    pub(crate) fn new(name_len: usize, reserve: usize, budget: usize) -> Self {
        let mut layout = Layout {
            name_len,
            reserve,
            budget,
            max_value_len: 0,
        };
        // `chunks_for` holds for every length up to the largest that lays out, so search.
        let (mut lo, mut hi) = (0, budget);
        if layout.chunks_for(0).is_some() {
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if layout.chunks_for(mid).is_some() {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            layout.max_value_len = lo;
        }
        layout
    }

    /// The longest sealed value the session's cookies can carry.
    pub(crate) fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// How many cookies a value of `len` characters takes, if it may be sent at all.
    pub(crate) fn chunks_for(&self, len: usize) -> Option<usize> {
        // The usual session: one cookie, checked without the sums below.
        if len <= self.part_capacity(0, 1) {
            return (self.name_len + 1 + len <= self.budget).then_some(1);
        }
        let n = (1..=MAX_CHUNKS).find(|&n| self.capacity(n) >= len)?;
        (self.header_len(n, len) <= self.budget).then_some(n)
    }

    /// The bytes `n` cookies holding `len` characters take in a `Cookie` header: `name=part`
    /// each, the count's two characters, and `; ` between cookies.
    pub(crate) fn header_len(&self, n: usize, len: usize) -> usize {
        let names: usize = (0..n).map(|k| self.name_len_of(k) + 1).sum();
        names + len + if n > 1 { 2 + 2 * (n - 1) } else { 0 }
    }

    /// The characters of a value that part `k` of `n` holds at most.
    fn part_capacity(&self, k: usize, n: usize) -> usize {
        let count = if k == 0 && n > 1 { 2 } else { 0 };
        MAX_COOKIE_LEN.saturating_sub(self.reserve + self.name_len_of(k) + 1 + count)
    }

    fn capacity(&self, n: usize) -> usize {
        (0..n).map(|k| self.part_capacity(k, n)).sum()
    }

    fn name_len_of(&self, k: usize) -> usize {
        // One digit: `MAX_CHUNKS` is below 10.
        self.name_len + if k == 0 { 0 } else { 2 }
    }

    /// The `n` parts of `value` (ASCII), in order.
    fn split<'a>(&self, value: &'a str, n: usize) -> impl Iterator<Item = &'a str> + 'a {
        let caps: Vec<usize> = (0..n).map(|k| self.part_capacity(k, n)).collect();
        let mut at = 0;
        caps.into_iter().map(move |cap| {
            let end = (at + cap).min(value.len());
            let part = value.get(at..end).unwrap_or_default();
            at = end;
            part
        })
    }
}

impl CookieSettings {
    /// The `Set-Cookie` values for a sealed `value` split over `n` cookies (`n` from
    /// [`Layout::chunks_for`], at least 2).
    pub(crate) fn render_chunks(
        &self,
        value: &str,
        n: usize,
        max_age: Option<std::time::Duration>,
    ) -> Option<Vec<HeaderValue>> {
        let mut lines = Vec::with_capacity(n);
        for (k, part) in self.layout.split(value, n).enumerate() {
            let line = if k == 0 {
                let mut head = String::with_capacity(2 + part.len());
                write!(head, "{n}.{part}").ok()?;
                self.render_as(&self.name, &head, max_age)?
            } else {
                self.render_as(&chunk_name(&self.name, k), part, max_age)?
            };
            lines.push(line);
        }
        Some(lines)
    }

    /// Removal cookies for every chunk `k >= from` whose bit is set in `present`.
    pub(crate) fn render_chunk_removals(&self, present: u8, from: usize) -> Vec<HeaderValue> {
        (from.max(1)..MAX_CHUNKS)
            .filter(|k| present & (1 << k) != 0)
            .filter_map(|k| self.render_removal_as(&chunk_name(&self.name, k)))
            .collect()
    }
}

/// The chunk cookies (`NAME.1` to `NAME.7`) of one request, gathered in one pass over its
/// `Cookie` headers once a first cookie says the value is split.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    /// Up to [`MAX_COPIES`] values of each chunk name, in order; index `k - 1` for `NAME.k`.
    copies: [Vec<Vec<u8>>; MAX_CHUNKS - 1],
    /// Bit `k` set: the request had a cookie named `NAME.k`.
    pub(crate) present: u8,
    /// Some copies were not kept (beyond [`MAX_COPIES`]).
    pub(crate) overflow: bool,
}

impl Chunks {
    pub(crate) fn collect(headers: &HeaderMap, finder: &Finder<'_>) -> Self {
        let mut chunks = Chunks::default();
        find_session_cookies(headers, finder, |found| {
            if let Found::Chunk(k, value) = found {
                chunks.present |= 1 << k;
                let copies = &mut chunks.copies[k - 1];
                if copies.iter().any(|c| c == value) {
                    // An identical copy adds no combination worth building.
                } else if copies.len() == MAX_COPIES {
                    chunks.overflow = true;
                } else if value.len() <= MAX_COOKIE_LEN {
                    copies.push(value.to_vec());
                }
            }
            Flow::Next
        });
        chunks
    }

    /// Calls `f` with each value `first` and this request's chunks can make for a first
    /// cookie of `count` cookies, first copies first, until `f` returns `true`. Values longer
    /// than `max_len` are skipped without being built; so is everything when a chunk is
    /// missing. At most `MAX_COPIES ^ (count - 1)` combinations.
    pub(crate) fn reassemble(
        &self,
        first: &[u8],
        count: usize,
        max_len: usize,
        mut f: impl FnMut(&[u8]) -> bool,
    ) {
        let Some(parts) = self.copies.get(..count - 1) else {
            return;
        };
        if parts.iter().any(Vec::is_empty) {
            tracing::debug!("ignoring a split session cookie: a chunk is missing");
            return;
        }
        // An odometer over the copies of each chunk.
        let mut choice = [0usize; MAX_CHUNKS - 1];
        loop {
            let picked = || parts.iter().zip(choice).map(|(copies, i)| &copies[i]);
            let len = first.len() + picked().map(Vec::len).sum::<usize>();
            if len <= max_len {
                let mut value = Vec::with_capacity(len);
                value.extend_from_slice(first);
                picked().for_each(|part| value.extend_from_slice(part));
                if f(&value) {
                    return;
                }
            } else {
                tracing::debug!("ignoring a split session cookie: too long");
            }
            let mut k = 0;
            loop {
                let Some(copies) = parts.get(k) else {
                    return;
                };
                choice[k] += 1;
                if choice[k] < copies.len() {
                    break;
                }
                choice[k] = 0;
                k += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::COOKIE;

    #[test]
    fn heads_are_told_from_single_values() {
        assert_eq!(parse_head(b"AQAB"), Head::Single(b"AQAB"));
        assert_eq!(parse_head(b""), Head::Single(b""));
        assert_eq!(
            parse_head(b"3.AQ"),
            Head::Chunked {
                count: 3,
                first: b"AQ"
            }
        );
        for bad in ["1.AQ", "9.AQ", "0.", "..", "x.AQ", "/."] {
            assert_eq!(parse_head(bad.as_bytes()), Head::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn chunk_names_are_the_name_dot_one_digit() {
        assert_eq!(chunk_index("__Host-s", "__Host-s"), Some(0));
        assert_eq!(chunk_index("__Host-s.1", "__Host-s"), Some(1));
        assert_eq!(chunk_index("__Host-s.7", "__Host-s"), Some(7));
        for other in [
            "__Host-s.8",
            "__Host-s.0",
            "__Host-s.01",
            "__Host-sx",
            "s.1",
            "__Host-s.",
        ] {
            assert_eq!(chunk_index(other, "__Host-s"), None, "{other}");
        }
        assert_eq!(chunk_name("n", 3), "n.3");
    }

    #[test]
    fn layout_takes_the_fewest_cookies_and_respects_both_limits() {
        let l = Layout::new(14, 60, 6144);
        let one = MAX_COOKIE_LEN - 60 - 15;
        assert_eq!(l.chunks_for(one), Some(1));
        assert_eq!(l.chunks_for(one + 1), Some(2));
        let max = l.max_value_len();
        assert_eq!(l.chunks_for(max), Some(2));
        assert_eq!(l.chunks_for(max + 1), None);
        assert_eq!(l.header_len(2, max), 6144, "the budget is what binds");
        // Each part's line fits 4096 bytes with the attributes.
        let value = "A".repeat(max);
        let parts: Vec<&str> = l.split(&value, 2).collect();
        assert_eq!(parts.concat(), value);
        assert!(14 + 1 + 2 + parts[0].len() + 60 <= MAX_COOKIE_LEN);
        assert!(16 + 1 + parts[1].len() + 60 <= MAX_COOKIE_LEN);
        // A large budget is bounded by the number of chunks.
        let big = Layout::new(14, 60, 1 << 20);
        assert_eq!(big.chunks_for(big.max_value_len()), Some(MAX_CHUNKS));
        assert!(big.max_value_len() < MAX_CHUNKS * MAX_COOKIE_LEN);
        // A name so long that nothing fits lays out nothing.
        assert_eq!(Layout::new(5000, 60, 6144).max_value_len(), 0);
    }

    fn headers(text: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_str(text).unwrap());
        h
    }

    fn combos(text: &str, first: &str, count: usize) -> (Vec<String>, Chunks) {
        let chunks = Chunks::collect(&headers(text), &Finder::new("s"));
        let mut out = Vec::new();
        chunks.reassemble(first.as_bytes(), count, 100, |v| {
            out.push(String::from_utf8_lossy(v).into_owned());
            false
        });
        (out, chunks)
    }

    #[test]
    fn chunks_are_reassembled_first_copies_first() {
        let (out, c) = combos("s=3.a; s.1=b; s.2=c; s.3=stale", "a", 3);
        assert_eq!(out, ["abc"]);
        assert_eq!(c.present, 0b1110);
        let (out, c) = combos("s.1=b; s.2=c; s.1=B; s.2=C", "a", 3);
        assert_eq!(out, ["abc", "aBc", "abC", "aBC"]);
        assert!(!c.overflow);
        let (_, c) = combos("s.1=b; s.1=B; s.1=x", "a", 2);
        assert!(c.overflow, "a third copy is not kept");
        // Identical copies make no new combination: one value, however many copies.
        let copies = "s.1=b; s.1=b; s.1=b; s.2=c; s.2=c; s.2=c";
        let (out, c) = combos(copies, "a", 3);
        assert_eq!(out, ["abc"]);
        assert!(!c.overflow);
        assert!(combos("s.2=c", "a", 3).0.is_empty(), "a missing chunk");
        let long = format!("s.1={}", "b".repeat(100));
        assert!(combos(&long, "a", 2).0.is_empty(), "too long: never built");
        let mut stopped = Vec::new();
        Chunks::collect(&headers("s.1=b; s.1=B"), &Finder::new("s")).reassemble(
            b"a",
            2,
            100,
            |v| {
                stopped.push(String::from_utf8_lossy(v).into_owned());
                true
            },
        );
        assert_eq!(stopped, ["ab"], "stops when told to");
    }
}
