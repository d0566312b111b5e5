//! The session's data: string keys to JSON values, decoded only as far as a request needs.
//!
//! Most requests read a session and never change it. So opening a cookie keeps the decrypted
//! buffer as it is and only checks its framing (lengths, UTF-8 keys, strict key order, no trailing
//! bytes); [`Data::get`] then finds a key by walking the few entries in place. An unchanged
//! session costs no allocation per entry, and re-sealing it copies the entries verbatim.
//!
//! The first write copies the entries, still in their encoding, into a buffer of their own and
//! edits them there: an insert or a removal splices one entry in or out, in key order, so the
//! buffer stays exactly what sealing writes. (Until 2026-11 the first write built a map with a
//! `String` and a boxed value per entry: two allocations per entry, about 4,500 instructions
//! of a 25,000-instruction write request for the five-entry sample session.)
//!
//! `Data` records only *where* the sealed entries are; the bytes belong to whoever decoded the
//! cookie (a [`Claims`](crate::Claims) value, or the session state the middleware decodes the
//! cookie straight into) and are passed back in as `buf`. The same `buf` must be passed to every
//! call; the ranges were checked against it once, in [`Data::parse`].

use std::cmp::Ordering;
use std::ops::Range;

use crate::clear_bytes::ClearBytes;
use crate::wire::{put_varint, varint_array, varint_len, DecodeError, Reader};

/// `count` entries, each `len(key) || key || len(value) || value` (LEB128 lengths), in strictly
/// increasing key order, with UTF-8 keys.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) enum Data {
    /// Entries still where they were decoded: in `buf[entries]`, their framing checked by
    /// [`Data::parse`].
    Sealed { entries: Range<usize>, count: usize },
    /// Entries changed since (or never sealed): the same encoding, in a buffer of their own,
    /// zeroized when dropped or moved by growth (the session's data in clear).
    Owned { entries: ClearBytes, count: usize },
}

impl Default for Data {
    fn default() -> Self {
        Data::Owned {
            entries: ClearBytes::default(),
            count: 0,
        }
    }
}

/// The length-prefixed bytes at the start of `encoded`, and what follows them: the walk of
/// [`Data::get`], on every read, with the one-byte lengths of nearly every key and value
/// handled inline (the framing was checked when parsed).
#[inline]
fn split_bytes(encoded: &[u8]) -> Option<(&[u8], &[u8])> {
    match encoded {
        [len @ 0..=0x7f, rest @ ..] => rest.split_at_checked(usize::from(*len)),
        _ => {
            let mut r = Reader(encoded);
            let bytes = r.bytes().ok()?;
            Some((bytes, r.0))
        }
    }
}

/// Where an entry is, or would go, in the encoded entries.
struct Place {
    /// Its first byte (or where it would be inserted).
    at: usize,
    /// One past its last byte, if the key is there.
    end: Option<usize>,
}

impl Data {
    /// Checks the entries that start at `at` in `buf` (with their count) and end at `end`.
    pub(crate) fn parse(buf: &[u8], at: usize, end: usize) -> Result<Self, DecodeError> {
        let slice = buf.get(at..end).ok_or(DecodeError::Truncated)?;
        let mut r = Reader(slice);
        let count = r.varint()?;
        let first = end - r.0.len();
        let mut last: Option<&str> = None;
        let mut seen = 0usize;
        while seen as u64 != count {
            let key = r.str()?;
            r.bytes()?;
            if last.is_some_and(|last| last >= key) {
                return Err(DecodeError::UnsortedKeys);
            }
            last = Some(key);
            seen += 1;
        }
        if !r.0.is_empty() {
            return Err(DecodeError::TrailingBytes(r.0.len()));
        }
        Ok(Data::Sealed {
            entries: first..end,
            count: seen,
        })
    }

    /// The encoded entries and their count.
    fn entries<'a>(&'a self, buf: &'a [u8]) -> (&'a [u8], usize) {
        match self {
            Data::Sealed { entries, count } => {
                (buf.get(entries.clone()).unwrap_or_default(), *count)
            }
            Data::Owned { entries, count } => (entries.as_slice(), *count),
        }
    }

    pub(crate) fn get<'a>(&'a self, buf: &'a [u8], key: &str) -> Option<&'a [u8]> {
        let (mut rest, count) = self.entries(buf);
        let key = key.as_bytes();
        // Keys are UTF-8 and sorted (checked when parsed, or written so), so compare bytes, and
        // stop at a key whose first byte is past the sought key's: every key after it is past
        // it too. Comparing lengths first spares most entries a call to `memcmp`.
        for _ in 0..count {
            let k;
            let v;
            (k, rest) = split_bytes(rest)?;
            (v, rest) = split_bytes(rest)?;
            if k.len() == key.len() && k == key {
                return Some(v);
            }
            if k.first() > key.first() {
                return None;
            }
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Sealed { count, .. } | Data::Owned { count, .. } => *count,
        }
    }

    pub(crate) fn iter<'a>(&'a self, buf: &'a [u8]) -> Iter<'a> {
        let (entries, count) = self.entries(buf);
        Iter {
            reader: Reader(entries),
            left: count,
        }
    }

    /// Sets `key` to `value` (JSON), replacing any value it had.
    ///
    /// The first change copies the sealed entries once, around the new one, into a buffer of
    /// the final size; later ones move the entries after it in place, and only when its length
    /// changed. (`Vec::splice` with the entry's bytes as an iterator, copying the entries first
    /// and then splicing, cost ~500 instructions of a write request.)
    pub(crate) fn insert(&mut self, buf: &[u8], key: &str, value: &[u8]) {
        let place = self.place(buf, key);
        let (key_len, k) = varint_array(key.len() as u64);
        let (value_len, v) = varint_array(value.len() as u64);
        let parts = [
            key_len.get(..k).unwrap_or_default(),
            key.as_bytes(),
            value_len.get(..v).unwrap_or_default(),
            value,
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let (at, end) = (place.at, place.end.unwrap_or(place.at));
        let added = usize::from(place.end.is_none());
        match self {
            Data::Sealed { entries, count } => {
                let old = buf.get(entries.clone()).unwrap_or_default();
                let (before, after) = (
                    old.get(..at).unwrap_or_default(),
                    old.get(end..).unwrap_or_default(),
                );
                let mut out = Vec::with_capacity(before.len() + len + after.len());
                out.extend_from_slice(before);
                for part in parts {
                    out.extend_from_slice(part);
                }
                out.extend_from_slice(after);
                *self = Data::Owned {
                    entries: ClearBytes::new(out),
                    count: *count + added,
                };
            }
            Data::Owned { entries, count } => {
                let total = entries.len();
                let old_len = end - at;
                if len > old_len {
                    entries.grow_to(total + (len - old_len));
                    entries.copy_within(end..total, at + len);
                } else if len < old_len {
                    entries.copy_within(end..total, at + len);
                    entries.truncate(total - (old_len - len));
                }
                let mut to = at;
                for part in parts {
                    if let Some(slot) = entries.get_mut(to..to + part.len()) {
                        slot.copy_from_slice(part);
                    }
                    to += part.len();
                }
                *count += added;
            }
        }
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn remove(&mut self, buf: &[u8], key: &str) -> bool {
        let place = self.place(buf, key);
        let Some(end) = place.end else {
            return false;
        };
        let (entries, count) = self.owned(buf);
        entries.drain(place.at..end);
        *count -= 1;
        true
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        *self = Data::default();
    }

    /// Where `key`'s entry is, or would go.
    fn place(&self, buf: &[u8], key: &str) -> Place {
        let (entries, count) = self.entries(buf);
        let mut rest = entries;
        let offset = |rest: &[u8]| entries.len() - rest.len();
        for _ in 0..count {
            let at = offset(rest);
            let Some((k, after_key)) = split_bytes(rest) else {
                break;
            };
            let Some((_, after_value)) = split_bytes(after_key) else {
                break;
            };
            rest = after_value;
            // Keys nearly always differ in their first byte: compare that before calling
            // `memcmp` (the same order: byte-wise lexicographic).
            let order = match (k.first(), key.as_bytes().first()) {
                (Some(a), Some(b)) if a != b => a.cmp(b),
                _ => k.cmp(key.as_bytes()),
            };
            match order {
                Ordering::Less => {}
                Ordering::Equal => {
                    return Place {
                        at,
                        end: Some(offset(rest)),
                    }
                }
                Ordering::Greater => return Place { at, end: None },
            }
        }
        Place {
            at: offset(rest),
            end: None,
        }
    }

    /// The entries in a buffer of their own, copied there from `buf` on the first change.
    fn owned(&mut self, buf: &[u8]) -> (&mut Vec<u8>, &mut usize) {
        if let Data::Sealed { entries, count } = self {
            *self = Data::Owned {
                entries: ClearBytes::new(buf.get(entries.clone()).unwrap_or_default().to_vec()),
                count: *count,
            };
        }
        match self {
            Data::Owned { entries, count } => (&mut **entries, count),
            Data::Sealed { .. } => unreachable!("made owned just above"),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        let (len, count) = match self {
            Data::Sealed { entries, count } => (entries.len(), *count),
            Data::Owned { entries, count } => (entries.len(), *count),
        };
        varint_len(count as u64) + len
    }

    /// Appends the canonical encoding to `out`, and returns the same entries as they read from
    /// `out` there: what [`Self::parse`] of that encoding returns.
    pub(crate) fn encode_into(&self, buf: &[u8], out: &mut Vec<u8>) -> Data {
        let (entries, count) = self.entries(buf);
        put_varint(out, count as u64);
        let first = out.len();
        out.extend_from_slice(entries);
        Data::Sealed {
            entries: first..out.len(),
            count,
        }
    }
}

/// The entries in key order.
pub(crate) struct Iter<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The framing was checked by `Data::parse` or written by `Data::insert`; an error here
        // would mean a bug, and ending the walk is the safe reading of it.
        let key = self.reader.str().ok()?;
        let value = self.reader.bytes().ok()?;
        Some((key, value))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// `data`'s canonical encoding, parsed back: the entries in the sealed form.
    fn sealed(data: &Data, buf: &[u8]) -> (Data, Vec<u8>) {
        let mut out = Vec::new();
        data.encode_into(buf, &mut out);
        let parsed = Data::parse(&out, 0, out.len()).expect("our own encoding parses");
        (parsed, out)
    }

    fn check(data: &Data, buf: &[u8], model: &BTreeMap<String, Vec<u8>>) {
        let entries: Vec<_> = data
            .iter(buf)
            .map(|(k, v)| (k.to_owned(), v.to_vec()))
            .collect();
        let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(entries, expected);
        assert_eq!(data.len(), model.len());
        for (k, v) in model {
            assert_eq!(data.get(buf, k), Some(v.as_slice()));
        }
        let mut out = Vec::new();
        let as_read = data.encode_into(buf, &mut out);
        assert_eq!(out.len(), data.encoded_len());
        let (parsed, reencoded) = sealed(data, buf);
        assert_eq!(reencoded, out, "one encoding per content");
        assert_eq!(as_read, parsed);
    }

    #[test]
    fn edits_splice_entries_in_key_order() {
        let mut d = Data::default();
        for (k, v) in [("m", "1"), ("a", "2"), ("z", "3"), ("m", "\"long value\"")] {
            d.insert(&[], k, v.as_bytes());
        }
        let model: BTreeMap<_, _> = [("a", "2"), ("m", "\"long value\""), ("z", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
            .collect();
        check(&d, &[], &model);
        assert_eq!(d.get(&[], "b"), None);

        // Edits on sealed entries leave the buffer they came from alone.
        let (mut s, buf) = sealed(&d, &[]);
        let before = buf.clone();
        assert!(s.remove(&buf, "m"));
        assert!(!s.remove(&buf, "m"));
        assert!(matches!(s, Data::Owned { .. }));
        assert_eq!(buf, before);
        let mut model = model;
        model.remove("m");
        check(&s, &buf, &model);
        s.clear();
        check(&s, &buf, &BTreeMap::new());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, Vec<u8>),
        Remove(String),
        Clear,
        Reseal,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = "[a-e]{0,3}";
        prop_oneof![
            6 => (key, proptest::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(k, v)| Op::Insert(k, v)),
            3 => key.prop_map(Op::Remove),
            1 => Just(Op::Clear),
            2 => Just(Op::Reseal),
        ]
    }

    proptest! {
        /// Any sequence of edits, on owned or on sealed entries, reads and encodes as the same
        /// edits on an ordered map would.
        #[test]
        fn prop_edits_match_an_ordered_map(ops in proptest::collection::vec(op(), 0..40)) {
            let mut model = BTreeMap::new();
            let mut data = Data::default();
            let mut buf = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        data.insert(&buf, &k, &v);
                        model.insert(k, v);
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(data.remove(&buf, &k), model.remove(&k).is_some());
                    }
                    Op::Clear => {
                        data.clear();
                        model.clear();
                    }
                    Op::Reseal => (data, buf) = sealed(&data, &buf),
                }
                check(&data, &buf, &model);
            }
        }
    }
}
