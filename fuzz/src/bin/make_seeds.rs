//! Writes the seed corpus: `fuzz/seeds/<target>/gen-*` and `fuzz/sealed_values.txt`.
//!
//! Run from anywhere with `cargo run --manifest-path fuzz/Cargo.toml --bin make_seeds`; the
//! nonces are random, so every run writes new values: commit the result and rebuild the targets
//! (the list of sealed values is compiled into them). Files not named `gen-*` (crash reproducers
//! saved by hand) are left alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use sealed_sessions::{Claims, KeyRing, Mode, Sealer};
use sealed_sessions_fuzz::fixture::{self, Expect, COOKIE_NAME, NOW_SECS};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    for target in ["open_value", "open_header", "claims_decode", "roundtrip"] {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir).expect("create seed dir");
        for entry in fs::read_dir(&dir).expect("read seed dir") {
            let path = entry.expect("dir entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gen-"))
            {
                fs::remove_file(path).expect("remove old seed");
            }
        }
    }
    let write = |target: &str, name: &str, bytes: &[u8]| {
        fs::write(seeds.join(target).join(format!("gen-{name}")), bytes).expect("write seed");
    };

    let mut list = String::new();
    let mut sealed = Vec::new(); // (mode, expect, name, value)
    for mode in fixture::MODES {
        let m = fixture::mode_word(mode);
        let primary = fixture::sealer(mode);
        let old = Sealer::new(KeyRing::new(fixture::key(&fixture::OLD)), mode);
        let foreign = Sealer::new(KeyRing::new(fixture::key(&fixture::FOREIGN)), mode);
        for (name, sealer, claims, expect) in [
            ("anon", primary, sample(0, false, 0), Expect::Open),
            ("user", primary, sample(1, true, 0), Expect::Open),
            ("data", primary, sample(2, true, 3), Expect::Open),
            ("big", primary, sample(3, false, 40), Expect::Open),
            ("old-key", &old, sample(4, true, 1), Expect::Reseal),
            ("old-key-anon", &old, sample(5, false, 0), Expect::Reseal),
            ("expired", primary, expired(6), Expect::Expired),
            ("expired-old-key", &old, expired(7), Expect::Expired),
            (
                "foreign-key",
                &foreign,
                sample(8, true, 1),
                Expect::UnknownKey,
            ),
        ] {
            let value = sealer.seal(COOKIE_NAME, &claims).expect("seed fits");
            list.push_str(&format!("{m} {} {value}\n", expect.word()));
            write("open_value", &format!("{m}-{name}"), value.as_bytes());
            write("claims_decode", &format!("{m}-{name}"), &claims.to_bytes());
            sealed.push((mode, expect, format!("{m}-{name}"), value));
        }
    }
    fs::write(root.join("sealed_values.txt"), list).expect("write sealed_values.txt");

    // Near misses of a real value, and values that are not sealed sessions at all.
    let good = &sealed[2].3;
    let mut flipped = good.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let junk: [(&str, Vec<u8>); 8] = [
        ("empty", Vec::new()),
        ("header-only", b"AQEAAAAA".to_vec()),
        ("truncated", good.as_bytes()[..good.len() - 4].to_vec()),
        ("flipped", flipped),
        ("padded", format!("{good}==").into_bytes()),
        (
            "std-alphabet",
            good.replace('-', "+").replace('_', "/").into_bytes(),
        ),
        ("not-utf8", b"AQ\xff\xfeEAAAA".to_vec()),
        ("too-long", vec![b'A'; 4100]),
    ];
    for (name, bytes) in &junk {
        write("open_value", name, bytes);
    }

    // Whole Cookie headers: a flags byte (bit 0 signed, bit 1 write), then `\n`-separated headers.
    for (mode, expect, name, value) in &sealed {
        let signed = u8::from(*mode == Mode::Signed);
        let write_flag = if matches!(expect, Expect::Open) { 2 } else { 0 };
        let mut input = vec![b'0' + signed + write_flag];
        input.extend_from_slice(format!("theme=dark; {COOKIE_NAME}={value}").as_bytes());
        write("open_header", name, &input);
    }
    let p = &sealed[1].3; // private, user
    let s = &sealed[10].3; // signed, user
    let headers: [(&str, String); 8] = [
        ("empty", "0".into()),
        (
            "junk-then-good",
            format!("0{COOKIE_NAME}=junk; a=1\n{COOKIE_NAME}={p}"),
        ),
        (
            "expired-then-good",
            format!("0{COOKIE_NAME}={}; {COOKIE_NAME}={p}", sealed[6].3),
        ),
        ("quoted", format!("2{COOKIE_NAME}=\"{p}\"")),
        ("wrong-mode", format!("1{COOKIE_NAME}={p}")),
        (
            "signed-three-headers",
            format!("3a=b\n{COOKIE_NAME}=\n;;; {COOKIE_NAME}={s}"),
        ),
        (
            "other-name",
            format!("0x{COOKIE_NAME}={p}; {COOKIE_NAME}x={p}"),
        ),
        ("spaces", format!("2  {COOKIE_NAME} = {p} ;")),
    ];
    for (name, text) in &headers {
        write("open_header", name, text.as_bytes());
    }
    write("open_header", "not-utf8", b"0a=\xff\xfe; session=\x80x");

    // Claims encodings that must be refused.
    let good = sample(9, true, 2).to_bytes();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut flags = good.clone();
    flags[16] |= 0x80;
    for (name, bytes) in [
        ("truncated", good[..good.len() - 1].to_vec()),
        ("trailing", trailing),
        ("unknown-flag", flags),
        (
            "overlong-varint",
            [&[0u8; 17][..], &[0x80, 0x80, 0x00]].concat(),
        ),
        ("empty", Vec::new()),
    ] {
        write("claims_decode", name, &bytes);
    }

    // The roundtrip generator reads bytes as choices; a spread of lengths and patterns.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for (i, len) in [0usize, 8, 24, 40, 64, 96, 128, 256, 512, 1024]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        write("roundtrip", &format!("random-{i}"), &bytes);
    }
    let mut now = NOW_SECS.to_be_bytes().to_vec();
    now.extend_from_slice(&DAY.as_secs().to_be_bytes());
    now.extend_from_slice(&HOUR.as_secs().to_be_bytes());
    now.extend_from_slice(&[0b0111, 5, b'a', b'l', b'i', b'c', b'e']);
    write("roundtrip", "live-user", &now);

    println!("seeds written under {}", Path::new(&seeds).display());
}

/// Live claims at [`NOW_SECS`], tagged with `seed: n`, optionally for a user, with `extra`
/// further entries.
fn sample(n: u32, user: bool, extra: usize) -> Claims {
    let issued = UNIX_EPOCH + Duration::from_secs(NOW_SECS - 60);
    let mut c = Claims::new(issued, DAY, 2 * HOUR);
    c.insert("seed", &n).expect("serializes");
    if user {
        c.set_user(format!("user-{n}@example.com"), issued);
        c.set_persistent(n % 2 == 0);
    }
    for i in 0..extra {
        c.insert(
            &format!("k{i:02}"),
            &serde_json::json!({ "i": i, "s": "näive ☃", "list": [1.5, null, true] }),
        )
        .expect("serializes");
    }
    c
}

/// Claims whose absolute lifetime ended a day before [`NOW_SECS`].
fn expired(n: u32) -> Claims {
    let issued = UNIX_EPOCH + Duration::from_secs(NOW_SECS - 3 * 24 * 3600);
    let mut c = Claims::new(issued, DAY, DAY);
    c.insert("seed", &n).expect("serializes");
    c
}
