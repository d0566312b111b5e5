//! The checks behind the fuzz targets, shared with `tests/fuzz_regressions.rs`.
//!
//! Each target module has one `check(&[u8])` that panics when the library misbehaves on that
//! input: a panic inside the library, an accepted forgery, a value that opens but does not
//! re-seal to the same claims, a non-canonical claims encoding, or a middleware answer other
//! than 200. libFuzzer calls `check` from `fuzz_targets/*.rs`; the regression test replays every
//! file under `fuzz/seeds/` through the same function on stable Rust, without the fuzzer.
//!
//! This file is also compiled as a module of the main crate's test (`#[path]`), so it uses
//! only crates that the main crate has as (dev-)dependencies: `http`, `serde_json`, `tokio`,
//! `tower`.

pub mod claims_decode;
pub mod fixture;
pub mod open_header;
pub mod open_value;
pub mod roundtrip;
