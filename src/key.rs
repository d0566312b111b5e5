//! Keys: the 32-byte master secrets that seal cookies, and the ring that rotates them.
//!
//! A [`Key`] is a 32-byte master secret. Nothing uses it directly: at construction it is expanded
//! with HKDF-SHA256 (RFC 5869, no salt, one `info` label per use) into
//!
//! | label (`info`)                          | length | used for                              |
//! |-----------------------------------------|--------|---------------------------------------|
//! | `sealed-sessions/v1 xaes-256-gcm key`   | 32     | the XAES-256-GCM key (private mode)   |
//! | `sealed-sessions/v1 hmac-sha256 key`    | 32     | the HMAC-SHA256 key (signed mode)     |
//! | `sealed-sessions/v1 key id`             | 4      | the public [`KeyId`] in every cookie  |
//!
//! The design draft took the key id from `HMAC-SHA256(master, "key-id")`; deriving it with HKDF
//! like the other two keeps to one rule — the master secret feeds nothing but HKDF — at the same
//! cost, since the id is computed once per key.
//!
//! A [`KeyRing`] holds one primary key, which seals, and older keys, which only open. A cookie
//! names its key by id in its header, so opening picks exactly one key and never tries each in
//! turn ("trial decryption" would multiply the cost of a forged cookie by the ring size and blur
//! which key a cookie belongs to). Ids are checked for collisions when a key joins the ring, so a
//! bad configuration fails at start-up rather than at the first request.
//!
//! Secrets are zeroized when dropped and never appear in `Debug` output.

use std::fmt;

use base64_simd::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::xaes::Xaes256Gcm;

const LABEL_AEAD: &[u8] = b"sealed-sessions/v1 xaes-256-gcm key";
const LABEL_MAC: &[u8] = b"sealed-sessions/v1 hmac-sha256 key";
const LABEL_ID: &[u8] = b"sealed-sessions/v1 key id";

/// A 32-byte master secret from which the cookie keys are derived.
///
/// ```
/// use sealed_sessions::Key;
///
/// let key = Key::generate();
/// let text = key.to_base64(); // keep this in your secret store
/// let again = Key::from_base64(&text)?;
/// assert_eq!(key.id(), again.id());
///
/// // Too short a secret is refused when the key is made, not at the first request.
/// assert!(Key::from_bytes(b"hunter2").is_err());
/// # Ok::<(), sealed_sessions::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Key {
    master: Zeroizing<[u8; Key::LEN]>,
    id: KeyId,
}

/// The public 4-byte identifier of a [`Key`], written into every cookie's header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub(crate) [u8; 4]);

/// Why a key could not be made or added to a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is not exactly 32 bytes.
    #[error("a key is exactly 32 bytes of secret, got {len} bytes")]
    WrongLength {
        /// The length that was given.
        len: usize,
    },
    /// The text is not base64 (standard or URL-safe alphabet, padding optional).
    #[error("the key is not valid base64")]
    NotBase64,
    /// The ring already holds a key with this id: the same key twice, or (with odds of about one
    /// in four billion per pair) two keys whose ids collide.
    #[error("the key ring already holds a key with id {0}")]
    DuplicateKeyId(KeyId),
}

impl Key {
    /// The length of a master secret in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut master = Zeroizing::new([0u8; Self::LEN]);
        crate::random::fill_direct(master.as_mut());
        Self::from_array(master)
    }

    /// A key from exactly 32 bytes of secret.
    ///
    /// The bytes must come from a CSPRNG (for example [`Key::generate`] or
    /// `openssl rand -base64 32`); this is not a password-hashing function.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let master: [u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength { len: bytes.len() })?;
        Ok(Self::from_array(Zeroizing::new(master)))
    }

    /// A key from base64 text, as written by [`Key::to_base64`] or `openssl rand -base64 32`.
    ///
    /// Accepts the standard and the URL-safe alphabet, with or without padding, and ignores
    /// surrounding whitespace (a key file usually ends with a newline).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        // Padding is optional, but when present it must be what the length calls for (so
        // `…=====` or a padded length that is not a multiple of four is refused): check that,
        // drop it, and decode the unpadded form of either alphabet.
        let text = text.trim();
        let unpadded = text.trim_end_matches('=');
        let padding = text.len() - unpadded.len();
        if padding > 0 && (padding > 2 || text.len() % 4 != 0) {
            return Err(KeyError::NotBase64);
        }
        let text = unpadded;
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode_to_vec(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode_to_vec(text))
                .map_err(|_| KeyError::NotBase64)?,
        );
        Self::from_bytes(&bytes)
    }

    /// The secret as standard, padded base64 (44 characters). Treat the result as a secret.
    pub fn to_base64(&self) -> String {
        STANDARD.encode_to_string(self.master.as_ref())
    }

    /// The key's public id, as written into the header of the cookies it seals.
    pub fn id(&self) -> KeyId {
        self.id
    }

    fn from_array(master: Zeroizing<[u8; Self::LEN]>) -> Self {
        let mut id = [0u8; 4];
        expand(&master, LABEL_ID, &mut id);
        Key {
            master,
            id: KeyId(id),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyId {
    /// The id's four bytes, as they appear in a cookie header.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// HKDF-SHA256 expansion of the master secret under one label.
fn expand(master: &[u8; Key::LEN], label: &[u8], out: &mut [u8]) {
    // Expansion fails only for outputs longer than 255 * 32 bytes; ours are at most 32.
    let (_, hkdf) = Hkdf::<Sha256>::extract(None, master);
    if hkdf.expand(label, out).is_err() {
        unreachable!("HKDF-SHA256 output of {} bytes is within bounds", out.len());
    }
}

/// The keys derived from one master secret, ready to seal and open.
pub(crate) struct DerivedKeys {
    pub(crate) id: KeyId,
    pub(crate) aead: Xaes256Gcm,
    pub(crate) mac: Zeroizing<[u8; 32]>,
}

impl DerivedKeys {
    fn new(key: &Key) -> Self {
        let mut aead_key = Zeroizing::new([0u8; 32]);
        expand(&key.master, LABEL_AEAD, aead_key.as_mut());
        let mut mac = Zeroizing::new([0u8; 32]);
        expand(&key.master, LABEL_MAC, mac.as_mut());
        DerivedKeys {
            id: key.id,
            aead: Xaes256Gcm::new(&aead_key),
            mac,
        }
    }
}

/// One primary key that seals, plus older keys that still open cookies during a rotation.
///
/// ```
/// use sealed_sessions::{Key, KeyRing};
///
/// let old = Key::generate();
/// let new = Key::generate();
///
/// // Start-up after a rotation: the new key seals, the old one still opens.
/// let ring = KeyRing::new(new.clone()).with_old_key(old.clone())?;
/// assert_eq!(ring.primary_id(), new.id());
///
/// // The same key twice is a configuration error, reported at once.
/// assert!(KeyRing::new(new.clone()).with_old_key(new).is_err());
/// # Ok::<(), sealed_sessions::KeyError>(())
/// ```
pub struct KeyRing {
    // The primary is always `keys[0]`; the ring is a handful of keys, so a linear scan by id
    // beats any map.
    keys: Vec<DerivedKeys>,
}

impl KeyRing {
    /// A ring whose only key is `primary`.
    pub fn new(primary: Key) -> Self {
        KeyRing {
            keys: vec![DerivedKeys::new(&primary)],
        }
    }

    /// Adds a key that opens cookies but no longer seals them.
    pub fn with_old_key(mut self, key: Key) -> Result<Self, KeyError> {
        self.check_new(&key)?;
        self.keys.push(DerivedKeys::new(&key));
        Ok(self)
    }

    /// Makes `new` the primary key; the current primary keeps opening cookies as an old key,
    /// so sessions sealed with it survive and are re-sealed with `new` on their next response.
    pub fn rotate(&mut self, new: Key) -> Result<(), KeyError> {
        self.check_new(&new)?;
        self.keys.insert(0, DerivedKeys::new(&new));
        Ok(())
    }

    /// Stops accepting cookies sealed with the key `id` (an old key past its grace period).
    /// Returns whether such an old key was in the ring; the primary cannot be retired.
    pub fn retire(&mut self, id: KeyId) -> bool {
        match self.keys[1..].iter().position(|k| k.id == id) {
            Some(i) => {
                self.keys.remove(i + 1);
                true
            }
            None => false,
        }
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> KeyId {
        self.keys[0].id
    }

    /// The ids of all keys, primary first.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub(crate) fn primary(&self) -> &DerivedKeys {
        &self.keys[0]
    }

    /// The key with this id, if any: one comparison per key, never a trial decryption.
    pub(crate) fn get(&self, id: KeyId) -> Option<&DerivedKeys> {
        self.keys.iter().find(|k| k.id == id)
    }

    fn check_new(&self, key: &Key) -> Result<(), KeyError> {
        match self.get(key.id) {
            Some(_) => Err(KeyError::DuplicateKeyId(key.id)),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &self.primary_id())
            .field(
                "old",
                &self.keys[1..].iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_other_than_32_are_refused() {
        for len in [0, 1, 16, 31, 33, 64] {
            assert_eq!(
                Key::from_bytes(&vec![7; len]).unwrap_err(),
                KeyError::WrongLength { len }
            );
        }
        assert!(Key::from_bytes(&[7; 32]).is_ok());
    }

    #[test]
    fn base64_forms_are_accepted_and_junk_is_not() {
        let key = Key::from_bytes(&[0xfb; 32]).unwrap();
        let standard = key.to_base64();
        assert_eq!(standard, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=");
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            standard.replace('+', "-").replace('/', "_"),
            format!("  {standard}\n"),
        ] {
            assert_eq!(Key::from_base64(&text).unwrap().id(), key.id(), "{text:?}");
        }
        for junk in [
            "not base64!".to_owned(),
            format!("{standard}="),
            format!("{standard}===="),
            standard.replace('+', "-"),
        ] {
            assert_eq!(
                Key::from_base64(&junk).unwrap_err(),
                KeyError::NotBase64,
                "{junk:?}"
            );
        }
        assert_eq!(
            Key::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::WrongLength { len: 5 }
        );
    }

    #[test]
    fn key_id_is_the_hkdf_label_output_and_is_stable() {
        // Frozen: changing the derivation would orphan every cookie in the field.
        let key = Key::from_bytes(&[0x01; 32]).unwrap();
        let mut expected = [0u8; 4];
        Hkdf::<Sha256>::new(None, &[0x01; 32])
            .expand(b"sealed-sessions/v1 key id", &mut expected)
            .unwrap();
        assert_eq!(key.id().to_bytes(), expected);
        assert_ne!(key.id(), Key::from_bytes(&[0x02; 32]).unwrap().id());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = Key::from_bytes(&[0xab; 32]).unwrap();
        let ring = KeyRing::new(key.clone());
        for text in [format!("{key:?}"), format!("{ring:?}"), format!("{key:#?}")] {
            assert!(!text.contains("ab, ") && !text.contains("abab"), "{text}");
            assert!(!text.contains(&key.to_base64()), "{text}");
            assert!(text.contains(&key.id().to_string()), "{text}");
        }
    }

    #[test]
    fn ring_rotation_retirement_and_duplicates() {
        let (a, b, c) = (Key::generate(), Key::generate(), Key::generate());
        let mut ring = KeyRing::new(a.clone()).with_old_key(b.clone()).unwrap();
        assert_eq!(
            ring.rotate(b.clone()).unwrap_err(),
            KeyError::DuplicateKeyId(b.id())
        );
        ring.rotate(c.clone()).unwrap();
        assert_eq!(ring.ids().collect::<Vec<_>>(), [c.id(), a.id(), b.id()]);
        assert!(!ring.retire(c.id()), "the primary cannot be retired");
        assert!(ring.retire(b.id()));
        assert!(!ring.retire(b.id()));
        assert!(ring.get(b.id()).is_none());
        assert_eq!(ring.ids().collect::<Vec<_>>(), [c.id(), a.id()]);
    }
}
