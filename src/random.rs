//! The one place that asks the operating system for random bytes.
//!
//! Every seal needs a 24-byte nonce and every new session a 16-byte id. One `getrandom` system
//! call costs about 400 ns on the reference machine (a VM) — more than the whole rest of a seal —
//! so nonces and ids are served from a small per-thread pool that is refilled from the OS CSPRNG
//! 1 KiB at a time. The bytes are still the kernel's, each handed out once and wiped from the pool
//! as it is taken; there is no userspace generator to seed or to reason about.
//!
//! The one caveat is shared by every userspace pool, `rand`'s `ThreadRng` included: a process that
//! `fork`s after sealing, without `exec`, gives the child a copy of the unused pool. Servers built
//! on tokio do not fork after start-up; a pre-fork server should fork before the first request.
//! Keys never come from the pool.

use std::cell::RefCell;

const POOL_LEN: usize = 1024;

struct Pool {
    bytes: [u8; POOL_LEN],
    /// Bytes before `next` have been handed out (and wiped).
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_LEN], next: POOL_LEN })
    };
}

/// Fills `buf` with bytes from the OS CSPRNG, through the per-thread pool when it is small.
pub(crate) fn fill(buf: &mut [u8]) {
    if buf.len() > POOL_LEN / 8 {
        return fill_direct(buf);
    }
    POOL.with_borrow_mut(|pool| {
        if POOL_LEN - pool.next < buf.len() {
            fill_direct(&mut pool.bytes);
            pool.next = 0;
        }
        let taken = &mut pool.bytes[pool.next..pool.next + buf.len()];
        buf.copy_from_slice(taken);
        taken.fill(0);
        pool.next += buf.len();
    });
}

/// Fills `buf` straight from the OS CSPRNG (for keys).
///
/// A failure here means the platform cannot produce randomness at all; continuing would mean
/// predictable session ids or repeated nonces, so it panics rather than degrade (as `OsRng` does).
pub(crate) fn fill_direct(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hands_out_fresh_bytes_across_refills() {
        let mut seen = std::collections::HashSet::new();
        // 24-byte draws straddle the 1 KiB refill boundary many times.
        for _ in 0..1000 {
            let mut nonce = [0u8; 24];
            fill(&mut nonce);
            assert!(seen.insert(nonce), "a nonce repeated");
        }
        let mut big = [0u8; 512];
        fill(&mut big);
        assert!(big.iter().any(|&b| b != 0));
    }
}
