//! [`JsonBuf`]: where [`Session::insert`](super::Session::insert) serializes a value, on the
//! stack when it is short.
//!
//! Most session values are a number, a flag or a short string, and their JSON is copied into
//! the session's data at once (`data.rs`), so a heap buffer for it (`serde_json::to_vec`
//! allocates 128 bytes) cost an allocation and a free on every write request. Longer values
//! move to the heap. Either way the bytes are zeroized when the buffer is dropped: they are
//! session data in clear.

use std::io;

use zeroize::Zeroize;

use crate::clear_bytes::wipe;

/// JSON this long or shorter stays on the stack.
const INLINE: usize = 128;

/// A write buffer of [`INLINE`] bytes on the stack, then on the heap.
pub(super) struct JsonBuf {
    inline: [u8; INLINE],
    len: usize,
    /// Everything written, once it no longer fits inline (empty until then).
    heap: Vec<u8>,
}

impl JsonBuf {
    pub(super) fn new() -> Self {
        JsonBuf {
            inline: [0; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// What was written.
    pub(super) fn as_slice(&self) -> &[u8] {
        if self.heap.is_empty() {
            self.inline.get(..self.len).unwrap_or_default()
        } else {
            &self.heap
        }
    }
}

impl io::Write for JsonBuf {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.heap.is_empty() {
            if let Some(to) = self.inline.get_mut(self.len..self.len + bytes.len()) {
                to.copy_from_slice(bytes);
                self.len += bytes.len();
                return Ok(bytes.len());
            }
            let so_far = self.inline.get(..self.len).unwrap_or_default();
            self.heap.reserve(2 * (so_far.len() + bytes.len()));
            self.heap.extend_from_slice(so_far);
        }
        self.heap.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for JsonBuf {
    fn drop(&mut self) {
        if let Some(used) = self.inline.get_mut(..self.len) {
            used.zeroize();
        }
        if self.heap.capacity() > 0 {
            wipe(&mut self.heap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_values_serialize_as_to_vec_does() {
        let long = "x\"y".repeat(100);
        for value in [
            serde_json::json!(1),
            serde_json::json!("dark"),
            serde_json::json!(["apple", "pear", "plum", "fig"]),
            serde_json::json!({ "a": long, "b": [1, 2, 3] }),
            serde_json::json!("y".repeat(INLINE - 2)),
            serde_json::json!("y".repeat(INLINE - 1)),
        ] {
            let mut buf = JsonBuf::new();
            serde_json::to_writer(&mut buf, &value).unwrap();
            assert_eq!(buf.as_slice(), serde_json::to_vec(&value).unwrap());
        }
        assert!(JsonBuf::new().as_slice().is_empty());
    }
}
