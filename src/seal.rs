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

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use base64_simd::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::claims::{Claims, ClaimsCore};
#[cfg(feature = "hyper")]
use crate::envelope_bytes::Envelope;
use crate::key::{DerivedKeys, KeyId, KeyRing};
use crate::wire::DecodeError;
use crate::xaes::{NONCE_LEN, TAG_LEN};

/// The envelope format version written by this crate.
pub const VERSION: u8 = 1;
/// The most bytes a whole `Set-Cookie` line may have.
pub const MAX_COOKIE_LEN: usize = 4096;

const AAD_LABEL: &[u8] = b"sealed-sessions/v1";
const HEADER_LEN: usize = 6;
const MAC_LEN: usize = 32;
/// The longest envelope sealed on the stack: the longest the cache of opened values keeps
/// (`opened_cache::MAX_RAW_LEN`), whose copy in clear needs a separate buffer to encrypt in.
const STACK_ENVELOPE_LEN: usize = 512;

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

/// A cookie that opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The session inside it.
    pub claims: Claims,
    /// It was sealed with an old key of the ring: seal it again, with the primary key, on the
    /// way out.
    pub needs_reseal: bool,
}

/// What opening a value that [`Sealer`] just sealed would give, known without opening it.
#[cfg_attr(not(feature = "hyper"), allow(dead_code))] // read by the middleware's cache
pub(crate) struct AsOpened {
    /// The decoded envelope, with the claims in clear in place of the ciphertext.
    pub(crate) raw: Vec<u8>,
    /// The claims, reading their user and data from `raw`.
    pub(crate) claims: ClaimsCore,
}

/// The size of a sealed value, known before sealing ([`Sealer::sealed_len`]): its decoded
/// envelope's bytes and its characters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealedSize {
    raw_len: usize,
    /// The characters of the value.
    pub(crate) value_len: usize,
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

    /// Seals `claims` for the cookie `name` with the primary key and a fresh random nonce.
    pub fn seal(&self, name: &str, claims: &Claims) -> Result<String, SealError> {
        let (core, buf) = claims.parts();
        self.seal_core(name, core, buf)
    }

    /// [`Self::seal`] for claims whose bytes are kept apart from them (the session state).
    pub(crate) fn seal_core(
        &self,
        name: &str,
        claims: &ClaimsCore,
        buf: &[u8],
    ) -> Result<String, SealError> {
        self.seal_with_nonce(name, claims, buf, &self.fresh_nonce(), None)
            .map(|(value, _)| value)
    }

    /// The length of the value [`Self::seal_core`] would make of `claims` for the cookie
    /// `name`, or the error it would return: known before sealing, so that the middleware can
    /// size the `Set-Cookie` line and seal straight into it ([`Self::seal_core_into`]).
    #[cfg(feature = "hyper")]
    pub(crate) fn sealed_len(
        &self,
        name: &str,
        claims: &ClaimsCore,
    ) -> Result<SealedSize, SealError> {
        self.check_size(name, claims)
    }

    /// [`Self::seal_core`], appending the value to `out`; with `keep_up_to`, also what
    /// [`Self::open`] would make of it, for the cache of opened values: the decoded envelope
    /// with the claims in clear, and the claims decoded from it (`None` for an envelope over
    /// `keep_up_to` bytes, which is not kept).
    ///
    /// `size` is what [`Self::sealed_len`] said of the same claims (checked against the limit
    /// there, and not counted again).
    #[cfg(feature = "hyper")]
    pub(crate) fn seal_core_into(
        &self,
        name: &str,
        (claims, size): (&ClaimsCore, SealedSize),
        buf: &[u8],
        keep_up_to: Option<usize>,
        out: &mut String,
    ) -> Option<AsOpened> {
        let nonce = self.fresh_nonce();
        self.seal_sized(name, claims, buf, &nonce, size, keep_up_to, out)
    }

    /// A random nonce in private mode; zeros (unused) in signed mode.
    fn fresh_nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        if self.mode == Mode::Private {
            crate::random::fill(&mut nonce);
        }
        nonce
    }

    /// The decoded envelope's length and the value's, if the cookie fits the limit.
    fn check_size(&self, name: &str, claims: &ClaimsCore) -> Result<SealedSize, SealError> {
        let raw_len = HEADER_LEN + self.tag_len() + claims.encoded_len();
        let value_len = base64_len(raw_len);
        let size = name.len() + 1 + value_len + self.attribute_reserve;
        if size > self.limit {
            return Err(SealError::CookieTooLarge {
                size,
                limit: self.limit,
            });
        }
        Ok(SealedSize { raw_len, value_len })
    }

    /// [`Self::seal`] with a given nonce (ignored in signed mode); the golden tests pin one.
    /// With `keep_opened_up_to`, also returns what opening the value would give, if its
    /// envelope has at most that many bytes.
    fn seal_with_nonce(
        &self,
        name: &str,
        claims: &ClaimsCore,
        buf: &[u8],
        nonce: &[u8; NONCE_LEN],
        keep_opened_up_to: Option<usize>,
    ) -> Result<(String, Option<AsOpened>), SealError> {
        let size = self.check_size(name, claims)?;
        let mut value = String::new();
        let opened = self.seal_sized(
            name,
            claims,
            buf,
            nonce,
            size,
            keep_opened_up_to,
            &mut value,
        );
        Ok((value, opened))
    }

    /// [`Self::seal_with_nonce`] of claims of `size` (checked against the limit), appending
    /// the value to `out`.
    ///
    /// An envelope that is kept as opened is written once in clear, into the buffer the cache
    /// keeps, and copied into a buffer on the stack to be encrypted in place there and encoded
    /// into `out` (a heap buffer if it is longer than any the cache keeps); one that is not
    /// kept is written into a heap buffer and encrypted there. Either way nothing in clear is
    /// left behind in private mode: the copy is overwritten by the ciphertext.
    #[allow(clippy::too_many_arguments)] // private; two public doors lead here
    fn seal_sized(
        &self,
        name: &str,
        claims: &ClaimsCore,
        buf: &[u8],
        nonce: &[u8; NONCE_LEN],
        SealedSize { raw_len, value_len }: SealedSize,
        keep_opened_up_to: Option<usize>,
        out: &mut String,
    ) -> Option<AsOpened> {
        let keys = self.keys.primary();
        // What follows the claims (the nonce, in private mode, precedes them).
        let tag_len = match self.mode {
            Mode::Private => TAG_LEN,
            Mode::Signed => MAC_LEN,
        };

        // The envelope as opening leaves it (the claims in clear) if it is kept; otherwise the
        // buffer that is encrypted in place.
        let mut plain = keep_opened_up_to
            .is_some_and(|keep| raw_len <= keep)
            .then(|| Vec::with_capacity(raw_len));
        let mut heap = Vec::new();
        let target = plain.as_mut().unwrap_or(&mut heap);
        if target.capacity() == 0 {
            target.reserve_exact(raw_len);
        }
        target.extend_from_slice(&header(self.mode, keys.id));
        if self.mode == Mode::Private {
            target.extend_from_slice(nonce);
        }
        let as_opened = claims.encode_into(buf, target);
        let body_end = target.len();
        let mut stack = [0u8; STACK_ENVELOPE_LEN];
        let raw: &mut [u8] = match &plain {
            Some(plain) if body_end + tag_len <= STACK_ENVELOPE_LEN => {
                let raw = &mut stack[..body_end + tag_len];
                raw[..body_end].copy_from_slice(plain);
                raw
            }
            Some(plain) => {
                heap.extend_from_slice(plain);
                heap.resize(body_end + tag_len, 0);
                &mut heap
            }
            None => {
                heap.resize(body_end + tag_len, 0);
                &mut heap
            }
        };
        let (sealed, tag_out) = raw.split_at_mut(body_end);
        let (head, body) = sealed.split_at_mut(HEADER_LEN);
        match self.mode {
            Mode::Private => {
                let tag = with_aad(head, name, |aad| {
                    keys.aead
                        .encrypt_in_place(nonce, aad, &mut body[NONCE_LEN..])
                });
                tag_out.copy_from_slice(&tag);
            }
            Mode::Signed => {
                let tag = mac(keys, head, name, body).finalize().into_bytes();
                tag_out.copy_from_slice(&tag);
            }
        }
        if let Some(plain) = plain.as_mut() {
            plain.extend_from_slice(tag_out);
        }
        // `encoded_len` counts the user and data by their recorded lengths and `encode_into`
        // writes what it can read from `buf`; were those ever to disagree (a core paired with
        // the wrong buffer: a bug), the value will not open, and neither may its claims be
        // remembered as opened.
        let opened = plain.filter(|_| raw.len() == raw_len).map(|raw| AsOpened {
            raw,
            claims: as_opened,
        });
        out.reserve(value_len);
        URL_SAFE_NO_PAD.encode_append(&*raw, out);
        opened
    }

    /// Opens a cookie `value` found under the cookie `name`, and checks its expiry at `now`.
    pub fn open(&self, name: &str, value: &str, now: SystemTime) -> Result<Opened, OpenError> {
        self.check_lengths(name, value)?;
        let mut raw = URL_SAFE_NO_PAD
            .decode_to_vec(value)
            .map_err(|_| OpenError::Malformed)?;
        let (core, needs_reseal) = self.open_decoded(name, &mut raw, now)?;
        Ok(Opened {
            claims: Claims::from_parts(core, raw),
            needs_reseal,
        })
    }

    /// [`Self::open`], with the decoded envelope (the claims read their user and data from it)
    /// in an [`Envelope`], which zeroizes it when dropped. Returns the claims, whether to
    /// re-seal them, and the envelope.
    #[cfg(feature = "hyper")]
    pub(crate) fn open_envelope(
        &self,
        name: &str,
        value: &str,
        now: SystemTime,
    ) -> Result<(ClaimsCore, bool, Envelope), OpenError> {
        self.check_lengths(name, value)?;
        let mut raw = Envelope::decode(value).ok_or(OpenError::Malformed)?;
        let (claims, needs_reseal) = self.open_decoded(name, raw.as_mut_slice(), now)?;
        Ok((claims, needs_reseal, raw))
    }

    /// Authenticates (and decrypts, in place) the decoded envelope `raw`, then decodes and
    /// checks the claims in it.
    fn open_decoded(
        &self,
        name: &str,
        raw: &mut [u8],
        now: SystemTime,
    ) -> Result<(ClaimsCore, bool), OpenError> {
        if raw.len() < HEADER_LEN {
            return Err(OpenError::Malformed);
        }
        let version = raw[0];
        if version != VERSION {
            return Err(OpenError::UnsupportedVersion(version));
        }
        if Mode::from_byte(raw[1]) != Some(self.mode) {
            return Err(OpenError::WrongMode {
                expected: self.mode,
                found: raw[1],
            });
        }
        let key_id = KeyId([raw[2], raw[3], raw[4], raw[5]]);
        let keys = self.keys.get(key_id).ok_or(OpenError::UnknownKey(key_id))?;

        let total = raw.len();
        let (head, body) = raw.split_at_mut(HEADER_LEN);
        match self.mode {
            Mode::Private => {
                if body.len() < NONCE_LEN + TAG_LEN {
                    return Err(OpenError::Malformed);
                }
                let (nonce, rest) = body.split_at_mut(NONCE_LEN);
                let (ciphertext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
                let nonce: &[u8; NONCE_LEN] =
                    (&*nonce).try_into().map_err(|_| OpenError::Malformed)?;
                let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| OpenError::Malformed)?;
                with_aad(head, name, |aad| {
                    keys.aead.decrypt_in_place(nonce, aad, ciphertext, tag)
                })
                .map_err(|_| OpenError::Tampered)?;
            }
            Mode::Signed => {
                if body.len() < MAC_LEN {
                    return Err(OpenError::Malformed);
                }
                let (plaintext, tag) = body.split_at(body.len() - MAC_LEN);
                mac(keys, head, name, plaintext)
                    .verify_slice(tag)
                    .map_err(|_| OpenError::Tampered)?;
            }
        }
        // The claims read their user and data entries from the decrypted buffer in place.
        let claims = ClaimsCore::decode(raw, claims_range(self.mode, total))?;
        if claims.is_expired(now) {
            return Err(OpenError::Expired);
        }
        Ok((claims, key_id != self.keys.primary_id()))
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

impl Sealer {
    /// Anything longer than this sealer's limit (by default, longer than a browser would keep)
    /// was not written by [`Sealer::seal`].
    fn check_lengths(&self, name: &str, value: &str) -> Result<(), OpenError> {
        if value.len() > self.limit || name.len() > MAX_COOKIE_LEN {
            return Err(OpenError::Malformed);
        }
        Ok(())
    }
}

/// Where the claims lie in a decoded envelope of `total` bytes (checked long enough to hold
/// the header and the tag).
fn claims_range(mode: Mode, total: usize) -> Range<usize> {
    match mode {
        Mode::Private => HEADER_LEN + NONCE_LEN..total - TAG_LEN,
        Mode::Signed => HEADER_LEN..total - MAC_LEN,
    }
}

fn header(mode: Mode, id: KeyId) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = id.to_bytes();
    [VERSION, mode.byte(), a, b, c, d]
}

/// Length of unpadded base64 for `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
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
