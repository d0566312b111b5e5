//! [`CookieBuf`]: where the middleware decodes a session cookie, inside the session's own
//! allocation.
//!
//! Every request through the middleware allocates its session state once (the `Arc` that lets
//! the middleware read the session after the handler). Decoding the cookie into a separate
//! `Vec` cost a second allocation per request; decoding it into a buffer that is part of that
//! state removes it. Cookies that do not fit inline (sessions of more than about 460 bytes of
//! claims) are decoded into a `Vec` as before.
//!
//! The buffer is filled before the state is shared and never changed afterwards, which is what
//! lets the claims keep offsets into it (see `claims/core.rs`).

use base64_simd::{Out, URL_SAFE_NO_PAD};

/// The inline buffer's size. Cookie values of up to 680 characters (envelopes of up to 510
/// bytes) are decoded into it: the decoder needs room for its length estimate, which rounds up
/// to a multiple of three. The ~200-byte sample session's envelope is 232 bytes. The inline
/// bytes are zeroed and copied once per request when the state is built into its `Arc` (~150
/// instructions), which costs less than the allocation and free they replace (see
/// `docs/performance.md`).
pub(crate) const INLINE: usize = 512;

/// A decoded cookie envelope.
// The large inline variant is the point: it is the space inside the session's allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CookieBuf {
    Inline { len: usize, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl CookieBuf {
    pub(crate) fn new() -> Self {
        CookieBuf::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    /// The decoded bytes (empty before a decode, or after a failed one).
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            CookieBuf::Inline { len, bytes } => bytes.get(..*len).unwrap_or_default(),
            CookieBuf::Heap(vec) => vec,
        }
    }

    /// Replaces the contents with a copy of `bytes` (a decoded envelope kept elsewhere).
    pub(crate) fn fill(&mut self, bytes: &[u8]) {
        match self {
            CookieBuf::Inline { len, bytes: inline } if bytes.len() <= INLINE => {
                inline[..bytes.len()].copy_from_slice(bytes);
                *len = bytes.len();
            }
            _ if bytes.len() <= INLINE => {
                *self = CookieBuf::new();
                self.fill(bytes);
            }
            _ => *self = CookieBuf::Heap(bytes.to_vec()),
        }
    }

    /// Decodes the unpadded base64url `value`, replacing what the buffer held; `None` if it is
    /// not canonical base64url.
    pub(crate) fn decode(&mut self, value: &str) -> Option<&mut [u8]> {
        let src = value.as_bytes();
        let inline = URL_SAFE_NO_PAD.estimated_decoded_length(src.len()) <= INLINE;
        match (&*self, inline) {
            (CookieBuf::Heap(_), true) => *self = CookieBuf::new(),
            (CookieBuf::Inline { .. }, false) => *self = CookieBuf::Heap(Vec::new()),
            _ => {}
        }
        match self {
            CookieBuf::Inline { len, bytes } => {
                *len = 0;
                // `decode` panics if the output is too short; the estimate is an upper bound,
                // checked above to fit.
                let decoded = URL_SAFE_NO_PAD.decode(src, Out::from_slice(bytes)).ok()?;
                *len = decoded.len();
                Some(decoded)
            }
            CookieBuf::Heap(vec) => {
                vec.clear();
                *vec = URL_SAFE_NO_PAD.decode_to_vec(src).ok()?;
                Some(vec)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_inline_up_to_the_limit_and_to_the_heap_beyond() {
        for n in [0, 1, 2, 3, 100, INLINE - 1, INLINE, INLINE + 1, 3000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let value = URL_SAFE_NO_PAD.encode_to_string(&bytes);
            let mut buf = CookieBuf::new();
            assert_eq!(buf.decode(&value).map(|d| d.to_vec()), Some(bytes.clone()));
            assert_eq!(buf.as_slice(), bytes, "{n} bytes");
            let inline = matches!(buf, CookieBuf::Inline { .. });
            assert_eq!(
                inline,
                URL_SAFE_NO_PAD.estimated_decoded_length(value.len()) <= INLINE,
                "{n}"
            );
        }
    }

    #[test]
    fn fill_copies_inline_up_to_the_limit_and_to_the_heap_beyond() {
        let mut buf = CookieBuf::new();
        for n in [3000, 0, INLINE, 7, INLINE + 1, 1] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 13) as u8).collect();
            buf.fill(&bytes);
            assert_eq!(buf.as_slice(), bytes, "{n}");
            assert_eq!(matches!(buf, CookieBuf::Inline { .. }), n <= INLINE, "{n}");
        }
    }

    #[test]
    fn junk_is_refused_and_leaves_the_buffer_empty() {
        let mut buf = CookieBuf::new();
        assert!(buf.decode("AAAA").is_some());
        for junk in [
            "A",
            "AA=",
            "A+B/",
            "AB",
            "A B",
            "Zz",
            "\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            let ok = URL_SAFE_NO_PAD.decode_to_vec(junk).is_ok();
            assert_eq!(buf.decode(junk).is_some(), ok, "{junk:?}");
            if !ok {
                assert!(buf.as_slice().is_empty(), "{junk:?}");
            }
        }
        let long = "A".repeat(1000) + "!";
        assert!(buf.decode(&long).is_none());
        assert!(buf.as_slice().is_empty());
    }
}
