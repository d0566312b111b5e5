//! The one place that asks the operating system for random bytes.

/// Fills `buf` from the OS CSPRNG.
///
/// A failure here means the platform cannot produce randomness at all; continuing would mean
/// predictable session ids or repeated nonces, so it panics rather than degrade (as `OsRng` does).
pub(crate) fn fill(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}
