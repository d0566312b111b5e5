//! [`Envelope`]: a cookie value's decoded bytes (the sealed envelope), zeroized when dropped.
//!
//! `Sealer::open_envelope` (`seal/opening.rs`) decodes a value into one and decrypts it in
//! place; the claims then read their user and data from it. The middleware keeps it for the
//! request (`cookie_buf.rs`) and shares it through an `Arc` with the cache of opened values
//! (`opened_cache.rs`), so a cache hit copies nothing.
//!
//! It is a file of its own, below both the envelope (`seal.rs`) and the middleware, because the
//! envelope must know nothing of cookies or HTTP, yet opens into the very buffer the middleware
//! shares: one type, no copy between them.

use base64_simd::URL_SAFE_NO_PAD;

use crate::clear_bytes::wipe;

/// Decoded bytes, zeroized when dropped.
pub(crate) struct Envelope(Vec<u8>);

impl Drop for Envelope {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl Envelope {
    /// Takes over `bytes` (zeroized when dropped from now on).
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Envelope(bytes)
    }

    /// Decodes the unpadded base64url `value`; `None` if it is not canonical base64url.
    pub(crate) fn decode(value: &str) -> Option<Self> {
        URL_SAFE_NO_PAD.decode_to_vec(value).ok().map(Envelope)
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
}
