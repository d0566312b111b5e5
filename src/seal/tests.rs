use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64_simd::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use super::*;
use crate::claims::Claims;
#[cfg(feature = "hyper")]
use crate::claims::ClaimsCore;
use crate::key::{Key, KeyId};

const NAME: &str = "session";

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Fixed claims: built from bytes, so the session id is fixed too.
fn fixed_claims() -> Claims {
    let mut c = Claims::new(
        t(1_800_000_000),
        Duration::from_secs(3600),
        Duration::from_secs(900),
    );
    c.set_user("alice", t(1_800_000_000));
    c.insert("cart", &["apple", "pear"]).unwrap();
    let mut bytes = c.to_bytes();
    bytes[..16].copy_from_slice(&[0x11; 16]);
    Claims::from_bytes(&bytes).unwrap()
}

fn sealer(mode: Mode) -> Sealer {
    Sealer::new(KeyRing::new(Key::from_bytes(&[0x42; 32]).unwrap()), mode)
}

const NOW: u64 = 1_800_000_100;

fn raw(value: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode_to_vec(value).unwrap()
}

fn value(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode_to_string(raw)
}

/// Envelope v1, frozen. These exact values must open, with these claims, in every later version.
/// Both were checked independently of this crate, with Python's `cryptography` package (AES-ECB
/// for the XAES key derivation, AESGCM, HMAC), from the byte layout in the README.
const GOLDEN_PRIVATE: &str = "AQHFYpNtc2VhbGVkLXNlc3Npb25zLWdvbGRlbiEhN0C5HQ1aT-A3UNUujwU0rIAdz0SEy3trztRYjB8uqTAM33zo3JE2WUkJgn6A0jAFtmqff89flBUI7XPCojTu1BB9i1_rIGVzA6lndAK7su2B1w";
const GOLDEN_SIGNED: &str = "AQLFYpNtEREREREREREREREREREREQEFYWxpY2WApKfaBoCkp9oGkMCn2gaEq6faBgEEY2FydBBbImFwcGxlIiwicGVhciJdas7BJycirM0YVpQ52AmkIYiv6izSQOQyJTuPnq5eLb4";

#[test]
fn golden_cookies_open_and_seal_identically() {
    let nonce = *b"sealed-sessions-golden!!";
    for (mode, golden) in [
        (Mode::Private, GOLDEN_PRIVATE),
        (Mode::Signed, GOLDEN_SIGNED),
    ] {
        let sealer = sealer(mode);
        let claims = fixed_claims();
        let (core, buf) = claims.parts();
        let sealed = sealer
            .seal_with_nonce(NAME, core, buf, &nonce, None)
            .unwrap()
            .0;
        assert_eq!(sealed, golden, "{mode:?}");
        let opened = sealer.open(NAME, golden, t(NOW)).unwrap();
        assert_eq!(opened.claims, fixed_claims());
        assert!(!opened.needs_reseal);
    }
}

#[test]
fn round_trip_in_both_modes_with_fresh_nonces() {
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = sealer(mode);
        let a = sealer.seal(NAME, &fixed_claims()).unwrap();
        let opened = sealer.open(NAME, &a, t(NOW)).unwrap();
        assert_eq!(opened.claims, fixed_claims());
        let b = sealer.seal(NAME, &fixed_claims()).unwrap();
        assert_eq!(a != b, mode == Mode::Private, "{mode:?}: nonces are random");
    }
}

#[test]
fn signed_mode_is_readable_and_private_mode_is_not() {
    let needle = b"apple";
    let signed = raw(&sealer(Mode::Signed).seal(NAME, &fixed_claims()).unwrap());
    let private = raw(&sealer(Mode::Private).seal(NAME, &fixed_claims()).unwrap());
    assert!(signed.windows(needle.len()).any(|w| w == needle));
    assert!(!private.windows(needle.len()).any(|w| w == needle));
}

/// The error a changed byte at `index` of the decoded envelope must give.
fn expected_error(index: usize, bytes: &[u8]) -> OpenError {
    match index {
        0 => OpenError::UnsupportedVersion(bytes[0]),
        1 => OpenError::WrongMode {
            expected: Mode::from_byte(bytes[1] ^ 0xff).unwrap(),
            found: bytes[1],
        },
        2..=5 => OpenError::UnknownKey(KeyId(bytes[2..6].try_into().unwrap())),
        _ => OpenError::Tampered,
    }
}

#[test]
fn every_changed_byte_is_rejected_with_the_right_error() {
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = sealer(mode);
        let good = raw(&sealer.seal(NAME, &fixed_claims()).unwrap());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            assert_eq!(
                sealer.open(NAME, &value(&bad), t(NOW)),
                Err(expected_error(i, &bad)),
                "{mode:?}, byte {i}"
            );
        }
    }
}

#[test]
fn every_changed_character_is_rejected() {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = sealer(mode);
        let good = sealer.seal(NAME, &fixed_claims()).unwrap();
        for i in 0..good.len() {
            for c in ALPHABET.chars().chain(['=', '+', '/', '.', ' ', 'é']) {
                let mut bad = good.clone();
                bad.replace_range(i..i + 1, c.encode_utf8(&mut [0; 4]));
                if bad != good {
                    assert!(sealer.open(NAME, &bad, t(NOW)).is_err(), "{mode:?} {i} {c}");
                }
            }
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = sealer(mode);
        let good = sealer.seal(NAME, &fixed_claims()).unwrap();
        for len in 0..good.len() {
            let err = sealer.open(NAME, &good[..len], t(NOW)).unwrap_err();
            // Short prefixes cannot hold a header; the rest fail authentication or decoding.
            assert!(
                matches!(err, OpenError::Malformed | OpenError::Tampered),
                "{mode:?} len {len}: {err:?}"
            );
        }
        assert!(sealer.open(NAME, &format!("{good}A"), t(NOW)).is_err());
    }
}

#[test]
fn a_cookie_under_another_name_is_tampered() {
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = sealer(mode);
        let good = sealer.seal(NAME, &fixed_claims()).unwrap();
        for other in ["", "Session", "session ", "sessio", "sessionx"] {
            assert_eq!(sealer.open(other, &good, t(NOW)), Err(OpenError::Tampered));
        }
    }
}

#[test]
fn signed_mac_input_is_unambiguous_between_name_and_claims() {
    // Without the length prefix in the AAD, MAC("ab" || P) == MAC("a" || "bP").
    let sealer = sealer(Mode::Signed);
    let good = raw(&sealer.seal("ab", &fixed_claims()).unwrap());
    let mut moved = good[..HEADER_LEN].to_vec();
    moved.push(b'b');
    moved.extend_from_slice(&good[HEADER_LEN..]);
    assert_eq!(
        sealer.open("a", &value(&moved), t(NOW)),
        Err(OpenError::Tampered)
    );
}

#[test]
fn a_cookie_of_the_other_mode_is_refused() {
    let private = sealer(Mode::Private).seal(NAME, &fixed_claims()).unwrap();
    let signed = sealer(Mode::Signed).seal(NAME, &fixed_claims()).unwrap();
    assert_eq!(
        sealer(Mode::Signed).open(NAME, &private, t(NOW)),
        Err(OpenError::WrongMode {
            expected: Mode::Signed,
            found: 1
        })
    );
    assert_eq!(
        sealer(Mode::Private).open(NAME, &signed, t(NOW)),
        Err(OpenError::WrongMode {
            expected: Mode::Private,
            found: 2
        })
    );
    // Relabelling the mode byte does not help either: the header is in the AAD.
    let mut relabelled = raw(&signed);
    relabelled[1] = 1;
    assert!(sealer(Mode::Private)
        .open(NAME, &value(&relabelled), t(NOW))
        .is_err());
}

#[test]
fn unknown_keys_old_keys_and_rotation() {
    let old = Key::from_bytes(&[0x42; 32]).unwrap();
    let new = Key::generate();
    for mode in [Mode::Private, Mode::Signed] {
        let old_cookie = sealer(mode).seal(NAME, &fixed_claims()).unwrap();

        let foreign = Sealer::new(KeyRing::new(new.clone()), mode);
        assert_eq!(
            foreign.open(NAME, &old_cookie, t(NOW)),
            Err(OpenError::UnknownKey(old.id()))
        );

        let mut ring = KeyRing::new(old.clone());
        ring.rotate(new.clone()).unwrap();
        let rotated = Sealer::new(ring, mode);
        let opened = rotated.open(NAME, &old_cookie, t(NOW)).unwrap();
        assert!(opened.needs_reseal);
        let resealed = rotated.seal(NAME, &opened.claims).unwrap();
        assert_eq!(raw(&resealed)[2..6], new.id().to_bytes());
        let again = rotated.open(NAME, &resealed, t(NOW)).unwrap();
        assert!(!again.needs_reseal);
        assert_eq!(again.claims, fixed_claims());
    }
}

#[test]
fn expired_cookies_are_refused_after_authentication() {
    let sealer = sealer(Mode::Private);
    let good = sealer.seal(NAME, &fixed_claims()).unwrap();
    let idle_end = 1_800_000_000 + 900;
    assert!(sealer.open(NAME, &good, t(idle_end - 1)).is_ok());
    assert_eq!(
        sealer.open(NAME, &good, t(idle_end)),
        Err(OpenError::Expired)
    );

    let mut long_idle = fixed_claims();
    long_idle.touch(t(1_800_003_000), Duration::from_secs(10_000));
    let good = sealer.seal(NAME, &long_idle).unwrap();
    assert!(sealer.open(NAME, &good, t(1_800_003_599)).is_ok());
    assert_eq!(
        sealer.open(NAME, &good, t(1_800_003_600)),
        Err(OpenError::Expired),
        "absolute expiry"
    );
}

#[test]
fn oversized_cookies_are_a_typed_error_at_the_exact_limit() {
    let sealer = sealer(Mode::Private).reserve_for_attributes(100);
    let mut claims = fixed_claims();
    let base = sealer.seal(NAME, &claims).unwrap();
    let line = |v: &str| NAME.len() + 1 + v.len() + 100;
    // Grow one string value a byte at a time across the limit.
    let mut filler = String::new();
    let mut last_ok = line(&base);
    loop {
        filler.push('x');
        claims.insert("filler", &filler).unwrap();
        match sealer.seal(NAME, &claims) {
            Ok(v) => {
                last_ok = line(&v);
                assert!(last_ok <= MAX_COOKIE_LEN);
            }
            Err(SealError::CookieTooLarge { size, limit }) => {
                assert_eq!(limit, MAX_COOKIE_LEN);
                assert!(size > MAX_COOKIE_LEN);
                // A cookie one base64 step shorter fitted.
                assert!(last_ok > MAX_COOKIE_LEN - 4, "{last_ok}");
                break;
            }
        }
    }
}

#[test]
fn junk_values_are_malformed_never_a_panic() {
    let sealer = sealer(Mode::Private);
    for junk in [
        "",
        "=",
        "a",
        "AQ",
        "AQEAAAAA",
        "!!!!",
        "AQEAAAAA==",
        &"A".repeat(5000),
    ] {
        assert!(sealer.open(NAME, junk, t(NOW)).is_err(), "{junk:?}");
    }
    assert_eq!(
        sealer.open(NAME, "AgEAAAAA", t(NOW)),
        Err(OpenError::UnsupportedVersion(2))
    );
}

prop_compose! {
    fn arb_claims()(
        user in proptest::option::of("[a-z0-9@.]{1,30}"),
        persistent in any::<bool>(),
        data in proptest::collection::btree_map("[a-z_]{1,12}", any::<(u32, String)>(), 0..6),
    ) -> Claims {
        let mut c = Claims::new(t(1_800_000_000), Duration::from_secs(3600), Duration::from_secs(900));
        if let Some(u) = user {
            c.set_user(u, t(1_800_000_000));
        }
        c.set_persistent(persistent);
        for (k, v) in data {
            c.insert(&k, &v).unwrap();
        }
        c
    }
}

#[cfg(feature = "hyper")]
impl Sealer {
    /// A value of its own, and what opening it would give if its envelope has at most
    /// `keep_up_to` bytes (what the middleware seals into its `Set-Cookie` line).
    fn as_opened(
        &self,
        name: &str,
        claims: &ClaimsCore,
        buf: &[u8],
        keep_up_to: usize,
    ) -> Result<(String, Option<AsOpened>), SealError> {
        let size = self.sealed_len(name, claims)?;
        let mut value = String::new();
        let kept = self.seal_core_into(name, (claims, size), buf, Some(keep_up_to), &mut value);
        // As long as said, unless the claims were paired with the wrong buffer (a bug, which
        // `claims_read_against_the_wrong_buffer_fail_closed` plants).
        if kept.is_some() {
            assert_eq!(value.len(), size.value_len);
        }
        Ok((value, kept))
    }
}

#[cfg(feature = "hyper")]
#[test]
fn sealed_as_opened_is_not_kept_when_too_long() {
    let sealer = sealer(Mode::Private);
    let claims = fixed_claims();
    let (core, buf) = claims.parts();
    let (value, kept) = sealer.as_opened(NAME, core, buf, usize::MAX).unwrap();
    let len = kept.unwrap().raw.len();
    assert_eq!(len, raw(&value).len());
    let (_, kept) = sealer.as_opened(NAME, core, buf, len).unwrap();
    assert!(kept.is_some(), "an envelope of exactly the limit is kept");
    let (_, kept) = sealer.as_opened(NAME, core, buf, len - 1).unwrap();
    assert!(kept.is_none());
}

/// Claims paired with a buffer they were not decoded from (a bug, were it ever to happen) seal
/// into a value that does not open, and are not remembered as opened.
#[cfg(feature = "hyper")]
#[test]
fn claims_read_against_the_wrong_buffer_fail_closed() {
    let sealer = sealer(Mode::Private);
    let claims = fixed_claims();
    let (core, _) = claims.parts();
    let (value, kept) = sealer.as_opened(NAME, core, &[], usize::MAX).unwrap();
    assert!(kept.is_none());
    assert!(sealer.open(NAME, &value, t(NOW)).is_err());
}

proptest! {
    #[test]
    fn prop_seal_open_round_trip(
        claims in arb_claims(),
        name in "[A-Za-z0-9_-]{1,80}",
        signed in any::<bool>(),
    ) {
        let sealer = sealer(if signed { Mode::Signed } else { Mode::Private });
        let value = sealer.seal(&name, &claims).unwrap();
        prop_assert_eq!(sealer.open(&name, &value, t(NOW)).unwrap().claims, claims);
    }

    #[test]
    fn prop_any_bit_flip_is_rejected(
        claims in arb_claims(),
        signed in any::<bool>(),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let sealer = sealer(if signed { Mode::Signed } else { Mode::Private });
        let mut bytes = raw(&sealer.seal(NAME, &claims).unwrap());
        let i = position.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(sealer.open(NAME, &value(&bytes), t(NOW)).is_err());
    }

    /// What the middleware remembers of a value it sealed (see `opened_cache.rs`) is exactly
    /// what opening that value gives: the same decrypted envelope and the same claims, for
    /// claims built by hand and for claims that were themselves opened.
    #[cfg(feature = "hyper")]
    #[test]
    fn prop_sealed_as_opened_is_what_open_gives(
        claims in arb_claims(),
        name in "[A-Za-z0-9_-]{1,80}",
        signed in any::<bool>(),
    ) {
        let sealer = sealer(if signed { Mode::Signed } else { Mode::Private });
        let reopened = sealer.open(&name, &sealer.seal(&name, &claims).unwrap(), t(NOW)).unwrap();
        for claims in [&claims, &reopened.claims] {
            let (core, buf) = claims.parts();
            let (value, kept) = sealer.as_opened(&name, core, buf, usize::MAX).unwrap();
            let kept = kept.unwrap();
            let mut decoded = raw(&value);
            let (opened, needs_reseal) = sealer.open_decoded(&name, &mut decoded, t(NOW)).unwrap();
            prop_assert!(!needs_reseal);
            prop_assert_eq!(&kept.raw, &decoded);
            prop_assert_eq!(kept.claims, opened);
        }
    }

    #[test]
    fn prop_arbitrary_text_never_opens(text in ".{0,400}") {
        prop_assert!(sealer(Mode::Private).open(NAME, &text, t(NOW)).is_err());
        prop_assert!(sealer(Mode::Signed).open(NAME, &text, t(NOW)).is_err());
    }
}
