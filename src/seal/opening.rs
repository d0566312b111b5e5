//! The opening side of [`Sealer`]: a cookie value in, its claims out, after the key is picked
//! by id, the tag verified and the expiry checked.

use std::ops::Range;
use std::time::SystemTime;

use base64_simd::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::error::OpenError;
use super::{mac, with_aad, Mode, Sealer, HEADER_LEN, MAC_LEN, MAX_COOKIE_LEN, VERSION};
use crate::claims::{Claims, ClaimsCore};
#[cfg(feature = "hyper")]
use crate::envelope_bytes::Envelope;
use crate::key::KeyId;
use crate::xaes::{NONCE_LEN, TAG_LEN};

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

impl Sealer {
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
    pub(super) fn open_decoded(
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
