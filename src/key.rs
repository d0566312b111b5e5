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

use base64_simd::{Out, STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
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
///
/// The messages say what to do, and never show the secret, nor any part of the text that was
/// given as one. `Debug` prints the same message, so that `fn main() -> Result<(), Box<dyn
/// Error>>` reads well when a key is missing at start-up:
///
/// ```
/// use sealed_sessions::{Key, KeyError};
///
/// let err = Key::parse("c2hvcnQ=").unwrap_err(); // "short"
/// assert_eq!(err, KeyError::WrongLength { len: 5 });
/// assert!(format!("{err:?}").contains("openssl rand -base64 32"));
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is not exactly 32 bytes.
    #[error("a key is exactly 32 bytes of secret, got {len} bytes ({MAKE_ONE})")]
    WrongLength {
        /// The length that was given.
        len: usize,
    },
    /// The text is neither base64 (standard or URL-safe alphabet, padding optional) nor 64 hex
    /// digits.
    #[error("the key is neither base64 nor 64 hex digits ({MAKE_ONE})")]
    NotBase64,
    /// [`Key::from_base64`] was given 64 hex digits, as `openssl rand -hex 32` prints: read them
    /// with [`Key::from_hex`] or [`Key::parse`], which take either form.
    #[error(
        "the key is 64 hex digits, not base64: read it with Key::parse or Key::from_hex \
         (as base64 it would be 48 bytes)"
    )]
    HexNotBase64,
    /// The environment variable that should hold the key is not set (or is empty).
    #[error("the environment variable {var} is not set or empty: {MAKE_ONE}, and set {var} to it")]
    EnvNotSet {
        /// The variable's name.
        var: String,
    },
    /// The environment variable's value is not a key.
    #[error("the environment variable {var} does not hold a key: {reason}")]
    InEnv {
        /// The variable's name.
        var: String,
        /// What is wrong with its value.
        reason: Box<KeyError>,
    },
    /// The ring already holds a key with this id: the same key twice, or (with odds of about one
    /// in four billion per pair) two keys whose ids collide.
    #[error("the key ring already holds a key with id {0}")]
    DuplicateKeyId(KeyId),
}

/// How to make a key, for the error messages.
const MAKE_ONE: &str = "make one with `openssl rand -base64 32` or `sealed-sessions keygen`";

impl fmt::Debug for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message, which names the variant's data; see the type's docs.
        fmt::Display::fmt(self, f)
    }
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
    /// surrounding whitespace (a key file usually ends with a newline). [`Key::parse`] takes hex
    /// as well.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if is_hex_key(text) {
            return Err(KeyError::HexNotBase64);
        }
        // Padding is optional, but when present it must be what the length calls for (so
        // `…=====` or a padded length that is not a multiple of four is refused): check that,
        // drop it, and decode the unpadded form of either alphabet.
        let unpadded = text.trim_end_matches('=');
        let padding = text.len() - unpadded.len();
        if padding > 0 && (padding > 2 || text.len() % 4 != 0) {
            return Err(KeyError::NotBase64);
        }
        let mut master = Zeroizing::new([0u8; Self::LEN]);
        decode_base64_into(unpadded.as_bytes(), &mut master)?;
        Ok(Self::from_array(master))
    }

    /// A key from 64 hex digits, as `openssl rand -hex 32` prints; either case, surrounding
    /// whitespace ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim().as_bytes();
        if !text.iter().all(u8::is_ascii_hexdigit) {
            return Err(KeyError::NotBase64);
        }
        if text.len() != 2 * Self::LEN {
            return Err(KeyError::WrongLength {
                len: text.len() / 2,
            });
        }
        let mut master = Zeroizing::new([0u8; Self::LEN]);
        for (byte, pair) in master.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
        }
        Ok(Self::from_array(master))
    }

    /// A key from text in either form a key is usually kept in: 64 hex digits (`openssl rand
    /// -hex 32`) or base64 (`openssl rand -base64 32`, [`Key::to_base64`], `sealed-sessions
    /// keygen`). Also available as `text.parse::<Key>()`.
    ///
    /// ```
    /// use sealed_sessions::Key;
    ///
    /// let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    /// let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    /// assert_eq!(Key::parse(hex)?.id(), Key::parse(b64)?.id());
    /// # Ok::<(), sealed_sessions::KeyError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        // 64 hex digits are never a 32-byte key in base64 (that is 43 or 44 characters), so the
        // two forms cannot be confused.
        if is_hex_key(text.trim()) {
            Self::from_hex(text)
        } else {
            Self::from_base64(text)
        }
    }

    /// The key in the environment variable `var`, in either form [`Key::parse`] reads.
    ///
    /// The errors name the variable and say how to make a key; they never show its value.
    ///
    /// ```no_run
    /// # #[cfg(feature = "hyper")] {
    /// use sealed_sessions::{Key, SessionConfig};
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     // SESSION_KEY=$(openssl rand -base64 32)
    ///     let config = SessionConfig::builder(Key::from_env("SESSION_KEY")?).build()?;
    ///     # let _ = config;
    ///     Ok(())
    /// }
    /// # }
    /// ```
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        Self::parse(&env_value(var)?).map_err(|reason| KeyError::InEnv {
            var: var.to_owned(),
            reason: Box::new(reason),
        })
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

impl std::str::FromStr for Key {
    type Err = KeyError;

    /// See [`Key::parse`].
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

/// Decodes unpadded base64 of either alphabet into `out`, which the secret is written to and
/// nowhere else: the text is checked and its length computed before anything is decoded, so no
/// buffer of the decoder's own (which would be freed without being zeroized, on a failed decode
/// too) ever holds a byte of it. `out` may hold a partial decode on an error; the caller's
/// [`Zeroizing`] wipes it.
fn decode_base64_into(text: &[u8], out: &mut [u8; Key::LEN]) -> Result<(), KeyError> {
    let alphabet = [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .into_iter()
        .find(|alphabet| alphabet.check(text).is_ok())
        .ok_or(KeyError::NotBase64)?;
    let len = alphabet
        .decoded_length(text)
        .map_err(|_| KeyError::NotBase64)?;
    if len != Key::LEN {
        return Err(KeyError::WrongLength { len });
    }
    alphabet
        .decode(text, Out::from_slice(out))
        .map_err(|_| KeyError::NotBase64)?;
    Ok(())
}

/// 64 hex digits: the form `openssl rand -hex 32` prints.
fn is_hex_key(text: &str) -> bool {
    text.len() == 2 * Key::LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// The value of `var`, in a buffer zeroized when dropped; unset, empty or not Unicode is
/// [`KeyError::EnvNotSet`] or [`KeyError::InEnv`]. A value that is not Unicode is zeroized
/// too: it may be a key with a stray byte.
fn env_value(var: &str) -> Result<Zeroizing<String>, KeyError> {
    let not_set = || KeyError::EnvNotSet {
        var: var.to_owned(),
    };
    let value = std::env::var_os(var).ok_or_else(not_set)?;
    match value.into_string() {
        Ok(value) => {
            let value = Zeroizing::new(value);
            if value.trim().is_empty() {
                Err(not_set())
            } else {
                Ok(value)
            }
        }
        Err(value) => {
            drop(Zeroizing::new(value.into_encoded_bytes()));
            Err(KeyError::InEnv {
                var: var.to_owned(),
                reason: Box::new(KeyError::NotBase64),
            })
        }
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

    /// The keys in the environment variable `var`: the primary first, then the old keys that
    /// still open cookies, separated by whitespace or commas, each in either form [`Key::parse`]
    /// reads. To rotate, put the new key in front; once the old one's cookies have expired, drop
    /// it from the list.
    ///
    /// ```no_run
    /// # #[cfg(feature = "hyper")] {
    /// use sealed_sessions::{KeyRing, SessionConfig};
    ///
    /// // SESSION_KEYS="$(openssl rand -base64 32) $OLD_KEY"
    /// let config = SessionConfig::builder(KeyRing::from_env("SESSION_KEYS")?).build()?;
    /// # let _ = config;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = env_value(var)?;
        let in_env = |reason| KeyError::InEnv {
            var: var.to_owned(),
            reason: Box::new(reason),
        };
        let mut keys = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(|k| Key::parse(k).map_err(in_env));
        let Some(primary) = keys.next() else {
            return Err(KeyError::EnvNotSet {
                var: var.to_owned(),
            });
        };
        keys.try_fold(KeyRing::new(primary?), |ring, key| {
            ring.with_old_key(key?).map_err(in_env)
        })
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

/// A ring whose only key is this one, so that a single key can go where a ring is asked for.
impl From<Key> for KeyRing {
    fn from(primary: Key) -> Self {
        KeyRing::new(primary)
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
    fn hex_keys_are_read_and_recognised() {
        let key = Key::from_bytes(&[0xab; 32]).unwrap();
        let hex = "ab".repeat(32);
        for text in [hex.clone(), hex.to_uppercase(), format!(" {hex}\n")] {
            assert_eq!(Key::from_hex(&text).unwrap().id(), key.id(), "{text:?}");
            assert_eq!(Key::parse(&text).unwrap().id(), key.id(), "{text:?}");
            assert_eq!(text.parse::<Key>().unwrap().id(), key.id(), "{text:?}");
        }
        // `openssl rand -hex 32` given to the base64 reader: named, not "48 bytes".
        assert_eq!(Key::from_base64(&hex).unwrap_err(), KeyError::HexNotBase64);
        assert_eq!(
            Key::from_hex(&"ab".repeat(31)).unwrap_err(),
            KeyError::WrongLength { len: 31 }
        );
        assert_eq!(
            Key::from_hex(&"zz".repeat(32)).unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(Key::from_hex("é").unwrap_err(), KeyError::NotBase64);
        assert_eq!(Key::parse(&key.to_base64()).unwrap().id(), key.id());
    }

    // The environment's cases are in tests/keys.rs, a process of their own: `set_var` must not
    // run beside other test threads.

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
