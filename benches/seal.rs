//! Seal and open of a ~200-byte session in both modes, side by side with the `cookie` crate's
//! PrivateJar and SignedJar on the same data, plus the claims-encoding comparison that chose the
//! binary format (see `src/claims.rs`).
//!
//! `cargo bench --bench seal`; the ratios that matter are ours / the peer's in the same run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use cookie::{Cookie, CookieJar};
use criterion::{criterion_group, criterion_main, Criterion};
use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer};
use serde::{Deserialize, Serialize};

const NAME: &str = "session";

/// The sample session: a signed-in user with a cart, a CSRF token and a few preferences.
fn sample(now: SystemTime) -> Claims {
    let mut c = Claims::new(
        now,
        Duration::from_secs(3 * 3600),
        Duration::from_secs(1800),
    );
    c.set_user("alice@example.com", now);
    c.insert("cart", &[("sku-1042", 2), ("sku-2210", 1), ("sku-0007", 5)])
        .unwrap();
    c.insert("csrf", "q3Jx9fT1b7Lr0pV2mN8sW4yZ6cD5eA1h")
        .unwrap();
    c.insert("theme", "dark").unwrap();
    c.insert("locale", "en-GB").unwrap();
    c.insert("visits", &42u32).unwrap();
    c
}

/// The same session as one serde document, for the peers and the encoding comparison.
#[derive(Serialize, Deserialize)]
struct Document {
    id: [u8; 16],
    user: Option<String>,
    issued_at: u64,
    auth_time: u64,
    expires_at: u64,
    idle_deadline: u64,
    persistent: bool,
    data: BTreeMap<String, serde_json::Value>,
}

fn document(c: &Claims) -> Document {
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    Document {
        id: *c.id().as_bytes(),
        user: c.user().map(str::to_owned),
        issued_at: secs(c.issued_at()),
        auth_time: c.auth_time().map_or(0, secs),
        expires_at: secs(c.expires_at()),
        idle_deadline: secs(c.idle_deadline()),
        persistent: c.is_persistent(),
        data: c
            .keys()
            .map(|k| {
                (
                    k.to_owned(),
                    c.get::<serde_json::Value>(k).unwrap().unwrap(),
                )
            })
            .collect(),
    }
}

/// The same session as compact JSON, as an application would keep it in a jar: short keys, the
/// id in its text form, the times in one array. The fair peer of our binary claims (issue 16);
/// the [`Document`] (the id as 16 numbers, long keys) is kept beside it for the history.
#[derive(Serialize)]
struct Compact {
    i: String,
    u: Option<String>,
    t: [u64; 4],
    p: bool,
    d: BTreeMap<String, serde_json::Value>,
}

fn compact(c: &Claims) -> Compact {
    let d = document(c);
    Compact {
        i: c.id().to_string(),
        u: d.user,
        t: [d.issued_at, d.auth_time, d.expires_at, d.idle_deadline],
        p: d.persistent,
        d: d.data,
    }
}

fn envelope(c: &mut Criterion) {
    let now = SystemTime::now();
    let claims = sample(now);
    let json = serde_json::to_string(&document(&claims)).unwrap();
    let compact = serde_json::to_string(&compact(&claims)).unwrap();
    println!(
        "sample session: {} bytes of claims, {} bytes as compact JSON, {} as a JSON document",
        claims.to_bytes().len(),
        compact.len(),
        json.len()
    );

    let key = Key::generate();
    let cookie_key = cookie::Key::derive_from(key.to_base64().as_bytes());

    let mut group = c.benchmark_group("envelope");
    for mode in [Mode::Private, Mode::Signed] {
        let sealer = Sealer::new(KeyRing::new(key.clone()), mode);
        let value = sealer.seal(NAME, &claims).unwrap();
        println!("{mode:?} cookie value: {} bytes", value.len());
        group.bench_function(format!("ours/{mode:?}/seal"), |b| {
            b.iter(|| sealer.seal(black_box(NAME), black_box(&claims)).unwrap())
        });
        group.bench_function(format!("ours/{mode:?}/open"), |b| {
            b.iter(|| {
                sealer
                    .open(black_box(NAME), black_box(&value), now)
                    .unwrap()
            })
        });
    }

    // The peer: the cookie crate's jars, carrying the same session as JSON text: compact (the
    // fair comparison, `-compact`) and as the longer document (the names used before).
    for (suffix, text) in [("-compact", &compact), ("", &json)] {
        let mut jar = CookieJar::new();
        jar.private_mut(&cookie_key)
            .add(Cookie::new(NAME, text.clone()));
        let private_value = jar.get(NAME).unwrap().value().to_owned();
        jar.signed_mut(&cookie_key)
            .add(Cookie::new(NAME, text.clone()));
        let signed_value = jar.get(NAME).unwrap().value().to_owned();
        println!(
            "cookie crate values{suffix}: private {} bytes, signed {} bytes",
            private_value.len(),
            signed_value.len()
        );
        group.bench_function(format!("cookie/PrivateJar/add{suffix}"), |b| {
            let mut jar = CookieJar::new();
            b.iter(|| {
                jar.private_mut(&cookie_key)
                    .add(Cookie::new(NAME, black_box(text).clone()))
            })
        });
        group.bench_function(format!("cookie/PrivateJar/get{suffix}"), |b| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(NAME, private_value.clone()));
            b.iter(|| jar.private(&cookie_key).get(black_box(NAME)).unwrap())
        });
        group.bench_function(format!("cookie/SignedJar/add{suffix}"), |b| {
            let mut jar = CookieJar::new();
            b.iter(|| {
                jar.signed_mut(&cookie_key)
                    .add(Cookie::new(NAME, black_box(text).clone()))
            })
        });
        group.bench_function(format!("cookie/SignedJar/get{suffix}"), |b| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(NAME, signed_value.clone()));
            b.iter(|| jar.signed(&cookie_key).get(black_box(NAME)).unwrap())
        });
    }
    group.finish();
}

fn claims_encoding(c: &mut Criterion) {
    let claims = sample(SystemTime::now());
    let doc = document(&claims);
    let binary = claims.to_bytes();
    let json = serde_json::to_vec(&doc).unwrap();
    let mut cbor = Vec::new();
    ciborium::into_writer(&doc, &mut cbor).unwrap();
    println!(
        "claims encodings: binary {} bytes, JSON {} bytes, CBOR {} bytes",
        binary.len(),
        json.len(),
        cbor.len()
    );

    let mut group = c.benchmark_group("claims");
    group.bench_function("binary/encode", |b| {
        b.iter(|| black_box(&claims).to_bytes())
    });
    group.bench_function("binary/decode", |b| {
        b.iter(|| Claims::from_bytes(black_box(&binary)).unwrap())
    });
    group.bench_function("json/encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&doc)).unwrap())
    });
    group.bench_function("json/decode", |b| {
        b.iter(|| serde_json::from_slice::<Document>(black_box(&json)).unwrap())
    });
    group.bench_function("cbor/encode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(cbor.len());
            ciborium::into_writer(black_box(&doc), &mut out).unwrap();
            out
        })
    });
    group.bench_function("cbor/decode", |b| {
        b.iter(|| ciborium::from_reader::<Document, _>(black_box(&cbor[..])).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = envelope, claims_encoding
}
criterion_main!(benches);
