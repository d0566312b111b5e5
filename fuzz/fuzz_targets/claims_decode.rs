//! libFuzzer entry point; the checks live in `sealed_sessions_fuzz::claims_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealed_sessions_fuzz::claims_decode::check(data));
