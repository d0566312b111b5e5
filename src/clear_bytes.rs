//! Bytes in clear that must not outlive their use: [`wipe`], which zeroizes a buffer fast and
//! keeps it, and [`ClearBytes`], a session's changed data, zeroized when dropped or moved.
//!
//! Its own file, below both the session's data (`data.rs`, in every build) and the envelope's
//! bytes (`envelope_bytes.rs`, with the middleware), which both wipe with it.

use zeroize::Zeroize;

/// A session's data in clear, in a buffer of its own (`Data`'s entries once changed): zeroized
/// when dropped, and when growing moves it ([`grow_to`](Self::grow_to)). Dereferences to its
/// `Vec` for reading and editing in place; growing it through the `Vec` instead would leave the
/// old buffer unwiped, so `data.rs` grows it only through `grow_to`.
#[derive(Clone, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct ClearBytes(Vec<u8>);

impl ClearBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        ClearBytes(bytes)
    }

    /// Lengthens to `len` (new bytes zero); the old buffer is zeroized if a new one is needed.
    pub(crate) fn grow_to(&mut self, len: usize) {
        if len > self.0.capacity() {
            let mut moved = Vec::with_capacity(len);
            moved.extend_from_slice(&self.0);
            wipe(&mut self.0);
            self.0 = moved;
        }
        self.0.resize(len, 0);
    }
}

impl Drop for ClearBytes {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl std::ops::Deref for ClearBytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for ClearBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

/// Zeroizes `bytes` (its spare capacity too) and empties it, keeping its buffer.
///
/// Through the `zeroize` crate's routine for slices (a `memset` and an optimization barrier
/// that keeps the compiler from dropping it) rather than its routine for `Vec<u8>`, which
/// zeroizes the bytes one volatile write at a time: some three instructions a byte, ~1,000 of
/// a write request's (the evicted cache entry's envelope and value).
pub(crate) fn wipe(bytes: &mut Vec<u8>) {
    bytes.spare_capacity_mut().zeroize();
    bytes.as_mut_slice().zeroize();
    bytes.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_keeps_the_bytes_and_zero_fills_within_or_beyond_the_capacity() {
        let mut bytes = ClearBytes::new(Vec::with_capacity(8));
        bytes.extend_from_slice(b"abc");
        bytes.grow_to(5); // within the capacity: the same buffer
        assert_eq!(bytes.as_slice(), b"abc\0\0");
        bytes.grow_to(40); // beyond it: moved, the old buffer wiped
        assert_eq!(&bytes[..5], b"abc\0\0");
        assert!(bytes[5..].iter().all(|&b| b == 0));
        assert_eq!(bytes.len(), 40);
        let mut wiped = bytes.to_vec();
        wipe(&mut wiped);
        assert!(wiped.is_empty());
    }
}
