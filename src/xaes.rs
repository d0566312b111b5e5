//! XAES-256-GCM: AES-256-GCM with a 192-bit random nonce, per the C2SP specification
//! (<https://c2sp.org/XAES-256-GCM>).
//!
//! # Why not plain AES-256-GCM
//!
//! With random 96-bit nonces, AES-256-GCM stays within the usual 2^-32 collision bound for only
//! about 2^32 messages per key. A session cookie is re-sealed on every write and on every idle
//! refresh, so a busy site could get there in days, and a repeated nonce under GCM leaks the
//! authentication key. XAES-256-GCM derives a fresh AES-256-GCM key from the first 12 bytes of a
//! 24-byte nonce and uses the last 12 as the GCM nonce, which makes random nonces safe for about
//! 2^80 messages per key, at the price of two AES block encryptions and one extra GCM key setup
//! per message.
//!
//! # Construction
//!
//! ```text
//! L  = AES-256_K(0^128)                          precomputed once per key
//! K1 = L << 1, xor 0x87 into the last byte if the top bit of L was 1   precomputed
//! M1 = 00 01 58 00 || N[0..12],   M2 = 00 02 58 00 || N[0..12]
//! Kx = AES-256_K(M1 xor K1) || AES-256_K(M2 xor K1),   Nx = N[12..24]
//! output = AES-256-GCM(key = Kx, nonce = Nx) over the plaintext and associated data
//! ```
//!
//! Only the `aes` and `aes-gcm` crates do block-cipher and GHASH work; this file only wires them
//! together. The AES key schedule of `K` is kept (and zeroized on drop by the `aes` crate); the
//! per-message key `Kx` is wiped as soon as the GCM instance has been built from it, and the
//! instance's AES key schedule when it is dropped (the `aes` crate again).
//!
//! One value is not wiped: the instance's GHASH key, `H = AES-256_Kx(0^128)`, inside `polyval`
//! 0.6, whose CPU-dispatch wrapper (x86-64, AArch64) has no `Drop`, and whose backends' own
//! `Drop` needs a `zeroize` feature that `aes-gcm` 0.10 does not pass on. It stays in the
//! dropped stack frame until the stack is reused. Whoever reads it can forge tags under that one
//! derived key (cookies whose nonce starts with the same 12 bytes), nothing more; wiping it needs
//! `unsafe` here, which the crate forbids, or a `polyval` that wipes its state. A reader of this
//! process's memory finds the master key's schedule anyway, which lives as long as the ring.
//!
//! `ring`'s assembly AES-GCM was measured in place of `aes-gcm` and not taken: its aggregated
//! GHASH is cheaper, but its per-key setup more than undoes that on a cookie-sized message
//! (+115 instructions a seal), and it zeroizes no key (`docs/performance.md`, issue 26, third
//! part).

use aes::cipher::consts::U12;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256Enc;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::AesGcm;
use zeroize::{Zeroize, Zeroizing};

/// Length of an XAES-256-GCM nonce in bytes.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the authentication tag in bytes.
pub(crate) const TAG_LEN: usize = 16;

/// AES-256-GCM over the encryption half of AES: GCM never runs the block cipher backwards, so
/// the per-message key needs no decryption key schedule (`aes_gcm::Aes256Gcm` builds one, and
/// carries it around: about 450 instructions of key expansion and copying per message).
type Gcm = AesGcm<Aes256Enc, U12>;

/// An XAES-256-GCM key, with the per-key values of the construction precomputed.
pub(crate) struct Xaes256Gcm {
    cipher: Aes256Enc,
    k1: Zeroizing<[u8; 16]>,
}

/// Authentication failed: wrong key, wrong associated data, or a modified ciphertext or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

impl Xaes256Gcm {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let cipher = Aes256Enc::new(GenericArray::from_slice(key));
        let mut l = GenericArray::default();
        cipher.encrypt_block(&mut l);
        let mut k1 = Zeroizing::new([0u8; 16]);
        let mut carry = 0u8;
        for i in (0..16).rev() {
            k1[i] = (l[i] << 1) | carry;
            carry = l[i] >> 7;
        }
        // Branch-free, so the key's top bit does not show in timing.
        k1[15] ^= 0x87 & carry.wrapping_neg();
        l.zeroize();
        Xaes256Gcm { cipher, k1 }
    }

    /// Derives the AES-256-GCM instance for one message from the first half of its nonce, and
    /// runs `f` with it. (Lent rather than returned: the instance holds an AES key schedule,
    /// about a kilobyte, which every move copies.)
    fn with_derived<R>(&self, nonce: &[u8; NONCE_LEN], f: impl FnOnce(&Gcm) -> R) -> R {
        let mut blocks = [GenericArray::default(), GenericArray::default()];
        for (counter, block) in (1u8..=2).zip(blocks.iter_mut()) {
            block[..4].copy_from_slice(&[0x00, counter, 0x58, 0x00]);
            block[4..].copy_from_slice(&nonce[..12]);
            for (b, k) in block.iter_mut().zip(self.k1.iter()) {
                *b ^= k;
            }
        }
        self.cipher.encrypt_blocks(&mut blocks);
        let mut kx = GenericArray::default();
        kx[..16].copy_from_slice(&blocks[0]);
        kx[16..].copy_from_slice(&blocks[1]);
        let aead = Gcm::new(&kx);
        kx.zeroize();
        blocks[0].zeroize();
        blocks[1].zeroize();
        f(&aead)
    }

    /// Encrypts `buffer` in place and returns the tag.
    pub(crate) fn encrypt_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let tag = self.with_derived(nonce, |gcm| {
            gcm.encrypt_in_place_detached(GenericArray::from_slice(&nonce[12..]), aad, buffer)
        });
        // aes-gcm refuses only inputs longer than 2^36 bytes; a cookie is capped at 4 KiB before
        // it gets here, so this branch cannot be taken. Returning a zero tag would still fail
        // to open rather than leak anything.
        tag.map(Into::into).unwrap_or([0u8; TAG_LEN])
    }

    /// Checks the tag (in constant time, inside `aes-gcm`) and decrypts `buffer` in place.
    pub(crate) fn decrypt_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), TagMismatch> {
        self.with_derived(nonce, |gcm| {
            gcm.decrypt_in_place_detached(
                GenericArray::from_slice(&nonce[12..]),
                aad,
                buffer,
                GenericArray::from_slice(tag),
            )
        })
        .map_err(|_| TagMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &[u8; 24] = b"ABCDEFGHIJKLMNOPQRSTUVWX";

    fn seal(key: u8, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let xaes = Xaes256Gcm::new(&[key; 32]);
        let mut buf = plaintext.to_vec();
        let tag = xaes.encrypt_in_place(NONCE, aad, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn c2sp_vector_1_with_intermediate_values() {
        let xaes = Xaes256Gcm::new(&[0x01; 32]);
        let mut l = GenericArray::default();
        xaes.cipher.encrypt_block(&mut l);
        assert_eq!(hex::encode(l), "7298caa565031eadc6ce23d23ea66378");

        let expected_kx =
            hex::decode("c8612c9ed53fe43e8e005b828a1631a0bbcb6ab2f46514ec4f439fcfd0fa969b")
                .unwrap();
        let reference = aes_gcm::Aes256Gcm::new(GenericArray::from_slice(&expected_kx));
        // Two GCM instances agree on every output only if their keys are equal.
        let mut a = *b"probe";
        let mut b = a;
        let nx = GenericArray::from_slice(&NONCE[12..]);
        let ta = xaes
            .with_derived(NONCE, |gcm| gcm.encrypt_in_place_detached(nx, b"", &mut a))
            .unwrap();
        let tb = reference
            .encrypt_in_place_detached(nx, b"", &mut b)
            .unwrap();
        assert_eq!((a, ta), (b, tb));

        assert_eq!(
            hex::encode(seal(0x01, b"", b"XAES-256-GCM")),
            "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"
        );
    }

    #[test]
    fn c2sp_vector_2_with_associated_data() {
        assert_eq!(
            hex::encode(seal(0x03, b"c2sp.org/XAES-256-GCM", b"XAES-256-GCM")),
            "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"
        );
    }

    /// C2SP's accumulated randomized test: `iterations` messages whose key, nonce, plaintext
    /// and associated data (each up to 255 bytes) come from one SHAKE-128 stream of the empty
    /// input, each sealed, its ciphertext and tag hashed by a second SHAKE-128, and opened again.
    fn accumulated(iterations: usize) -> String {
        use sha3::digest::{ExtendableOutput, Update, XofReader};
        let mut stream = sha3::Shake128::default().finalize_xof();
        let mut hash = sha3::Shake128::default();
        let mut read = |n: usize| {
            let mut bytes = vec![0u8; n];
            stream.read(&mut bytes);
            bytes
        };
        for _ in 0..iterations {
            let key: [u8; 32] = read(32).try_into().unwrap();
            let nonce: [u8; NONCE_LEN] = read(NONCE_LEN).try_into().unwrap();
            let len = read(1)[0];
            let plaintext = read(len.into());
            let len = read(1)[0];
            let aad = read(len.into());
            let xaes = Xaes256Gcm::new(&key);
            let mut buf = plaintext.clone();
            let tag = xaes.encrypt_in_place(&nonce, &aad, &mut buf);
            hash.update(&buf);
            hash.update(&tag);
            assert_eq!(xaes.decrypt_in_place(&nonce, &aad, &mut buf, &tag), Ok(()));
            assert_eq!(buf, plaintext);
        }
        let mut out = [0u8; 32];
        hash.finalize_xof().read(&mut out);
        hex::encode(out)
    }

    #[test]
    fn c2sp_accumulated_10_000() {
        assert_eq!(
            accumulated(10_000),
            "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"
        );
    }

    /// A million messages take minutes in a debug build: run it optimized,
    /// `cargo test --release --lib xaes -- --ignored`.
    #[test]
    #[ignore = "a million messages; run with --release --ignored"]
    fn c2sp_accumulated_1_000_000() {
        assert_eq!(
            accumulated(1_000_000),
            "2163ae1445985a30b60585ee67daa55674df06901b890593e824b8a7c885ab15"
        );
    }

    #[test]
    fn open_checks_key_nonce_aad_and_every_byte() {
        let xaes = Xaes256Gcm::new(&[0x01; 32]);
        let sealed = seal(0x01, b"aad", b"XAES-256-GCM");
        let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag: &[u8; TAG_LEN] = tag.try_into().unwrap();

        let mut buf = ct.to_vec();
        assert_eq!(xaes.decrypt_in_place(NONCE, b"aad", &mut buf, tag), Ok(()));
        assert_eq!(buf, b"XAES-256-GCM");

        let mut buf = ct.to_vec();
        assert!(xaes.decrypt_in_place(NONCE, b"aaD", &mut buf, tag).is_err());
        let mut other_nonce = *NONCE;
        other_nonce[0] ^= 1; // only the key-derivation half changed
        let mut buf = ct.to_vec();
        assert!(xaes
            .decrypt_in_place(&other_nonce, b"aad", &mut buf, tag)
            .is_err());
        let mut buf = ct.to_vec();
        assert!(Xaes256Gcm::new(&[0x02; 32])
            .decrypt_in_place(NONCE, b"aad", &mut buf, tag)
            .is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            let (ct, tag) = bad.split_at(bad.len() - TAG_LEN);
            let mut buf = ct.to_vec();
            assert!(xaes
                .decrypt_in_place(NONCE, b"aad", &mut buf, tag.try_into().unwrap())
                .is_err());
        }
    }
}
