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

/// The refresh rule before issue 21: refresh only if the deadline would move by at least
/// `refresh_after`. Kept to show what the property below catches.
fn old_refresh_due(c: &ClaimsCore, now: SystemTime, idle: Duration, after: Duration) -> bool {
    (now + idle)
        .min(c.expires_at())
        .duration_since(c.idle_deadline())
        .is_ok_and(|gain| gain >= after)
}

/// What went wrong in a simulated run of requests.
#[derive(Debug, PartialEq)]
enum Run {
    /// The session ended at its idle deadline before its absolute end, the user active.
    LostEarly { at_ms: u64 },
    /// Two re-seals closer together than the throttle allows.
    ResealedTooSoon { first_ms: u64, then_ms: u64 },
}

/// Signs in at `start_ms` and makes a request after each of `gaps_ms`, re-sealing (as
/// `save.rs` does) whenever `due` says so, until the absolute end. Checks that every request
/// before the absolute end finds the session alive, and that each re-seal comes at least
/// `max(after, 1 s)` after the whole second of the one before (times are sealed in seconds).
fn simulate(
    due: impl Fn(&ClaimsCore, SystemTime, Duration, Duration) -> bool,
    start_ms: u64,
    lifetime: Duration,
    idle: Duration,
    after: Duration,
    gaps_ms: &[u64],
) -> Result<(), Run> {
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    let mut c = ClaimsCore::new(at(start_ms), lifetime, idle);
    let (mut now_ms, mut sealed_ms) = (start_ms, start_ms);
    for gap in gaps_ms {
        now_ms += gap;
        let now = at(now_ms);
        if now >= c.expires_at() {
            break;
        }
        if c.is_expired(now) {
            return Err(Run::LostEarly { at_ms: now_ms });
        }
        if due(&c, now, idle, after) {
            let floor = sealed_ms / 1000 * 1000;
            if u128::from(now_ms - floor) < after.max(Duration::from_secs(1)).as_millis() {
                return Err(Run::ResealedTooSoon {
                    first_ms: sealed_ms,
                    then_ms: now_ms,
                });
            }
            c.touch(now, idle);
            sealed_ms = now_ms;
        }
    }
    Ok(())
}

/// The case: a remembered session (30 days, 7 idle, refreshed after 42 h) whose last
/// refresh left its idle deadline 12 h before the absolute end. The user comes back every 10
/// hours; the old rule never refreshes again (the deadline could move by 12 h, less than 42),
/// so the session ends 12 h early. The new rule refreshes once, to the absolute end.
#[test]
fn an_active_remembered_session_lasts_to_its_absolute_end() {
    let hour = 3_600_000;
    let day = 24 * 3600;
    let (lifetime, idle) = (Duration::from_secs(30 * day), Duration::from_secs(7 * day));
    let after = idle / 4;
    assert_eq!(after, Duration::from_secs(42 * 3600));
    // Every 45 hours to day 22.5 (each request a refresh, to day 29.5), then every 10 hours.
    let mut gaps = vec![45 * hour; 12];
    gaps.extend([10 * hour; 20]);
    assert_eq!(
        simulate(old_refresh_due, 0, lifetime, idle, after, &gaps),
        Err(Run::LostEarly {
            at_ms: 540 * hour + 17 * 10 * hour
        })
    );
    assert_eq!(
        simulate(ClaimsCore::refresh_due, 0, lifetime, idle, after, &gaps),
        Ok(())
    );
}

prop_compose! {
    /// Limits as the configuration allows them (whole seconds of idle timeout, a throttle
    /// below it), and request gaps no longer than `idle - refresh_after - 1 s`: what an active
    /// user's requests look like. (No throttled rule can promise more: a request just before
    /// the throttle passes does not refresh, so the next must come within `idle -
    /// refresh_after` of it.)
    fn arb_activity()(
        start_ms in 0u64..4_000_000_000_000,
        idle_s in 2u64..2_000,
        lifetime_x in 1u64..6,
        lifetime_extra in 0u64..1_000,
        after_permille in 0u64..=1000,
        gaps_permille in proptest::collection::vec(0u64..=1000, 1..160),
    ) -> (u64, Duration, Duration, Duration, Vec<u64>) {
        let idle_ms = idle_s * 1000;
        let after_ms = (idle_ms - 1001) * after_permille / 1000;
        let max_gap = idle_ms - after_ms - 1000;
        let gaps = gaps_permille.iter().map(|p| 1 + (max_gap - 1) * p / 1000).collect();
        (
            start_ms,
            Duration::from_secs(idle_s * lifetime_x + lifetime_extra),
            Duration::from_secs(idle_s),
            Duration::from_millis(after_ms),
            gaps,
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// An active user keeps the session to its absolute end, and re-seals come at most once
    /// per throttle interval.
    #[test]
    fn an_active_session_is_never_lost_before_its_absolute_end(
        (start_ms, lifetime, idle, after, gaps) in arb_activity()
    ) {
        prop_assert_eq!(
            simulate(ClaimsCore::refresh_due, start_ms, lifetime, idle, after, &gaps),
            Ok(())
        );
    }

    /// `refresh_due` is: the deadline `touch` would set is later than the current one, and
    /// `refresh_after` has passed since the deadline was last set (`idle` before it).
    #[test]
    fn refresh_due_is_the_throttle_passed_and_a_deadline_that_moves(
        now_ms in 0u64..4_000_000_000_000,
        expires in 0u64..4_000_000_000,
        deadline in 0u64..4_000_000_000,
        idle_ms in 0u64..1_000_000_000,
        after_ms in 0u64..1_000_000_000,
        shape in 0u8..4,
    ) {
        let mut c = ClaimsCore::new(UNIX_EPOCH, Duration::ZERO, Duration::ZERO);
        c.expires_at = expires;
        c.idle_deadline = deadline;
        let mut now_ms = now_ms;
        if shape == 1 {
            // A deadline close to `now` and to `expires`.
            c.idle_deadline = (now_ms / 1000).min(expires);
        }
        let last_ms = c.idle_deadline.checked_sub(idle_ms / 1000).map(|last| last * 1000);
        let odd = now_ms % 2 == 1;
        match shape {
            // `now` exactly where the throttle passes, or a millisecond before.
            2 => now_ms = last_ms.map_or(0, |l| (l + after_ms).saturating_sub(u64::from(odd))),
            // `now` a second after the last refresh, or a millisecond before.
            3 => now_ms = last_ms.map_or(0, |l| (l + 1000).saturating_sub(u64::from(odd))),
            _ => {}
        }
        let now = UNIX_EPOCH + Duration::from_millis(now_ms);
        let (idle, after) = (Duration::from_millis(idle_ms), Duration::from_millis(after_ms));
        let mut touched = c.clone();
        touched.touch(now, idle);
        let moves = touched.idle_deadline > c.idle_deadline;
        let throttle_passed = last_ms.is_none_or(|last| now_ms >= last + after_ms);
        prop_assert_eq!(c.refresh_due(now, idle, after), moves && throttle_passed);
    }
}
