//! The small binary vocabulary of the claims encoding: LEB128 varints and length-prefixed bytes.
//!
//! Decoding is strict so that every value has exactly one encoding: a varint may not carry
//! trailing zero groups or overflow 64 bits, and reads past the end are errors, never panics.
//!
//! [`DecodeError`] lives here, at the bottom of the encoding's layers, because every layer
//! that decodes returns it: this reader, the data entries (`data.rs`), the claims' fixed fields
//! (`claims/core.rs`) and the envelope (`seal.rs`). Public as `sealed_sessions::DecodeError`.

/// Why bytes are not a valid claims encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("claims end in the middle of a field")]
    Truncated,
    /// A varint is longer than ten bytes or does not fit in 64 bits.
    #[error("claims contain an invalid varint")]
    BadVarint,
    /// The flags byte has bits that this version does not define.
    #[error("claims flags {0:#04x} have unknown bits")]
    UnknownFlags(u8),
    /// A user id or data key is not UTF-8.
    #[error("claims contain a string that is not UTF-8")]
    NotUtf8,
    /// Data keys are not in strictly ascending order (duplicate or unsorted).
    #[error("claims data keys are duplicated or out of order")]
    UnsortedKeys,
    /// Bytes remain after the last entry.
    #[error("{0} bytes follow the end of the claims")]
    TrailingBytes(usize),
}

pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    // Byte by byte: a varint is a few bytes, for which `extend_from_slice` (a `memcpy` call)
    // cost more than the bytes. (No `reserve`: callers size their buffers exactly.) The same
    // loop as `varint_array`'s, written out: building the array and pushing it cost ~300 more
    // instructions per write (callgrind, hotpath `write`).
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `v` as a varint: ten bytes of room, and how many of them it takes.
pub(crate) fn varint_array(mut v: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    (bytes, n + 1)
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError::Truncated)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        // Lengths under 128 (nearly all of them) are one byte.
        if let [b @ 0..=0x7f, rest @ ..] = self.0 {
            self.0 = rest;
            return Ok(u64::from(*b));
        }
        self.long_varint()
    }

    fn long_varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may carry only the top bit; a trailing zero byte is overlong.
            if (shift == 63 && bits > 1) || (shift > 0 && b == 0) {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_reject_overlong_and_overflowing_forms() {
        let read = |b: &[u8]| Reader(b).varint();
        assert_eq!(read(&[0x00]), Ok(0));
        assert_eq!(read(&[0x7f]), Ok(127));
        assert_eq!(read(&[0x80, 0x01]), Ok(128));
        assert_eq!(read(&[0x80, 0x00]), Err(DecodeError::BadVarint));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(read(&max), Ok(u64::MAX));
        *max.last_mut().unwrap() = 0x02;
        assert_eq!(read(&max), Err(DecodeError::BadVarint));
        assert_eq!(read(&[0xff; 11]), Err(DecodeError::BadVarint));
        assert_eq!(read(&[0x80]), Err(DecodeError::Truncated));
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(read(&out), Ok(v));
        }
    }
}
