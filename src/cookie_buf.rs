//! [`CookieBuf`]: the decoded cookie envelope a session's claims read their user and data from.
//!
//! A browser sends the same cookie value on every request until its session changes, and the
//! cache of opened values (`opened_cache.rs`) keeps what that value decodes and decrypts to. A
//! request that finds its value there shares the cached envelope ([`CookieBuf::Shared`]): one
//! reference count, however long the session. A value opened afresh is decoded into a buffer
//! of its own, which the cache then shares in turn.
//!
//! (Until 2026-12 the state of every request held a 512-byte inline buffer that a cache hit
//! copied the envelope into: the buffer was zeroed and moved into the state's allocation on
//! every request, cookie or not, and the copy came on top; ~360 instructions of a stateless
//! read. Sharing costs one atomic increment and decrement.)
//!
//! The bytes never change once decoded, which is what lets the claims keep offsets into them
//! (see `claims/core.rs`). Both kinds are zeroized when the last holder drops them: they are
//! the session's data in clear. The bytes are an `Envelope` (`envelope_bytes.rs`): the envelope
//! (`seal.rs`) opens into that type too, and knows nothing of this one.

use std::sync::Arc;

use crate::envelope_bytes::Envelope;

/// A decoded cookie envelope, or none.
#[derive(Default)]
pub(crate) enum CookieBuf {
    /// Nothing decoded: a new session, or one whose cookie did not open.
    #[default]
    Empty,
    /// Decoded for this request.
    Own(Envelope),
    /// Shared with the cache of opened values and every request carrying the same value.
    Shared(Arc<Envelope>),
}

impl CookieBuf {
    /// The decoded bytes (empty when nothing was decoded).
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            CookieBuf::Empty => &[],
            CookieBuf::Own(envelope) => envelope.as_slice(),
            CookieBuf::Shared(envelope) => envelope.as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64_simd::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn decodes_canonical_base64url_only() {
        for n in [0, 1, 2, 3, 100, 511, 512, 513, 3000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let value = URL_SAFE_NO_PAD.encode_to_string(&bytes);
            let envelope = Envelope::decode(&value).expect("canonical");
            assert_eq!(envelope.as_slice(), bytes, "{n} bytes");
            assert_eq!(CookieBuf::Own(envelope).as_slice(), bytes);
        }
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
            assert_eq!(Envelope::decode(junk).is_some(), ok, "{junk:?}");
        }
        assert!(Envelope::decode(&("A".repeat(1000) + "!")).is_none());
        assert!(CookieBuf::Empty.as_slice().is_empty());
    }
}
