//! [`ClaimsCore`]: claims without the bytes they were decoded from.
//!
//! A decoded cookie's user id and data entries are read where they lie in the decrypted buffer
//! rather than copied out (see `data.rs`). The buffer is owned by whoever decoded the cookie:
//! [`Claims`](super::Claims) pairs a core with a `Vec<u8>`, and the middleware's session state
//! pairs one with the envelope it shares with the cache of opened values (`cookie_buf.rs`),
//! which is what keeps an unchanged request at four allocations (see `docs/performance.md`).
//! Every method that reads the user or
//! the data takes that buffer as `buf`; it must be the buffer the core was decoded from, which
//! both owners guarantee by never changing it after the decode.

use std::fmt;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::data::Data;
use crate::id::SessionId;
use crate::wire::{put_bytes, put_varint, varint_len, DecodeError, Reader};

// The flags byte (see the encoding in `claims/mod.rs`); only the core encodes and decodes it.
const FLAG_USER: u8 = 0b01;
const FLAG_PERSISTENT: u8 = 0b10;

/// The fixed fields of a session, and where its user and data are.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct ClaimsCore {
    id: SessionId,
    user: Option<User>,
    pub(super) issued_at: u64,
    pub(super) auth_time: u64,
    pub(super) expires_at: u64,
    pub(super) idle_deadline: u64,
    persistent: bool,
    data: Data,
}

/// The signed-in user's id: in the decoded buffer (checked UTF-8), or set since.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
enum User {
    Sealed(Range<usize>),
    Owned(String),
}

impl ClaimsCore {
    pub(crate) fn new(now: SystemTime, lifetime: Duration, idle: Duration) -> Self {
        let now = unix(now);
        ClaimsCore {
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

    pub(crate) fn id(&self) -> SessionId {
        self.id
    }

    pub(crate) fn user<'a>(&'a self, buf: &'a [u8]) -> Option<&'a str> {
        match self.user.as_ref()? {
            // Checked to be UTF-8 by `decode`; this check of a few bytes cannot fail.
            User::Sealed(range) => std::str::from_utf8(buf.get(range.clone())?).ok(),
            User::Owned(user) => Some(user),
        }
    }

    #[cfg(feature = "hyper")]
    pub(crate) fn has_user(&self) -> bool {
        self.user.is_some()
    }

    pub(crate) fn issued_at(&self) -> SystemTime {
        time(self.issued_at)
    }

    /// When the session's lifetime began: its sign-in, or (without a user) its creation or
    /// last renewal.
    #[cfg(feature = "hyper")]
    pub(crate) fn lifetime_start(&self) -> SystemTime {
        time(if self.user.is_some() {
            self.auth_time
        } else {
            self.issued_at
        })
    }

    pub(crate) fn auth_time(&self) -> Option<SystemTime> {
        self.user.as_ref().map(|_| time(self.auth_time))
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        time(self.expires_at)
    }

    pub(crate) fn idle_deadline(&self) -> SystemTime {
        time(self.idle_deadline)
    }

    pub(crate) fn is_persistent(&self) -> bool {
        self.persistent
    }

    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        let now = unix(now);
        now >= self.expires_at || now >= self.idle_deadline
    }

    pub(crate) fn renew(&mut self, now: SystemTime, lifetime: Duration, idle: Duration) {
        self.renew_id(now);
        let now = unix(now);
        self.expires_at = now.saturating_add(lifetime.as_secs());
        self.idle_deadline = now.saturating_add(idle.as_secs());
    }

    pub(crate) fn renew_id(&mut self, now: SystemTime) {
        self.id = SessionId::generate();
        self.issued_at = unix(now);
    }

    pub(crate) fn set_user(&mut self, user: String, now: SystemTime) {
        self.user = Some(User::Owned(user));
        self.auth_time = unix(now);
    }

    /// Records a fresh authentication of the user already bound (sudo mode); no-op without one.
    #[cfg(feature = "hyper")] // only `Session::reauthenticate` records one
    pub(crate) fn set_auth_time(&mut self, now: SystemTime) {
        if self.user.is_some() {
            self.auth_time = unix(now);
        }
    }

    pub(crate) fn clear_user(&mut self) {
        self.user = None;
        self.auth_time = 0;
    }

    pub(crate) fn set_persistent(&mut self, persistent: bool) {
        self.persistent = persistent;
    }

    /// New limits: the absolute end `lifetime` after issue (if given; unchanged otherwise), and
    /// the idle deadline `idle` from `now`, never past the absolute end.
    #[cfg(feature = "hyper")]
    pub(crate) fn retime(&mut self, now: SystemTime, lifetime: Option<Duration>, idle: Duration) {
        if let Some(lifetime) = lifetime {
            self.expires_at = self.issued_at.saturating_add(lifetime.as_secs());
        }
        self.touch(now, idle);
    }

    /// Moves the absolute end to `end` if that is earlier (and the idle deadline with it).
    #[cfg(feature = "hyper")]
    pub(crate) fn end_by(&mut self, end: SystemTime) {
        self.expires_at = self.expires_at.min(unix(end));
        self.idle_deadline = self.idle_deadline.min(self.expires_at);
    }

    /// Whether to refresh the idle deadline at `now`: `refresh_after` has passed since it was
    /// last set (`idle` before it: [`touch`](Self::touch) sets it `idle` on, in whole seconds)
    /// and [`touch`](Self::touch) would move it at all, capped at the absolute end.
    ///
    /// Not "only if it would move by `refresh_after`": within `refresh_after` of the absolute
    /// end that never holds, and an active session would end at its idle deadline, short of
    /// its end (42 hours short for a remembered one, by default). The throttle alone keeps a
    /// busy session from re-sealing on every request, and once the deadline reaches the
    /// absolute end nothing is due. Asked on every request, so `now` is compared as a time,
    /// not converted to seconds: the deadline moves iff `now` is a whole second past the
    /// last refresh's second.
    #[cfg(any(test, feature = "hyper"))]
    pub(crate) fn refresh_due(
        &self,
        now: SystemTime,
        idle: Duration,
        refresh_after: Duration,
    ) -> bool {
        if self.idle_deadline >= self.expires_at {
            return false;
        }
        let Some(last) = self.idle_deadline.checked_sub(idle.as_secs()) else {
            // Set before 1970 by this idle timeout: any `now` moves it.
            return true;
        };
        let wait = refresh_after.max(Duration::from_secs(1));
        // A bound past every representable time is never reached.
        time(last).checked_add(wait).is_some_and(|from| now >= from)
    }

    pub(crate) fn touch(&mut self, now: SystemTime, idle: Duration) {
        self.idle_deadline = unix(now)
            .saturating_add(idle.as_secs())
            .min(self.expires_at);
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        buf: &[u8],
        key: &str,
    ) -> Result<Option<T>, serde_json::Error> {
        self.data
            .get(buf, key)
            .map(serde_json::from_slice)
            .transpose()
    }

    pub(crate) fn insert_json(&mut self, buf: &[u8], key: &str, json: &[u8]) {
        self.data.insert(buf, key, json);
    }

    pub(crate) fn remove(&mut self, buf: &[u8], key: &str) -> bool {
        self.data.remove(buf, key)
    }

    pub(crate) fn clear(&mut self) {
        self.data.clear();
    }

    pub(crate) fn keys<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = &'a str> {
        self.data.iter(buf).map(|(k, _)| k)
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.len() == 0
    }

    /// The exact length of the encoding, without encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        let user_len = match &self.user {
            None => 0,
            Some(User::Sealed(range)) => range.len(),
            Some(User::Owned(user)) => user.len(),
        };
        SessionId::LEN
            + 1
            + self
                .user
                .as_ref()
                .map_or(0, |_| varint_len(user_len as u64) + user_len)
            + varint_len(self.issued_at)
            + varint_len(self.auth_time)
            + varint_len(self.expires_at)
            + varint_len(self.idle_deadline)
            + self.data.encoded_len()
    }

    /// Appends the canonical encoding to `out`, and returns the same claims as they read from
    /// `out` there: what [`Self::decode`] of that encoding returns, without decoding it (the
    /// middleware remembers a value it sealed as opened; see `opened_cache.rs`).
    pub(crate) fn encode_into(&self, buf: &[u8], out: &mut Vec<u8>) -> ClaimsCore {
        out.extend_from_slice(self.id.as_bytes());
        let mut flags = 0;
        if self.user.is_some() {
            flags |= FLAG_USER;
        }
        if self.persistent {
            flags |= FLAG_PERSISTENT;
        }
        out.push(flags);
        let user = self.user(buf).map(|user| {
            put_bytes(out, user.as_bytes());
            User::Sealed(out.len() - user.len()..out.len())
        });
        for t in [
            self.issued_at,
            self.auth_time,
            self.expires_at,
            self.idle_deadline,
        ] {
            put_varint(out, t);
        }
        ClaimsCore {
            user,
            data: self.data.encode_into(buf, out),
            ..*self
        }
    }

    /// Decodes `buf[range]`, recording where the user and the data entries are in `buf`.
    pub(crate) fn decode(buf: &[u8], range: Range<usize>) -> Result<Self, DecodeError> {
        let input = buf.get(range.clone()).ok_or(DecodeError::Truncated)?;
        let mut r = Reader(input);
        // Offsets in `buf` of what the reader has not read yet.
        let at = |r: &Reader<'_>| range.end - r.0.len();
        let id = SessionId::from_bytes(r.array()?);
        let flags = r.byte()?;
        if flags & !(FLAG_USER | FLAG_PERSISTENT) != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let user = if flags & FLAG_USER != 0 {
            let len = r.str()?.len();
            let end = at(&r);
            Some(User::Sealed(end - len..end))
        } else {
            None
        };
        let issued_at = r.varint()?;
        let auth_time = r.varint()?;
        let expires_at = r.varint()?;
        let idle_deadline = r.varint()?;
        Ok(ClaimsCore {
            id,
            user,
            issued_at,
            auth_time,
            expires_at,
            idle_deadline,
            persistent: flags & FLAG_PERSISTENT != 0,
            data: Data::parse(buf, at(&r), range.end)?,
        })
    }

    /// Whether `self` (over `buf`) and `other` (over `other_buf`) are the same claims.
    pub(crate) fn eq(&self, buf: &[u8], other: &Self, other_buf: &[u8]) -> bool {
        self.id == other.id
            && self.user(buf) == other.user(other_buf)
            && self.issued_at == other.issued_at
            && self.auth_time == other.auth_time
            && self.expires_at == other.expires_at
            && self.idle_deadline == other.idle_deadline
            && self.persistent == other.persistent
            && self.data.len() == other.data.len()
            && self.data.iter(buf).eq(other.data.iter(other_buf))
    }

    /// A `Debug` view: ids, times and data keys, never the data values (CSRF tokens and the
    /// like).
    pub(crate) fn debug<'a>(&'a self, buf: &'a [u8]) -> impl fmt::Debug + 'a {
        Shown { core: self, buf }
    }
}

struct Shown<'a> {
    core: &'a ClaimsCore,
    buf: &'a [u8],
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.core;
        f.debug_struct("Claims")
            .field("id", &c.id)
            .field("user", &c.user(self.buf))
            .field("issued_at", &c.issued_at)
            .field("auth_time", &c.auth_time)
            .field("expires_at", &c.expires_at)
            .field("idle_deadline", &c.idle_deadline)
            .field("persistent", &c.persistent)
            .field("data_keys", &c.keys(self.buf).collect::<Vec<_>>())
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
