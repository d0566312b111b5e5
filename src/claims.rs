//! What a cookie seals: the session's id, owner, times, and data.
//!
//! # Encoding (envelope version 1)
//!
//! A compact, canonical binary form; integers are unsigned LEB128 varints, strings are a varint
//! byte length followed by UTF-8:
//!
//! ```text
//! id             16 bytes
//! flags          1 byte: bit 0 = has user, bit 1 = persistent; other bits must be 0
//! user           string, only when bit 0 is set
//! issued_at      varint, Unix seconds
//! auth_time      varint, Unix seconds (0 when no user)
//! expires_at     varint, Unix seconds: the absolute end of the session
//! idle_deadline  varint, Unix seconds: the end unless activity pushes it back
//! entries        varint count, then per entry: key (string), value (varint length + JSON text)
//! ```
//!
//! Entries are in strictly ascending key order and nothing may follow the last one, so every
//! claims value has exactly one encoding; unknown flags, duplicate or unsorted keys, overlong
//! varints and trailing bytes are all [`DecodeError`]s.
//!
//! # Why this encoding
//!
//! Values are kept as the JSON text `serde_json` wrote for them and are parsed only when a handler
//! asks for them, so opening a cookie parses a few length prefixes instead of a JSON document, and
//! a value read back as the wrong type is a clear `serde_json` error rather than silently
//! misread bytes (which a non-self-describing format such as postcard would allow). The fixed
//! fields are binary because they are always present and always read.
//!
//! Measured with `cargo bench --bench seal -- claims` on the ~200-byte sample session of
//! `benches/seal.rs` (a user, five data entries including a cart), same run:
//!
//! | encoding                                         | bytes | encode | decode |
//! |--------------------------------------------------|-------|--------|--------|
//! | this one: binary frame, JSON values read lazily  | 186   | 1.0x   | 1.0x   |
//! | one JSON document (`serde_json`, values as `Value`) | 358 | 3.6x   | 8.0x   |
//! | CBOR (`ciborium`, values as `serde_json::Value`) | 252   | 3.9x   | 14.8x  |
//!
//! (1.0x was 187 ns to encode and 260 ns to decode from a borrowed slice, which includes copying
//! it; opening a cookie decodes in place. Machine shared with builds, so read the ratios only.)
//!
//! Times are whole seconds: cookie lifetimes are minutes to weeks, and a second-granular varint
//! is five bytes where nanoseconds would take nine.

use std::fmt;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::data::Data;
use crate::wire::{put_bytes, put_varint, varint_len, Reader};
use crate::SessionId;

const FLAG_USER: u8 = 0b01;
const FLAG_PERSISTENT: u8 = 0b10;

/// The sealed contents of a session cookie.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::Claims;
///
/// let now = SystemTime::now();
/// let mut claims = Claims::new(now, Duration::from_secs(3600), Duration::from_secs(900));
/// claims.insert("cart", &vec!["apple", "pear"])?;
/// assert_eq!(claims.get::<Vec<String>>("cart")?, Some(vec!["apple".into(), "pear".into()]));
///
/// // Round trip through the binary form that the cookie seals.
/// let again = Claims::from_bytes(&claims.to_bytes())?;
/// assert_eq!(again, claims);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Claims {
    id: SessionId,
    user: Option<String>,
    issued_at: u64,
    auth_time: u64,
    expires_at: u64,
    idle_deadline: u64,
    persistent: bool,
    data: Data,
}

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

impl Claims {
    /// A new anonymous session with a fresh random id, ending `lifetime` from `now` at the latest
    /// and after `idle` without activity.
    pub fn new(now: SystemTime, lifetime: Duration, idle: Duration) -> Self {
        let now = unix(now);
        Claims {
            id: SessionId::generate(),
            user: None,
            issued_at: now,
            auth_time: 0,
            expires_at: now.saturating_add(lifetime.as_secs()),
            idle_deadline: now.saturating_add(idle.as_secs()),
            persistent: false,
            data: Data::default(),
        }
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// When this session id was issued.
    pub fn issued_at(&self) -> SystemTime {
        time(self.issued_at)
    }

    /// When the user authenticated (log-in time), if there is a user.
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.user.as_ref().map(|_| time(self.auth_time))
    }

    /// The absolute end of the session, whatever the activity.
    pub fn expires_at(&self) -> SystemTime {
        time(self.expires_at)
    }

    /// The end of the session unless activity moves it later (never past [`Self::expires_at`]).
    pub fn idle_deadline(&self) -> SystemTime {
        time(self.idle_deadline)
    }

    /// Whether the cookie should outlive the browser session ("remember me").
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Whether the session is over at `now`: past its absolute expiry or its idle deadline.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        let now = unix(now);
        now >= self.expires_at || now >= self.idle_deadline
    }

    /// Starts a new session id for the same data, issued at `now`, with the lifetime and idle
    /// timeout counted afresh: what a login does (fixation defence and a full session).
    pub fn renew(&mut self, now: SystemTime, lifetime: Duration, idle: Duration) {
        self.renew_id(now);
        let now = unix(now);
        self.expires_at = now.saturating_add(lifetime.as_secs());
        self.idle_deadline = now.saturating_add(idle.as_secs());
    }

    /// Starts a new session id for the same data, issued at `now`, keeping the absolute expiry
    /// and idle deadline: for privilege changes within a session, which must not extend it.
    pub fn renew_id(&mut self, now: SystemTime) {
        self.id = SessionId::generate();
        self.issued_at = unix(now);
    }

    /// Binds the session to `user`, authenticated at `now`. Callers renew the id first.
    pub fn set_user(&mut self, user: impl Into<String>, now: SystemTime) {
        self.user = Some(user.into());
        self.auth_time = unix(now);
    }

    /// Removes the user binding.
    pub fn clear_user(&mut self) {
        self.user = None;
        self.auth_time = 0;
    }

    /// Chooses a persistent ("remember me") or browser-session cookie.
    pub fn set_persistent(&mut self, persistent: bool) {
        self.persistent = persistent;
    }

    /// Moves the idle deadline to `idle` after `now`, capped at the absolute expiry.
    pub fn touch(&mut self, now: SystemTime, idle: Duration) {
        self.idle_deadline = unix(now)
            .saturating_add(idle.as_secs())
            .min(self.expires_at);
    }

    /// The value under `key`, deserialized as `T`; `Ok(None)` when there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.data.get(key).map(serde_json::from_slice).transpose()
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        self.insert_json(key.into(), serde_json::to_vec(value)?);
        Ok(())
    }

    /// Stores JSON text that `serde_json` wrote, as [`Self::insert`] would.
    pub(crate) fn insert_json(&mut self, key: String, json: Vec<u8>) {
        self.data.to_mut().insert(key, json.into_boxed_slice());
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.data.get(key).is_some() && self.data.to_mut().remove(key).is_some()
    }

    /// Removes all data (the id, user and times stay).
    pub fn clear(&mut self) {
        if self.data.len() > 0 {
            self.data.to_mut().clear();
        }
    }

    /// The data keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.iter().map(|(k, _)| k)
    }

    /// The number of data entries.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        self.data.len() == 0
    }

    /// The canonical binary encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The exact length of [`Self::to_bytes`], without encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        let str_len = |s: &[u8]| varint_len(s.len() as u64) + s.len();
        SessionId::LEN
            + 1
            + self.user.as_deref().map_or(0, |u| str_len(u.as_bytes()))
            + varint_len(self.issued_at)
            + varint_len(self.auth_time)
            + varint_len(self.expires_at)
            + varint_len(self.idle_deadline)
            + self.data.encoded_len()
    }

    /// Appends the canonical encoding to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        let mut flags = 0;
        if self.user.is_some() {
            flags |= FLAG_USER;
        }
        if self.persistent {
            flags |= FLAG_PERSISTENT;
        }
        out.push(flags);
        if let Some(user) = &self.user {
            put_bytes(out, user.as_bytes());
        }
        for t in [
            self.issued_at,
            self.auth_time,
            self.expires_at,
            self.idle_deadline,
        ] {
            put_varint(out, t);
        }
        self.data.encode_into(out);
    }

    /// Decodes the canonical encoding; anything else is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes.to_vec(), 0..bytes.len())
    }

    /// Decodes `buf[range]`, keeping `buf` to read the data entries from in place.
    pub(crate) fn decode(buf: Vec<u8>, range: Range<usize>) -> Result<Self, DecodeError> {
        let input = buf.get(range.clone()).ok_or(DecodeError::Truncated)?;
        let mut r = Reader(input);
        let id = SessionId::from_bytes(r.array()?);
        let flags = r.byte()?;
        if flags & !(FLAG_USER | FLAG_PERSISTENT) != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let user = if flags & FLAG_USER != 0 {
            Some(r.str()?.to_owned())
        } else {
            None
        };
        let issued_at = r.varint()?;
        let auth_time = r.varint()?;
        let expires_at = r.varint()?;
        let idle_deadline = r.varint()?;
        let data_at = range.end - r.0.len();
        Ok(Claims {
            id,
            user,
            issued_at,
            auth_time,
            expires_at,
            idle_deadline,
            persistent: flags & FLAG_PERSISTENT != 0,
            data: Data::parse(buf, data_at, range.end)?,
        })
    }
}

impl fmt::Debug for Claims {
    /// Shows ids, times and data keys; never the data values, which may hold secrets such as
    /// CSRF tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("issued_at", &self.issued_at)
            .field("auth_time", &self.auth_time)
            .field("expires_at", &self.expires_at)
            .field("idle_deadline", &self.idle_deadline)
            .field("persistent", &self.persistent)
            .field("data_keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Unix seconds; times before 1970 count as 0.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn time(secs: u64) -> SystemTime {
    // Far-future values (only a hostile or buggy peer writes them) saturate instead of panicking.
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Claims {
        let mut c = Claims::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            Duration::from_secs(3600),
            Duration::from_secs(900),
        );
        c.set_user("alice", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        c.insert("cart", &["apple", "pear"]).unwrap();
        c.insert("n", &7u32).unwrap();
        c
    }

    #[test]
    fn round_trip_and_exact_length() {
        let c = sample();
        let bytes = c.to_bytes();
        assert_eq!(bytes.len(), c.encoded_len());
        assert_eq!(Claims::from_bytes(&bytes).unwrap(), c);
        assert_eq!(c.get::<u32>("n").unwrap(), Some(7));
        assert!(c.get::<String>("n").is_err(), "wrong type is an error");
        assert_eq!(c.get::<u32>("missing").unwrap(), None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(Claims::from_bytes(&bytes[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn non_canonical_inputs_are_refused() {
        let good = sample().to_bytes();
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            Claims::from_bytes(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );

        let mut flags = good.clone();
        flags[16] |= 0b100;
        assert_eq!(
            Claims::from_bytes(&flags),
            Err(DecodeError::UnknownFlags(0b101))
        );

        // Swap the order of two keys by hand: "cart" then "n" becomes "n" then "cart".
        let mut c = Claims::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
        c.insert("b", &1).unwrap();
        let mut unsorted = c.to_bytes();
        let count_at = unsorted.len() - 5; // count, len("b"), "b", len("1"), "1"
        assert_eq!(unsorted[count_at], 1);
        unsorted[count_at] = 2;
        unsorted.extend_from_slice(&[1, b'a', 1, b'2']);
        assert_eq!(
            Claims::from_bytes(&unsorted),
            Err(DecodeError::UnsortedKeys)
        );
        let dup_at = unsorted.len() - 3;
        unsorted[dup_at] = b'b';
        assert_eq!(
            Claims::from_bytes(&unsorted),
            Err(DecodeError::UnsortedKeys)
        );
    }

    #[test]
    fn expiry_and_touch() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut c = Claims::new(t0, Duration::from_secs(100), Duration::from_secs(30));
        assert!(!c.is_expired(t0 + Duration::from_secs(29)));
        assert!(c.is_expired(t0 + Duration::from_secs(30)));
        c.touch(t0 + Duration::from_secs(20), Duration::from_secs(30));
        assert!(!c.is_expired(t0 + Duration::from_secs(49)));
        c.touch(t0 + Duration::from_secs(90), Duration::from_secs(30));
        assert_eq!(
            c.idle_deadline(),
            c.expires_at(),
            "capped at the absolute expiry"
        );
        assert!(c.is_expired(t0 + Duration::from_secs(100)));
    }

    #[test]
    fn debug_hides_values() {
        let mut c = sample();
        c.insert("csrf", "s3cr3t-token").unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("csrf") && !text.contains("s3cr3t"), "{text}");
    }

    prop_compose! {
        fn arb_claims()(
            user in proptest::option::of(".{0,40}"),
            times in proptest::array::uniform4(any::<u64>()),
            persistent in any::<bool>(),
            data in proptest::collection::btree_map(".{0,20}", any::<(i64, String, Vec<u8>)>(), 0..8),
        ) -> Claims {
            let mut c = Claims::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
            if let Some(u) = user {
                c.set_user(u, UNIX_EPOCH);
            }
            [c.issued_at, c.auth_time, c.expires_at, c.idle_deadline] = times;
            c.set_persistent(persistent);
            for (k, v) in data {
                c.insert(k, &v).unwrap();
            }
            c
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(c in arb_claims()) {
            let bytes = c.to_bytes();
            prop_assert_eq!(bytes.len(), c.encoded_len());
            prop_assert_eq!(Claims::from_bytes(&bytes).unwrap(), c);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic_and_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Canonical form: whatever decodes must encode back to the very same bytes.
            if let Ok(c) = Claims::from_bytes(&bytes) {
                prop_assert_eq!(c.to_bytes(), bytes);
            }
        }
    }
}
