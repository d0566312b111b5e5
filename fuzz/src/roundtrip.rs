//! Target `roundtrip`: claims built from arbitrary bytes, sealed, and opened again.
//!
//! The bytes drive a small generator ([`Input`]) rather than the `arbitrary` crate, so that the
//! main crate's regression test can replay these seeds without another dev-dependency. Checks:
//! the binary form decodes to equal claims, and in both modes the sealed value opens to equal
//! claims with equal data values, or is refused as expired exactly when the claims are expired
//! at the opening time, or is refused at sealing as too large exactly when it is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_sessions::{Claims, OpenError, SealError, MAX_COOKIE_LEN};
use serde_json::Value;

use super::fixture::{self, COOKIE_NAME};

/// Reads the generator's choices from the fuzzer's bytes; past the end every read is zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u64(&mut self) -> u64 {
        let mut v = 0u64;
        for _ in 0..8 {
            v = v << 8 | u64::from(self.byte());
        }
        v
    }

    /// A time of the fuzzer's choice; `u64` seconds can overflow `SystemTime`, so keep to the
    /// range a `Claims` time can take back out (up to `i64::MAX / 2` seconds).
    fn time(&mut self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.u64() % (i64::MAX as u64 / 2))
    }

    fn duration(&mut self) -> Duration {
        Duration::from_secs(self.u64())
    }

    fn string(&mut self) -> String {
        let len = usize::from(self.byte() % 32).min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(s).into_owned()
    }

    fn value(&mut self, depth: u8) -> Value {
        match self.byte() % 8 {
            0 => Value::Null,
            1 => Value::Bool(self.byte() & 1 == 1),
            2 => Value::from(self.u64()),
            3 => Value::from(self.u64() as i64),
            4 => Value::from(f64::from_bits(self.u64())),
            5 if depth < 4 => {
                let n = self.byte() % 4;
                Value::Array((0..n).map(|_| self.value(depth + 1)).collect())
            }
            6 if depth < 4 => {
                let n = self.byte() % 4;
                Value::Object(
                    (0..n)
                        .map(|_| (self.string(), self.value(depth + 1)))
                        .collect(),
                )
            }
            _ => Value::String(self.string()),
        }
    }
}

/// Runs every check on one input.
pub fn check(data: &[u8]) {
    let mut input = Input(data);
    let mut claims = Claims::new(input.time(), input.duration(), input.duration());
    let flags = input.byte();
    if flags & 1 != 0 {
        let user = input.string();
        claims.set_user(user, input.time());
    }
    claims.set_persistent(flags & 2 != 0);
    if flags & 4 != 0 {
        claims.touch(input.time(), input.duration());
    }
    for _ in 0..input.byte() % 8 {
        let key = input.string();
        let value = input.value(0);
        claims
            .insert(&key, &value)
            .expect("a JSON value serializes");
    }
    let open_at = if flags & 8 != 0 {
        input.time()
    } else {
        fixture::now()
    };

    let bytes = claims.to_bytes();
    assert_eq!(Claims::from_bytes(&bytes).as_ref(), Ok(&claims));

    for mode in fixture::MODES {
        let sealer = fixture::sealer(mode);
        let value = match sealer.seal(COOKIE_NAME, &claims) {
            Ok(value) => value,
            Err(SealError::CookieTooLarge { size, limit }) => {
                assert!(size > limit && limit == MAX_COOKIE_LEN);
                continue;
            }
            Err(e) => panic!("unexpected seal error {e}"),
        };
        assert!(COOKIE_NAME.len() + 1 + value.len() <= MAX_COOKIE_LEN);
        match sealer.open(COOKIE_NAME, &value, open_at) {
            Ok(opened) => {
                assert!(!claims.is_expired(open_at), "expired claims opened");
                assert_eq!(opened.claims, claims);
                for key in claims.keys() {
                    assert_eq!(
                        opened.claims.get::<Value>(key).expect("JSON"),
                        claims.get::<Value>(key).expect("JSON"),
                    );
                }
            }
            Err(OpenError::Expired) => assert!(claims.is_expired(open_at)),
            Err(e) => panic!("sealed claims do not open in {mode:?}: {e}"),
        }
    }
}
