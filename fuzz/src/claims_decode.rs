//! Target `claims_decode`: arbitrary bytes as a claims encoding.
//!
//! Checks: `Claims::from_bytes` never panics; whatever decodes encodes back to exactly the
//! input (the encoding is canonical); every data value can be asked for as JSON without a
//! panic; turning the in-place entries into an owned map (by a write and its undo) changes
//! neither the value nor its encoding; and the claims seal and open again in both modes.

use sealed_sessions::{Claims, OpenError, SealError};

use super::fixture::{self, COOKIE_NAME};

/// A key that sorts after any key a short input can hold, used to force a write.
const PROBE: &str = "\u{10FFFF}fuzz-probe";

/// Runs every check on one input.
pub fn check(data: &[u8]) {
    let Ok(claims) = Claims::from_bytes(data) else {
        return;
    };
    assert_eq!(claims.to_bytes(), data, "decoding is not canonical");
    let keys: Vec<&str> = claims.keys().collect();
    assert_eq!(keys.len(), claims.len());
    assert_eq!(claims.is_empty(), keys.is_empty());
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys out of order");
    for key in &keys {
        // Any bytes may sit under a key here; reading them must be a result, not a panic.
        let _ = claims.get::<serde_json::Value>(key);
        let _ = claims.get::<String>(key);
    }

    if !keys.contains(&PROBE) {
        let mut owned = claims.clone();
        owned.insert(PROBE, &0).expect("an integer serializes");
        assert!(owned.remove(PROBE));
        assert_eq!(owned, claims, "owned entries differ from the sealed ones");
        assert_eq!(owned.to_bytes(), data, "owned entries encode differently");
    }

    for mode in fixture::MODES {
        let sealer = fixture::sealer(mode);
        let value = match sealer.seal(COOKIE_NAME, &claims) {
            Ok(value) => value,
            Err(SealError::CookieTooLarge { .. }) => continue,
            Err(e) => panic!("unexpected seal error {e}"),
        };
        match sealer.open(COOKIE_NAME, &value, fixture::now()) {
            Ok(opened) => {
                assert!(!claims.is_expired(fixture::now()));
                assert_eq!(opened.claims, claims);
                assert!(!opened.needs_reseal);
            }
            Err(OpenError::Expired) => assert!(claims.is_expired(fixture::now())),
            Err(e) => panic!("freshly sealed claims do not open in {mode:?}: {e}"),
        }
    }
}
