//! Session ids: 16 random bytes from the operating system's CSPRNG.
//!
//! The id names a session in the registry and is renewed at login (fixation defence). It is not a
//! bearer secret on its own: a cookie must still be sealed with a key of the [`KeyRing`] to be
//! accepted, so the id may be shown to its owner (for example on a "your devices" page).
//!
//! Its text form is unpadded base64url (22 characters), the same alphabet as the cookie.
//!
//! [`KeyRing`]: crate::KeyRing

use std::fmt;
use std::str::FromStr;

use base64_simd::{Out, URL_SAFE_NO_PAD};

/// The identifier of one session: 16 bytes (128 bits) from the OS random number generator.
///
/// ```
/// use sealed_sessions::SessionId;
///
/// let id = SessionId::generate();
/// let text = id.to_string();
/// assert_eq!(text.len(), 22);
/// assert_eq!(text.parse::<SessionId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId([u8; SessionId::LEN]);

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The 128 bits in one write (the derived impl wrote a length, then the bytes): the
        // registry's cache hashes an id on every request, with a hasher that takes it whole.
        state.write_u128(u128::from_le_bytes(self.0));
    }
}

impl SessionId {
    /// The length of an id in bytes.
    pub const LEN: usize = 16;

    /// A fresh random id from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics only if the operating system cannot provide random bytes at all, in which case no
    /// session could be created safely (the same policy as the `rand` crate's `OsRng`).
    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::LEN];
        crate::random::fill(&mut bytes);
        SessionId(bytes)
    }

    /// Wraps raw bytes, for example a registry row's primary key.
    pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        SessionId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 16 bytes always encode to exactly 22 base64url characters without padding.
        let mut buf = [0u8; 22];
        f.write_str(URL_SAFE_NO_PAD.encode_as_str(&self.0, Out::from_slice(&mut buf)))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// The error of parsing a [`SessionId`] from text that is not 22 characters of base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is 22 characters of unpadded base64url")]
pub struct ParseSessionIdError(());

impl FromStr for SessionId {
    type Err = ParseSessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 22 {
            return Err(ParseSessionIdError(()));
        }
        let mut bytes = [0u8; Self::LEN];
        match URL_SAFE_NO_PAD.decode(s.as_bytes(), Out::from_slice(&mut bytes)) {
            Ok(decoded) if decoded.len() == Self::LEN => Ok(SessionId(bytes)),
            _ => Err(ParseSessionIdError(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_rejects_junk() {
        let id = SessionId::from_bytes([0xfb; 16]);
        assert_eq!(id.to_string(), "-_v7-_v7-_v7-_v7-_v7-w");
        assert_eq!("-_v7-_v7-_v7-_v7-_v7-w".parse::<SessionId>(), Ok(id));
        for bad in [
            "",
            "short",
            "-_v7-_v7-_v7-_v7-_v7-x",
            "+/v7-_v7-_v7-_v7-_v7-w",
            "é_v7-_v7-_v7-_v7-_v7",
        ] {
            assert!(bad.parse::<SessionId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }
}
