//! The cookie envelope, version 1: how [`Claims`] become a cookie value and back.
//!
//! ```text
//! value  = base64url_nopad(header || body)
//! header = version (1 byte, = 1) || mode (1 byte) || key id (4 bytes)
//! aad    = "sealed-sessions/v1" || header || u16_be(len(cookie name)) || cookie name
//!
//! mode 1, private: body = nonce (24) || XAES-256-GCM(key, nonce, aad, claims) || tag (16)
//! mode 2, signed:  body = claims || HMAC-SHA256(mac key, aad || claims)        (tag: 32)
//! ```
//!
//! The associated data binds the format version, the mode, the key id and the cookie's name, so
//! a cookie moved to another name, relabelled with another mode or key id, or replayed into a
//! future format version fails to open.
//!
//! The design draft put the bare cookie name at the end of the AAD. That is unambiguous for the
//! AEAD, which length-delimits its AAD, but in signed mode the MAC input is `aad || claims`, and
//! without a length a cookie named `ab` with claims `P` would carry the same MAC as a cookie
//! named `a` with claims `bP`. The two-byte length prefix removes that ambiguity in both modes.
//!
//! [`Sealer::open`] picks the key by the id in the header (one comparison per key in the ring,
//! never a trial decryption), verifies the tag in constant time (inside `aes-gcm`, or
//! `hmac`'s `verify_slice`), decodes the claims, and checks their absolute and idle expiry.
//! A cookie opened with an old key reports [`Opened::needs_reseal`], so that the caller re-seals
//! it with the primary key on its way out.
//!
//! A browser drops a cookie whose name and value exceed 4096 bytes together (RFC 6265bis,
//! section 5.6), and does so silently. [`Sealer::seal`] therefore refuses to produce such a cookie
//! with [`SealError::CookieTooLarge`], counting the bytes reserved for attributes with
//! [`Sealer::reserve_for_attributes`] so that the whole `Set-Cookie` line fits as well.
//!
//! The code: [`Sealer`], [`Mode`] and the framing both directions share (the associated data,
//! the MAC) here; sealing in `seal/sealing.rs`, opening in `seal/opening.rs`, the errors in
//! `seal/error.rs`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key::{DerivedKeys, KeyRing};
use crate::xaes::{NONCE_LEN, TAG_LEN};

mod error;
mod opening;
mod sealing;

pub use error::{OpenError, SealError};
pub use opening::Opened;
#[cfg(feature = "hyper")]
pub(crate) use sealing::AsOpened;

/// The envelope format version written by this crate.
pub const VERSION: u8 = 1;
/// The most bytes a whole `Set-Cookie` line may have.
pub const MAX_COOKIE_LEN: usize = 4096;

const AAD_LABEL: &[u8] = b"sealed-sessions/v1";
const HEADER_LEN: usize = 6;
const MAC_LEN: usize = 32;

/// How the claims are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Encrypted and authenticated with XAES-256-GCM: the browser can neither read nor change
    /// the session. The default.
    #[default]
    Private,
    /// Authenticated with HMAC-SHA256 but readable by anyone who has the cookie: for data that is
    /// not secret, when a client script or a debugging human should be able to read it.
    Signed,
}

impl Mode {
    const fn byte(self) -> u8 {
        match self {
            Mode::Private => 1,
            Mode::Signed => 2,
        }
    }

    const fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Mode::Private),
            2 => Some(Mode::Signed),
            _ => None,
        }
    }
}

/// Seals claims into cookie values and opens them again, with one [`KeyRing`] and one [`Mode`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer};
///
/// let sealer = Sealer::new(KeyRing::new(Key::generate()), Mode::Private);
/// let now = SystemTime::now();
/// let mut claims = Claims::new(now, Duration::from_secs(3600), Duration::from_secs(900));
/// claims.insert("visits", &1)?;
///
/// let value = sealer.seal("id", &claims)?;
/// let opened = sealer.open("id", &value, now)?;
/// assert_eq!(opened.claims.get::<u32>("visits")?, Some(1));
///
/// // The same value under another cookie name does not open.
/// assert!(sealer.open("other", &value, now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sealer {
    keys: KeyRing,
    mode: Mode,
    attribute_reserve: usize,
    /// The most bytes `name=value` plus the reserve may have; [`MAX_COOKIE_LEN`] but for the
    /// middleware, which splits longer values over several cookies (`cookie_header/chunks.rs`).
    limit: usize,
}

impl Sealer {
    /// A sealer with these keys and mode, reserving no room for cookie attributes.
    pub fn new(keys: KeyRing, mode: Mode) -> Self {
        Sealer {
            keys,
            mode,
            attribute_reserve: 0,
            limit: MAX_COOKIE_LEN,
        }
    }

    /// Seals and opens values with `name=value` of up to `limit` bytes (with the reserve)
    /// instead of [`MAX_COOKIE_LEN`]: for the middleware, which sends a longer value as several
    /// cookies. The envelope is the same.
    #[cfg(feature = "hyper")]
    pub(crate) fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The longest claims encoding whose sealed value has at most `value_len` characters.
    #[cfg(feature = "hyper")]
    pub(crate) fn claims_len_within(&self, value_len: usize) -> usize {
        // Unpadded base64 of `n` bytes has ceil(4n / 3) characters, at most `value_len` exactly
        // when n <= floor(3 * value_len / 4).
        (value_len.saturating_mul(3) / 4).saturating_sub(HEADER_LEN + self.tag_len())
    }

    /// The envelope's bytes beyond the header and the claims.
    const fn tag_len(&self) -> usize {
        match self.mode {
            Mode::Private => NONCE_LEN + TAG_LEN,
            Mode::Signed => MAC_LEN,
        }
    }

    /// Counts `bytes` of attributes (`; Path=/; HttpOnly; …`) against the 4096-byte limit, so
    /// that [`Self::seal`] refuses a cookie whose whole `Set-Cookie` line would not fit.
    #[must_use]
    pub fn reserve_for_attributes(mut self, bytes: usize) -> Self {
        self.attribute_reserve = bytes;
        self
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("keys", &self.keys)
            .field("mode", &self.mode)
            .field("attribute_reserve", &self.attribute_reserve)
            .field("limit", &self.limit)
            .finish()
    }
}

/// Runs `f` with the associated data, built on the stack for the usual short cookie names.
fn with_aad<R>(header: &[u8], name: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    const FIXED: usize = AAD_LABEL.len() + HEADER_LEN + 2;
    let mut stack = [0u8; FIXED + 64];
    let mut heap = Vec::new();
    let aad: &mut [u8] = if name.len() <= 64 {
        &mut stack[..FIXED + name.len()]
    } else {
        heap.resize(FIXED + name.len(), 0);
        &mut heap
    };
    let (label, rest) = aad.split_at_mut(AAD_LABEL.len());
    label.copy_from_slice(AAD_LABEL);
    let (head, rest) = rest.split_at_mut(HEADER_LEN);
    head.copy_from_slice(header);
    let (len, tail) = rest.split_at_mut(2);
    // `seal` and `open` cap names at 4096 bytes, so the length always fits in two bytes.
    len.copy_from_slice(&(name.len() as u16).to_be_bytes());
    tail.copy_from_slice(name.as_bytes());
    f(aad)
}

/// The HMAC over `aad || plaintext`, ready to finalize or verify.
fn mac(keys: &DerivedKeys, header: &[u8], name: &str, plaintext: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(keys.mac.as_ref())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(AAD_LABEL);
    mac.update(header);
    mac.update(&(name.len() as u16).to_be_bytes());
    mac.update(name.as_bytes());
    mac.update(plaintext);
    mac
}

#[cfg(test)]
mod tests;
