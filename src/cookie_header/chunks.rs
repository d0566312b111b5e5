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
//! first cookie malformed. A chunk longer than a browser keeps is not ours and is not read; at
//! most [`MAX_CHUNK_COOKIES`] chunk cookies are read per request (more make the examination
//! incomplete, so no removal cookie is sent for a refused session; see `load.rs`). A first
//! cookie is tried with the copies of each chunk nearest to it ([`Chunks::plan`]): at most
//! [`MAX_COPIES`] per name, combined in at most `1 + MAX_ALTERNATIVES` ways, linear in the
//! chunks rather than the `MAX_COPIES ^ 7` every combination would make; combinations left out
//! make the examination incomplete too. A reassembled value longer than the sealer accepts is
//! refused before it is built, and every one that is built counts against `load.rs`'s budgets
//! (values offered, and opened). Duplicates come from the same names set for another path or
//! a parent domain, by the site itself or by a sibling subdomain that plants them: the
//! browser's own chunks follow its first cookie, so the nearest set is tried first, and every
//! first cookie gets that one attempt before any gets a second (`load.rs`).
//!
//! Worst case per request: one extra pass over the `Cookie` headers, 256 chunk records (three
//! words each), for each of at most 32 first cookies a walk over them and at most
//! `1 + MAX_ALTERNATIVES` values built, within the 32 values `load.rs` offers in all.

use std::fmt::Write;

use http::{HeaderMap, HeaderValue};

use super::{find_session_cookies, CookieSettings, Finder, Flow, Found};
use crate::seal::MAX_COOKIE_LEN;

/// The most cookies one session is split over, and read from.
pub(crate) const MAX_CHUNKS: usize = 8;

/// The most copies of one chunk name (set for other paths or domains) a first cookie's
/// combinations draw from: the nearest to it (see [`Chunks::plan`]).
pub(crate) const MAX_COPIES: usize = 3;

/// The most combinations tried for one first cookie besides its nearest set.
pub(crate) const MAX_ALTERNATIVES: usize = 4;

/// The most chunk cookies read from one request: more than a browser keeps for one site
/// (Chromium and Firefox keep 180), so every chunk a browser can send is read.
pub(crate) const MAX_CHUNK_COOKIES: usize = 256;

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
/// `Cookie` headers once a first cookie says the value is split. Values are borrowed from the
/// headers, not copied.
#[derive(Debug, Default)]
pub(crate) struct Chunks<'h> {
    /// Every chunk cookie (up to [`MAX_CHUNK_COOKIES`]) in order: its place among the cookies
    /// of our names (first cookies included), its `k`, and its value.
    cookies: Vec<(usize, usize, &'h [u8])>,
    /// Bit `k` set: the request had a cookie named `NAME.k`.
    pub(crate) present: u8,
    /// Some chunk cookies were not kept (beyond [`MAX_CHUNK_COOKIES`]).
    pub(crate) overflow: bool,
}

impl<'h> Chunks<'h> {
    pub(crate) fn collect(headers: &'h HeaderMap, finder: &Finder<'_>) -> Self {
        let mut chunks = Chunks::default();
        // Counted as `load.rs` counts, so that a first cookie's place means the same in both.
        let mut at = 0;
        find_session_cookies(headers, finder, |found| {
            if let Found::Chunk(k, value) = found {
                chunks.present |= 1 << k;
                if value.len() > MAX_COOKIE_LEN {
                    // Longer than a browser keeps: not ours.
                } else if chunks.cookies.len() == MAX_CHUNK_COOKIES {
                    chunks.overflow = true;
                } else {
                    chunks.cookies.push((at, k, value));
                }
            }
            at += 1;
            Flow::Next
        });
        chunks
    }

    /// The combinations to try for a first cookie at place `at` among the cookies of our names,
    /// holding `first` and announcing `count` cookies; `None` when a chunk is missing.
    ///
    /// For each chunk name, the copies nearest to the first cookie are drawn from: those after
    /// it in order, then those before it, nearest first. A browser sends a cookie's chunks
    /// after it (same path, and set with it or later), and cookies of longer paths or older
    /// ones before it, so the nearest set is the browser's own unless a cookie was planted at
    /// the same path between the first cookie's creation and its chunks'.
    pub(crate) fn plan(&self, at: usize, first: &'h [u8], count: usize) -> Option<Plan<'h>> {
        let parts = count.checked_sub(1).filter(|&p| p < MAX_CHUNKS)?;
        let mut plan = Plan {
            first,
            parts,
            copies: [[&[][..]; MAX_COPIES]; MAX_CHUNKS - 1],
            lens: [0; MAX_CHUNKS - 1],
            choices: Vec::new(),
            exhaustive: !self.overflow,
        };
        let after = self.cookies.iter().filter(|c| c.0 > at);
        let before = self.cookies.iter().rev().filter(|c| c.0 < at);
        for &(_, k, value) in after.chain(before) {
            let Some(i) = k.checked_sub(1).filter(|&i| i < parts) else {
                continue;
            };
            if plan.lens[i] == MAX_COPIES {
                plan.exhaustive = false;
            } else {
                plan.copies[i][plan.lens[i]] = value;
                plan.lens[i] += 1;
            }
        }
        if plan.lens[..parts].contains(&0) {
            tracing::debug!("ignoring a split session cookie: a chunk is missing");
            return None;
        }
        plan.choose();
        Some(plan)
    }
}

/// The combinations one first cookie is tried with: see [`Chunks::plan`].
#[derive(Debug)]
pub(crate) struct Plan<'h> {
    first: &'h [u8],
    /// The chunks after the first cookie: `count - 1`.
    parts: usize,
    /// For chunk `k`, at index `k - 1`: its nearest copies, the first `lens[k - 1]` of them.
    copies: [[&'h [u8]; MAX_COPIES]; MAX_CHUNKS - 1],
    lens: [usize; MAX_CHUNKS - 1],
    /// The combinations, in the order they are tried, as the index into `copies` of each chunk.
    choices: Vec<[u8; MAX_CHUNKS - 1]>,
    /// `choices` holds every combination of every copy.
    exhaustive: bool,
}

impl Plan<'_> {
    /// Orders the combinations: the nearest set; then the second nearest of every chunk, the
    /// third (a whole set planted between a first cookie and its own); then the nearest with
    /// one chunk replaced by a farther copy (one planted chunk in the way). Duplicates are left
    /// out, and at most `1 + MAX_ALTERNATIVES` are kept: linear in the chunks, not exponential.
    fn choose(&mut self) {
        let lens = &self.lens[..self.parts];
        let push = |choice: [u8; MAX_CHUNKS - 1], choices: &mut Vec<_>| {
            if !choices.contains(&choice) {
                choices.push(choice);
            }
        };
        let mut choices = Vec::with_capacity(1 + MAX_ALTERNATIVES);
        for layer in 0..MAX_COPIES {
            let mut choice = [0u8; MAX_CHUNKS - 1];
            for (c, len) in choice.iter_mut().zip(lens) {
                *c = layer.min(len - 1) as u8;
            }
            push(choice, &mut choices);
        }
        for (i, &len) in lens.iter().enumerate() {
            for copy in 1..len {
                let mut choice = [0u8; MAX_CHUNKS - 1];
                choice[i] = copy as u8;
                push(choice, &mut choices);
            }
        }
        let all: usize = lens.iter().product();
        if choices.len() < all || choices.len() > 1 + MAX_ALTERNATIVES {
            self.exhaustive = false;
        }
        choices.truncate(1 + MAX_ALTERNATIVES);
        self.choices = choices;
    }

    /// How many combinations are tried: the nearest set and its alternatives.
    pub(crate) fn len(&self) -> usize {
        self.choices.len()
    }

    /// Whether trying all [`Self::len`] combinations tries every one the copies make.
    pub(crate) fn exhaustive(&self) -> bool {
        self.exhaustive
    }

    /// Combination `n` (0: the nearest set) put together, unless it is longer than `max_len`
    /// (checked before it is built) or `n` is past the last.
    pub(crate) fn build(&self, n: usize, max_len: usize) -> Option<Vec<u8>> {
        let choice = self.choices.get(n)?;
        let picked = || {
            self.copies[..self.parts]
                .iter()
                .zip(choice)
                .map(|(copies, &c)| copies[usize::from(c)])
        };
        let len = self.first.len() + picked().map(<[u8]>::len).sum::<usize>();
        if len > max_len {
            tracing::debug!("ignoring a split session cookie: too long");
            return None;
        }
        let mut value = Vec::with_capacity(len);
        value.extend_from_slice(self.first);
        picked().for_each(|part| value.extend_from_slice(part));
        Some(value)
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

    /// Every combination the first cookie `first`, at place `at`, is tried with.
    fn combos(text: &str, at: usize, first: &str, count: usize) -> Option<(Vec<String>, bool)> {
        let headers = headers(text);
        let chunks = Chunks::collect(&headers, &Finder::new("s"));
        let plan = chunks.plan(at, first.as_bytes(), count)?;
        let out = (0..plan.len())
            .filter_map(|n| plan.build(n, 100))
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        Some((out, plan.exhaustive()))
    }

    #[test]
    fn chunks_are_reassembled_nearest_first() {
        let (out, all) = combos("s=3.a; s.1=b; s.2=c; s.3=stale", 0, "a", 3).unwrap();
        assert_eq!((out, all), (vec!["abc".to_owned()], true));
        let h = headers("s=3.a; s.1=b; s.3=x");
        assert_eq!(Chunks::collect(&h, &Finder::new("s")).present, 0b1010);
        // Copies after the first cookie first, then those before it, nearest first; then the
        // second nearest set, then one chunk swapped.
        let text = "s.1=B; s.2=C; s=3.a; s.1=b; s.2=c";
        let (out, all) = combos(text, 2, "a", 3).unwrap();
        assert_eq!(out, ["abc", "aBC", "aBc", "abC"]);
        assert!(all, "two copies of two chunks: every combination");
        let text = "s.1=0; s=2.a; s.1=1; s.1=2; s.1=3; s.1=4";
        let (out, all) = combos(text, 1, "a", 2).unwrap();
        assert_eq!(out, ["a1", "a2", "a3"], "at most MAX_COPIES copies");
        assert!(!all);
        assert!(combos("s.2=c", 0, "a", 3).is_none(), "a missing chunk");
        let long = format!("s=2.a; s.1={}", "b".repeat(100));
        assert_eq!(
            combos(&long, 0, "a", 2).unwrap().0,
            Vec::<String>::new(),
            "too long"
        );
    }

    #[test]
    fn combinations_stay_few_however_many_copies() {
        // Three copies of each of seven chunks make 2,187 combinations: a handful are tried.
        let mut text = vec!["s=8.a".to_owned()];
        for copy in 0..3 {
            text.extend((1..8).map(|k| format!("s.{k}={copy}")));
        }
        let (out, all) = combos(&text.join("; "), 0, "a", 8).unwrap();
        assert_eq!(
            out,
            ["a0000000", "a1111111", "a2222222", "a1000000", "a2000000"]
        );
        assert_eq!(out.len(), 1 + MAX_ALTERNATIVES);
        assert!(!all);
        // More chunk cookies than a browser keeps: the rest are not read.
        let flood = vec!["s.1=x"; MAX_CHUNK_COOKIES + 1].join("; ");
        let h = headers(&flood);
        let c = Chunks::collect(&h, &Finder::new("s"));
        assert!(c.overflow);
        assert_eq!(c.cookies.len(), MAX_CHUNK_COOKIES);
    }
}
