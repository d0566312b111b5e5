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
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::id::SessionId;
use crate::wire::DecodeError;

mod core;

pub(crate) use self::core::ClaimsCore;

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
#[derive(Clone)]
pub struct Claims {
    core: ClaimsCore,
    /// The encoding this was decoded from (the user id and unchanged data entries are read from
    /// it in place); empty for claims made with [`Claims::new`].
    buf: Vec<u8>,
}

impl Claims {
    /// A new anonymous session with a fresh random id, ending `lifetime` from `now` at the latest
    /// and after `idle` without activity.
    pub fn new(now: SystemTime, lifetime: Duration, idle: Duration) -> Self {
        Claims {
            core: ClaimsCore::new(now, lifetime, idle),
            buf: Vec::new(),
        }
    }

    /// Claims decoded from `buf` (with the core's offsets into it).
    pub(crate) fn from_parts(core: ClaimsCore, buf: Vec<u8>) -> Self {
        Claims { core, buf }
    }

    /// The core and the buffer it reads from.
    pub(crate) fn parts(&self) -> (&ClaimsCore, &[u8]) {
        (&self.core, &self.buf)
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.core.id()
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.core.user(&self.buf)
    }

    /// When this session id was issued.
    pub fn issued_at(&self) -> SystemTime {
        self.core.issued_at()
    }

    /// When the user authenticated (log-in time), if there is a user.
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.core.auth_time()
    }

    /// The absolute end of the session, whatever the activity.
    pub fn expires_at(&self) -> SystemTime {
        self.core.expires_at()
    }

    /// The end of the session unless activity moves it later (never past [`Self::expires_at`]).
    pub fn idle_deadline(&self) -> SystemTime {
        self.core.idle_deadline()
    }

    /// Whether the cookie should outlive the browser session ("remember me").
    pub fn is_persistent(&self) -> bool {
        self.core.is_persistent()
    }

    /// Whether the session is over at `now`: past its absolute expiry or its idle deadline.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.core.is_expired(now)
    }

    /// Starts a new session id for the same data, issued at `now`, with the lifetime and idle
    /// timeout counted afresh: what a login does (fixation defence and a full session).
    pub fn renew(&mut self, now: SystemTime, lifetime: Duration, idle: Duration) {
        self.core.renew(now, lifetime, idle);
    }

    /// Starts a new session id for the same data, issued at `now`, keeping the absolute expiry
    /// and idle deadline: for privilege changes within a session, which must not extend it.
    pub fn renew_id(&mut self, now: SystemTime) {
        self.core.renew_id(now);
    }

    /// Binds the session to `user`, authenticated at `now`. Callers renew the id first.
    pub fn set_user(&mut self, user: impl Into<String>, now: SystemTime) {
        self.core.set_user(user.into(), now);
    }

    /// Removes the user binding.
    pub fn clear_user(&mut self) {
        self.core.clear_user();
    }

    /// Chooses a persistent ("remember me") or browser-session cookie.
    pub fn set_persistent(&mut self, persistent: bool) {
        self.core.set_persistent(persistent);
    }

    /// Moves the idle deadline to `idle` after `now`, capped at the absolute expiry.
    pub fn touch(&mut self, now: SystemTime, idle: Duration) {
        self.core.touch(now, idle);
    }

    /// The value under `key`, deserialized as `T`; `Ok(None)` when there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.core.get(&self.buf, key)
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let json = serde_json::to_vec(value)?;
        self.core.insert_json(&self.buf, key, &json);
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.core.remove(&self.buf, key)
    }

    /// Removes all data (the id, user and times stay).
    pub fn clear(&mut self) {
        self.core.clear();
    }

    /// The data keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.core.keys(&self.buf)
    }

    /// The number of data entries.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// The canonical binary encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.core.encoded_len());
        self.core.encode_into(&self.buf, &mut out);
        out
    }

    /// Decodes the canonical encoding; anything else is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let core = ClaimsCore::decode(bytes, 0..bytes.len())?;
        Ok(Claims::from_parts(core, bytes.to_vec()))
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.core.eq(&self.buf, &other.core, &other.buf)
    }
}

impl Eq for Claims {}

impl fmt::Debug for Claims {
    /// Shows ids, times and data keys; never the data values, which may hold secrets such as
    /// CSRF tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug(&self.buf).fmt(f)
    }
}

#[cfg(test)]
mod tests;
