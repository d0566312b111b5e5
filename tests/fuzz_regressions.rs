//! Replays the fuzz corpus on stable Rust: every file under `fuzz/seeds/<target>/` goes through
//! the very check that the fuzz target `<target>` makes (see `fuzz/src/`), so the seeds and any
//! saved crash reproducers are exercised by `cargo test` without a fuzzer or nightly features.
#![cfg(feature = "hyper")]

// The checks are compiled into this test as a module; the seed generator's helpers are unused.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::fs;
use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 4] = [
    ("open_value", fuzz_checks::open_value::check),
    ("open_header", fuzz_checks::open_header::check),
    ("claims_decode", fuzz_checks::claims_decode::check),
    ("roundtrip", fuzz_checks::roundtrip::check),
];

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

/// The files of one target's seed directory, in name order.
fn files(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(seeds().join(target))
        .unwrap_or_else(|e| panic!("fuzz/seeds/{target}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) -> usize {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = files(target);
    for file in &files {
        let bytes = fs::read(file).expect("readable seed");
        // Name the file if the check panics, so a failure points at its reproducer.
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{} failed its check", file.display());
    }
    files.len()
}

#[test]
fn open_value_corpus() {
    assert!(replay("open_value") >= 20);
}

#[test]
fn open_header_corpus() {
    assert!(replay("open_header") >= 20);
}

#[test]
fn claims_decode_corpus() {
    assert!(replay("claims_decode") >= 20);
}

#[test]
fn roundtrip_corpus() {
    assert!(replay("roundtrip") >= 10);
}

/// Every directory under `fuzz/seeds/` belongs to a target, so no seed is silently skipped.
#[test]
fn every_seed_directory_is_replayed() {
    for entry in fs::read_dir(seeds()).expect("fuzz/seeds exists") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            path.is_dir() && TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/seeds/{name} is not a target's seed directory"
        );
    }
}

/// The seeds reach the outcomes they were made for: each sealed value opens (or fails) exactly
/// as recorded, so the corpus covers the accepting paths and not only the refusals.
#[test]
fn sealed_seeds_cover_every_outcome() {
    use fuzz_checks::fixture::{self, Expect};
    let values = fixture::sealed_values();
    for expect in [
        Expect::Open,
        Expect::Reseal,
        Expect::Expired,
        Expect::UnknownKey,
    ] {
        for mode in fixture::MODES {
            let seed = fuzz_checks::fixture::SealedSeed { mode, expect };
            assert!(values.values().any(|s| *s == seed), "no seed for {seed:?}");
        }
    }
    for (value, seed) in values {
        let result = fixture::sealer(seed.mode).open(fixture::COOKIE_NAME, value, fixture::now());
        let ok = match seed.expect {
            Expect::Open => result.is_ok_and(|o| !o.needs_reseal),
            Expect::Reseal => result.is_ok_and(|o| o.needs_reseal),
            Expect::Expired => result == Err(sealed_sessions::OpenError::Expired),
            Expect::UnknownKey => matches!(result, Err(sealed_sessions::OpenError::UnknownKey(_))),
        };
        assert!(ok, "{seed:?}: {value}");
    }
}
