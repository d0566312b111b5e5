//! The sealing side of [`Sealer`]: claims in, a cookie value out, checked against the size a
//! browser keeps before any work is done.

use base64_simd::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::error::SealError;
use super::{mac, with_aad, Mode, Sealer, HEADER_LEN, MAC_LEN, VERSION};
use crate::claims::{Claims, ClaimsCore};
use crate::key::KeyId;
use crate::xaes::{NONCE_LEN, TAG_LEN};

/// The longest envelope sealed on the stack: the longest the cache of opened values keeps
/// (`opened_cache::MAX_RAW_LEN`), whose copy in clear needs a separate buffer to encrypt in.
const STACK_ENVELOPE_LEN: usize = 512;

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

impl Sealer {
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
    pub(super) fn seal_with_nonce(
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
}

fn header(mode: Mode, id: KeyId) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = id.to_bytes();
    [VERSION, mode.byte(), a, b, c, d]
}

/// Length of unpadded base64 for `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}
