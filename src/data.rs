//! The session's data: string keys to JSON values, decoded only as far as a request needs.
//!
//! Most requests read a session and never change it. So opening a cookie keeps the decrypted
//! buffer as it is and only checks its framing (lengths, UTF-8 keys, strict key order, no trailing
//! bytes); [`Data::get`] then finds a key by walking the few entries in place, and only the first
//! write turns the entries into an owned map. An unchanged session costs no allocation per entry,
//! and re-sealing it copies the entries verbatim.
//!
//! `Data` records only *where* the sealed entries are; the bytes belong to whoever decoded the
//! cookie (a [`Claims`](crate::Claims) value, or the session state the middleware decodes the
//! cookie straight into) and are passed back in as `buf`. The same `buf` must be passed to every
//! call; the ranges were checked against it once, in [`Data::parse`].

use std::collections::{btree_map, BTreeMap};
use std::ops::Range;

use crate::claims::DecodeError;
use crate::wire::{put_bytes, put_varint, varint_len, Reader};

#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) enum Data {
    /// Entries still in their encoding: `buf[entries]` holds `count` entries whose framing has
    /// been checked, so walking them cannot fail.
    Sealed {
        entries: Range<usize>,
        count: usize,
    },
    Owned(BTreeMap<String, Box<[u8]>>),
}

impl Default for Data {
    fn default() -> Self {
        Data::Owned(BTreeMap::new())
    }
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

    pub(crate) fn get<'a>(&'a self, buf: &'a [u8], key: &str) -> Option<&'a [u8]> {
        match self {
            Data::Sealed { entries, count } => {
                // Keys were checked to be UTF-8 and sorted when parsed, so compare bytes and stop
                // at the first key past the one sought.
                let mut r = Reader(buf.get(entries.clone())?);
                for _ in 0..*count {
                    let k = r.bytes().ok()?;
                    let v = r.bytes().ok()?;
                    match k.cmp(key.as_bytes()) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => return Some(v),
                        std::cmp::Ordering::Greater => return None,
                    }
                }
                None
            }
            Data::Owned(map) => map.get(key).map(AsRef::as_ref),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Sealed { count, .. } => *count,
            Data::Owned(map) => map.len(),
        }
    }

    pub(crate) fn iter<'a>(&'a self, buf: &'a [u8]) -> Iter<'a> {
        match self {
            Data::Sealed { entries, count } => Iter::Sealed {
                reader: Reader(buf.get(entries.clone()).unwrap_or_default()),
                left: *count,
            },
            Data::Owned(map) => Iter::Owned(map.iter()),
        }
    }

    /// The owned map, made from the sealed entries on first use.
    pub(crate) fn to_mut(&mut self, buf: &[u8]) -> &mut BTreeMap<String, Box<[u8]>> {
        if let Data::Sealed { .. } = self {
            let map = self
                .iter(buf)
                .map(|(k, v)| (k.to_owned(), v.into()))
                .collect();
            *self = Data::Owned(map);
        }
        match self {
            Data::Owned(map) => map,
            Data::Sealed { .. } => unreachable!("converted just above"),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            Data::Sealed { entries, count, .. } => varint_len(*count as u64) + entries.len(),
            Data::Owned(map) => {
                varint_len(map.len() as u64)
                    + map
                        .iter()
                        .map(|(k, v)| {
                            varint_len(k.len() as u64)
                                + k.len()
                                + varint_len(v.len() as u64)
                                + v.len()
                        })
                        .sum::<usize>()
            }
        }
    }

    /// Appends the canonical encoding to `out`, and returns the same entries as they read from
    /// `out` there: what [`Self::parse`] of that encoding returns.
    pub(crate) fn encode_into(&self, buf: &[u8], out: &mut Vec<u8>) -> Data {
        let count = self.len();
        put_varint(out, count as u64);
        let first = out.len();
        match self {
            Data::Sealed { entries, .. } => {
                out.extend_from_slice(buf.get(entries.clone()).unwrap_or_default());
            }
            Data::Owned(map) => {
                for (k, v) in map {
                    put_bytes(out, k.as_bytes());
                    put_bytes(out, v);
                }
            }
        }
        Data::Sealed {
            entries: first..out.len(),
            count,
        }
    }
}

/// The entries in key order, whichever form they are in.
pub(crate) enum Iter<'a> {
    Sealed { reader: Reader<'a>, left: usize },
    Owned(btree_map::Iter<'a, String, Box<[u8]>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sealed { reader, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // `Data::parse` checked this framing; an error here would mean a bug, and ending
                // the walk is the safe reading of it.
                let key = reader.str().ok()?;
                let value = reader.bytes().ok()?;
                Some((key, value))
            }
            Iter::Owned(it) => it.next().map(|(k, v)| (k.as_str(), v.as_ref())),
        }
    }
}
