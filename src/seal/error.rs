//! Why a cookie did not open, or could not be sealed.

use crate::key::KeyId;
use crate::wire::DecodeError;

use super::Mode;

/// Why a cookie value did not open. For logs: callers treat every case as "no session".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not unpadded base64url, or too short to hold a header and a tag.
    #[error("the cookie is not a sealed session (bad encoding or length)")]
    Malformed,
    /// A format version this crate does not read.
    #[error("the cookie has envelope version {0}, which this version cannot read")]
    UnsupportedVersion(u8),
    /// A mode byte that names no mode, or the mode this sealer does not use.
    #[error("the cookie's mode byte {found} does not match this sealer's mode {expected:?}")]
    WrongMode {
        /// The mode this sealer seals and opens.
        expected: Mode,
        /// The mode byte in the cookie.
        found: u8,
    },
    /// The cookie was sealed with a key that is not in the ring (retired, or foreign).
    #[error("the cookie was sealed with unknown key {0}")]
    UnknownKey(KeyId),
    /// The tag does not verify: the cookie was changed, renamed, or forged.
    #[error("the cookie failed authentication")]
    Tampered,
    /// The tag verified but the claims do not decode: a bug or a newer writer, never an attacker
    /// without the key.
    #[error("the cookie's claims do not decode: {0}")]
    BadClaims(#[from] DecodeError),
    /// The session is past its absolute expiry or its idle deadline.
    #[error("the session has expired")]
    Expired,
}

/// Why a cookie could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The `Set-Cookie` line would be longer than browsers keep; store less in the session.
    #[error("the session cookie would be {size} bytes, over the {limit}-byte limit")]
    CookieTooLarge {
        /// The bytes the line would have.
        size: usize,
        /// The most it may have.
        limit: usize,
    },
}
