//! Encoding round trips, canonical-form refusals, expiry, and `Debug` redaction.

use std::time::UNIX_EPOCH;

use proptest::prelude::*;

use super::*;

fn sample() -> Claims {
    let mut c = Claims::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        Duration::from_secs(3600),
        Duration::from_secs(900),
    );
    c.set_user("alice", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    c.insert("cart", &["apple", "pear"]).unwrap();
    c.insert("n", &7u32).unwrap();
    c
}

#[test]
fn round_trip_and_exact_length() {
    let c = sample();
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), c.core.encoded_len());
    assert_eq!(Claims::from_bytes(&bytes).unwrap(), c);
    assert_eq!(c.get::<u32>("n").unwrap(), Some(7));
    assert!(c.get::<String>("n").is_err(), "wrong type is an error");
    assert_eq!(c.get::<u32>("missing").unwrap(), None);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample().to_bytes();
    for len in 0..bytes.len() {
        assert!(Claims::from_bytes(&bytes[..len]).is_err(), "length {len}");
    }
}

#[test]
fn non_canonical_inputs_are_refused() {
    let good = sample().to_bytes();
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Claims::from_bytes(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );

    let mut flags = good.clone();
    flags[16] |= 0b100;
    assert_eq!(
        Claims::from_bytes(&flags),
        Err(DecodeError::UnknownFlags(0b101))
    );

    // Swap the order of two keys by hand: "cart" then "n" becomes "n" then "cart".
    let mut c = Claims::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
    c.insert("b", &1).unwrap();
    let mut unsorted = c.to_bytes();
    let count_at = unsorted.len() - 5; // count, len("b"), "b", len("1"), "1"
    assert_eq!(unsorted[count_at], 1);
    unsorted[count_at] = 2;
    unsorted.extend_from_slice(&[1, b'a', 1, b'2']);
    assert_eq!(
        Claims::from_bytes(&unsorted),
        Err(DecodeError::UnsortedKeys)
    );
    let dup_at = unsorted.len() - 3;
    unsorted[dup_at] = b'b';
    assert_eq!(
        Claims::from_bytes(&unsorted),
        Err(DecodeError::UnsortedKeys)
    );
}

#[test]
fn expiry_and_touch() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
    let mut c = Claims::new(t0, Duration::from_secs(100), Duration::from_secs(30));
    assert!(!c.is_expired(t0 + Duration::from_secs(29)));
    assert!(c.is_expired(t0 + Duration::from_secs(30)));
    c.touch(t0 + Duration::from_secs(20), Duration::from_secs(30));
    assert!(!c.is_expired(t0 + Duration::from_secs(49)));
    c.touch(t0 + Duration::from_secs(90), Duration::from_secs(30));
    assert_eq!(
        c.idle_deadline(),
        c.expires_at(),
        "capped at the absolute expiry"
    );
    assert!(c.is_expired(t0 + Duration::from_secs(100)));
}

#[test]
fn debug_hides_values() {
    let mut c = sample();
    c.insert("csrf", "s3cr3t-token").unwrap();
    let text = format!("{c:?}");
    assert!(text.contains("csrf") && !text.contains("s3cr3t"), "{text}");
}

prop_compose! {
    fn arb_claims()(
        user in proptest::option::of(".{0,40}"),
        times in proptest::array::uniform4(any::<u64>()),
        persistent in any::<bool>(),
        data in proptest::collection::btree_map(".{0,20}", any::<(i64, String, Vec<u8>)>(), 0..8),
    ) -> Claims {
        let mut c = Claims::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
        if let Some(u) = user {
            c.set_user(u, UNIX_EPOCH);
        }
        [c.core.issued_at, c.core.auth_time, c.core.expires_at, c.core.idle_deadline] = times;
        c.set_persistent(persistent);
        for (k, v) in data {
            c.insert(&k, &v).unwrap();
        }
        c
    }
}

proptest! {
    #[test]
    fn prop_round_trip(c in arb_claims()) {
        let bytes = c.to_bytes();
        prop_assert_eq!(bytes.len(), c.core.encoded_len());
        prop_assert_eq!(Claims::from_bytes(&bytes).unwrap(), c);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic_and_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Canonical form: whatever decodes must encode back to the very same bytes.
        if let Ok(c) = Claims::from_bytes(&bytes) {
            prop_assert_eq!(c.to_bytes(), bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// `refresh_due` is the gain a touch would bring, measured, compared with `refresh_after`.
    #[test]
    fn refresh_due_is_the_measured_gain_compared(
        now_ms in 0u64..4_000_000_000_000,
        expires in 0u64..4_000_000_000,
        deadline in 0u64..4_000_000_000,
        idle_ms in 0u64..1_000_000_000,
        after_ms in 0u64..1_000_000_000,
        shape in 0u8..3,
    ) {
        let mut c = ClaimsCore::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
        c.expires_at = expires;
        c.idle_deadline = deadline;
        let mut now_ms = now_ms;
        match shape {
            // A deadline close to `now` and to `expires`.
            1 => c.idle_deadline = (now_ms / 1000).min(expires),
            // `now` exactly where the gain reaches `refresh_after`, or a millisecond before.
            2 => {
                let at = (deadline * 1000 + after_ms).checked_sub(idle_ms);
                now_ms = at.map_or(0, |at| at - u64::from(now_ms % 2 == 1 && at > 0));
            }
            _ => {}
        }
        let now = UNIX_EPOCH + Duration::from_millis(now_ms);
        let (idle, after) = (Duration::from_millis(idle_ms), Duration::from_millis(after_ms));
        let measured = (now + idle)
            .min(c.expires_at())
            .duration_since(c.idle_deadline())
            .is_ok_and(|gain| gain >= after);
        prop_assert_eq!(c.refresh_due(now, idle, after), measured);
    }
}
