//! The fixed world every target runs in: keys, time, cookie name, and the sealed seed values.
//!
//! The keys are random constants that appear nowhere but here, so a fuzzer that makes a cookie
//! open without copying one of the values in `fuzz/sealed_values.txt` has forged it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_sessions::{Key, KeyRing, Mode, Sealer};

/// The cookie name the seeds were sealed for; the layer is configured with it by name.
pub const COOKIE_NAME: &str = "session";

/// The fixed "now" of every check, in Unix seconds, so that committed seeds never expire.
pub const NOW_SECS: u64 = 1_800_000_000;

/// The primary key of the ring.
pub const PRIMARY: [u8; 32] =
    hex32("b893886461eb99deca53472648f3d1be9daff7317dda821513d7ea649c76b5fa");
/// The old key of the ring: opens, never seals.
pub const OLD: [u8; 32] = hex32("f603431eb0c9dba395b65ee9ab1e5dafff8e4b9699cbde7a0ed53f914e23fc54");
/// A key outside the ring, for seeds that must fail with `UnknownKey`.
pub const FOREIGN: [u8; 32] =
    hex32("899259deebb886d24339d63c189430d0bf3988c9f97996f6208a3109abdce62e");

/// [`NOW_SECS`] as a time.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// A key from one of the constants above.
pub fn key(bytes: &[u8; 32]) -> Key {
    Key::from_bytes(bytes).expect("32 bytes make a key")
}

/// The ring under test: [`PRIMARY`] seals, [`OLD`] still opens.
pub fn keyring() -> KeyRing {
    KeyRing::new(key(&PRIMARY))
        .with_old_key(key(&OLD))
        .expect("distinct keys have distinct ids")
}

/// The sealer under test for `mode`, built once.
pub fn sealer(mode: Mode) -> &'static Sealer {
    static PRIVATE: OnceLock<Sealer> = OnceLock::new();
    static SIGNED: OnceLock<Sealer> = OnceLock::new();
    let cell = match mode {
        Mode::Signed => &SIGNED,
        _ => &PRIVATE,
    };
    cell.get_or_init(|| Sealer::new(keyring(), mode))
}

/// Both modes, private first.
pub const MODES: [Mode; 2] = [Mode::Private, Mode::Signed];

/// What opening a seed value under [`COOKIE_NAME`] at [`now`] must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Opens with the primary key.
    Open,
    /// Opens with the old key and asks to be re-sealed.
    Reseal,
    /// Authentic but expired.
    Expired,
    /// Sealed with [`FOREIGN`].
    UnknownKey,
}

impl Expect {
    /// The word used in `sealed_values.txt`.
    pub fn word(self) -> &'static str {
        match self {
            Expect::Open => "open",
            Expect::Reseal => "reseal",
            Expect::Expired => "expired",
            Expect::UnknownKey => "unknown-key",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [
            Expect::Open,
            Expect::Reseal,
            Expect::Expired,
            Expect::UnknownKey,
        ]
        .into_iter()
        .find(|e| e.word() == word)
    }
}

/// The word for a mode in `sealed_values.txt`.
pub fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Signed => "signed",
        _ => "private",
    }
}

/// A value that `make_seeds` sealed: its mode and what opening it must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSeed {
    /// The mode it was sealed in.
    pub mode: Mode,
    /// The outcome of opening it in that mode.
    pub expect: Expect,
}

/// Every value `make_seeds` sealed, from `fuzz/sealed_values.txt` (`mode expect value` lines).
pub fn sealed_values() -> &'static HashMap<&'static str, SealedSeed> {
    static VALUES: OnceLock<HashMap<&'static str, SealedSeed>> = OnceLock::new();
    VALUES.get_or_init(|| {
        include_str!("../sealed_values.txt")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut words = line.split(' ');
                let (Some(mode), Some(expect), Some(value), None) =
                    (words.next(), words.next(), words.next(), words.next())
                else {
                    panic!("bad line in sealed_values.txt: {line:?}");
                };
                let mode = match mode {
                    "private" => Mode::Private,
                    "signed" => Mode::Signed,
                    _ => panic!("bad mode in sealed_values.txt: {line:?}"),
                };
                let expect = Expect::parse(expect)
                    .unwrap_or_else(|| panic!("bad outcome in sealed_values.txt: {line:?}"));
                (value, SealedSeed { mode, expect })
            })
            .collect()
    })
}

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lower-case hex"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}
