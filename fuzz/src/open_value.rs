//! Target `open_value`: arbitrary bytes as a cookie value, opened in both modes.
//!
//! Invalid UTF-8 is replaced (as the middleware does with a non-UTF-8 `Cookie` header). Checks:
//! `Sealer::open` never panics; only a value that `make_seeds` sealed opens, in its own mode,
//! with the outcome recorded for it; the same value under another cookie name never opens; and
//! whatever opens re-seals with the primary key and opens again to equal claims.

use sealed_sessions::{Mode, OpenError, Opened, SealError, Sealer, MAX_COOKIE_LEN};

use super::fixture::{self, Expect, COOKIE_NAME};

/// Runs every check on one input.
pub fn check(data: &[u8]) {
    check_value(&String::from_utf8_lossy(data));
}

/// The checks for one cookie value.
pub fn check_value(value: &str) {
    let seed = fixture::sealed_values().get(value).copied();
    for mode in fixture::MODES {
        let sealer = fixture::sealer(mode);
        let result = sealer.open(COOKIE_NAME, value, fixture::now());
        let expected = seed.filter(|s| s.mode == mode).map(|s| s.expect);
        match (&result, expected) {
            (Ok(opened), Some(Expect::Open)) => assert!(!opened.needs_reseal, "{value:?}"),
            (Ok(opened), Some(Expect::Reseal)) => assert!(opened.needs_reseal, "{value:?}"),
            (Err(OpenError::Expired), Some(Expect::Expired)) => {}
            (Err(OpenError::UnknownKey(_)), Some(Expect::UnknownKey)) => {}
            (Ok(_), None) => panic!("forgery: {value:?} opened in {mode:?} but was never sealed"),
            (Err(_), None) => {}
            (result, Some(expect)) => {
                panic!("seed {value:?} in {mode:?} should be {expect:?}, got {result:?}")
            }
        }
        if let Ok(opened) = result {
            assert_reseals(sealer, value, &opened);
        }
        // The name is bound into the tag: no value opens under a name it was not sealed for.
        assert!(
            matches!(
                sealer.open("other", value, fixture::now()),
                Err(ref e) if !matches!(e, OpenError::Expired)
            ),
            "{value:?} opened (or authenticated) under another cookie name in {mode:?}"
        );
    }
}

/// What opened re-seals with the primary key and opens again to the same claims, and every data
/// value reads as JSON.
pub fn assert_reseals(sealer: &Sealer, value: &str, opened: &Opened) {
    let claims = &opened.claims;
    for key in claims.keys() {
        claims
            .get::<serde_json::Value>(key)
            .unwrap_or_else(|e| panic!("sealed data under {key:?} is not JSON: {e}"));
    }
    let again = match sealer.seal(COOKIE_NAME, claims) {
        Ok(again) => again,
        // `open` accepts values up to the limit by themselves; `seal` counts the name too.
        Err(SealError::CookieTooLarge { .. })
            if COOKIE_NAME.len() + 1 + value.len() > MAX_COOKIE_LEN =>
        {
            return
        }
        Err(e) => panic!("{value:?} opened but does not re-seal: {e}"),
    };
    let reopened = sealer
        .open(COOKIE_NAME, &again, fixture::now())
        .unwrap_or_else(|e| panic!("re-sealed {value:?} does not open: {e}"));
    assert_eq!(&reopened.claims, claims, "re-sealed claims differ");
    assert!(!reopened.needs_reseal, "re-sealed with an old key");
    assert_eq!(reopened.claims.to_bytes(), claims.to_bytes());
    if sealer.mode() == Mode::Private {
        assert_ne!(again, value, "private mode reused a nonce");
    }
}
