//! The one place that asks the operating system for random bytes.
//!
//! Every seal needs a 24-byte nonce and every new session a 16-byte id. One `getrandom` system
//! call costs about 300 ns on the reference machine (a VM) — half as much as the whole rest of a
//! seal — so nonces and ids are served from a small per-thread pool that is refilled from the OS
//! CSPRNG 1 KiB at a time. The bytes are still the kernel's, each handed out
//! once and wiped from the pool as it is taken; there is no userspace generator to seed or to
//! reason about. Keys never come from the pool.
//!
//! # Fork safety
//!
//! A process that `fork`s without `exec` gives its child a copy of the pool, and
//! `SessionConfig::build` and `SqliteRegistry::open` already draw from it (the keys of their
//! hashes), so without a check every pre-fork server would hand its children the same nonces and
//! session ids as itself: two plaintexts sealed with one key and one nonce, whose ciphertexts XOR
//! to the XOR of the plaintexts (and which give away GCM's authentication key for that nonce). The
//! pool is therefore stamped with the id of the process that filled it and is refilled, before
//! anything is taken, whenever [`std::process::id`] differs. `tests/fork.rs` forks and checks that
//! parent and child draw different ids and nonces (it failed on every run before the stamp).
//!
//! The options, measured on the reference VM (2 vCPUs shared with other builds, Linux 6.18,
//! glibc 2.36) on the private seal of the ~200-byte session of `benches/seal.rs`: "best" is the
//! fastest of 15 rounds of 20,000 seals over 8 interleaved runs of the three builds, "criterion"
//! is `cargo bench --bench seal`'s `envelope/ours/Private/seal` over 3 interleaved runs (median).
//!
//! | random source | system calls a seal | seal, best | seal, criterion | `SessionId::generate` |
//! | --- | --- | --- | --- | --- |
//! | pool, not fork-safe (before) | 1/42 `getrandom` (1 KiB) | 640 ns | 770 ns | 45 ns |
//! | no pool, `getrandom` per draw | `getrandom` | 920 ns (+280) | 1,060 ns (+290) | 315 ns |
//! | pool + pid stamp (this) | `getpid` + 1/42 | 750 ns (+110) | 920 ns (+150) | 165 ns |
//!
//! One `getpid` costs ~120 ns, one 24-byte `getrandom` ~300 ns and a 1 KiB one ~2.3 µs (so even
//! the pool's bytes cost ~50 ns a nonce). Callgrind sees none of it — 5,059, 5,010 and 5,074
//! user-space instructions per seal — as the cost is in the kernel. The stamp costs about half of
//! what dropping the pool would, and keeps a private seal faster than the `cookie` crate's
//! `PrivateJar::add` (~1,070 ns in the same criterion runs), which the pool-less design would
//! just about match. `getpid` is a real system call (glibc has not cached the id since 2.25, musl
//! never did), hence its cost.
//!
//! What `#![forbid(unsafe_code)]` rules out: `pthread_atfork` and `MADV_WIPEONFORK` pages, which
//! would detect a fork for free. With glibc 2.41 and Linux 6.11 or later, `getrandom` runs in the
//! vDSO from state that the kernel invalidates on fork and on VM clone; there, a pool-less design
//! would be both fork-safe and cheap, and is worth measuring again.
//!
//! ## The residual risk: a recycled process id
//!
//! The stamp compares process ids, and an id is unique only among the live processes of one pid
//! namespace. A process `X` can take bytes that another process `F` also takes only if `X` holds a
//! copy of a pool that `F` filled (inherited through one fork or several, with no draw on the
//! way: a draw in a process with another id refills) and `X`'s id is `F`'s. A child forked
//! straight from `F` never qualifies in `F`'s namespace, since `F` is alive when the child gets
//! its id. What remains:
//!
//! - `F` exits and its id goes to a later descendant that still holds the copy, through an
//!   intermediate process that forked again without drawing (a daemon's double fork is the usual
//!   one). Linux hands ids out in rotation, so one comes back only after the counter has gone
//!   round the whole range (`pid_max`: 32,768 on the reference VM, 4,194,304 on most 64-bit
//!   distributions), and harm needs `F` to have drawn those very bytes between the fork and its
//!   exit: the first parent of a double fork exits at once, without drawing.
//! - A descendant in a nested pid namespace (`clone(CLONE_NEWPID)` or `unshare` without `exec`,
//!   which needs `CAP_SYS_ADMIN`, in a new user namespace if need be), where ids start again from 1
//!   and can equal `F`'s while `F` runs: for example a server that is PID 1 of its container and
//!   forks into a new namespace.
//!
//! No per-draw check open to safe Rust closes these cheaply: whatever else a forked process could
//! compare (thread ids, addresses, clocks) is a copy of its parent's memory or the same for both,
//! and a second system call would cost about what dropping the pool does — `getppid` would not even
//! tell all the cases apart (a reaped parent reads as the reaper in both processes, a namespace
//! root's as 0). Checkpoint/restore (CRIU) and cloned VM snapshots copy the pool together with the
//! process id; they are not forks, and no userspace pool can see them. A deployment that must
//! exclude all of these should `exec` after `fork`: a new program starts with an empty pool.

use std::cell::RefCell;

const POOL_LEN: usize = 1024;

struct Pool {
    bytes: [u8; POOL_LEN],
    /// Bytes before `next` have been handed out (and wiped).
    next: usize,
    /// The id of the process that filled `bytes`: in a child forked after the fill it differs
    /// from the child's own, and the copy must not be used. 0, never a process id, until the first
    /// fill.
    filled_by: u32,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_LEN], next: POOL_LEN, filled_by: 0 })
    };
}

/// Fills `buf` with bytes from the OS CSPRNG, through the per-thread pool when it is small.
pub(crate) fn fill(buf: &mut [u8]) {
    if buf.len() > POOL_LEN / 8 {
        return fill_direct(buf);
    }
    fill_from_pool(std::process::id(), buf);
}

/// [`fill`] for the process `pid` (the tests pretend to be a forked child with another one).
fn fill_from_pool(pid: u32, buf: &mut [u8]) {
    POOL.with_borrow_mut(|pool| {
        if pool.filled_by != pid || POOL_LEN - pool.next < buf.len() {
            fill_direct(&mut pool.bytes);
            pool.next = 0;
            pool.filled_by = pid;
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

    /// The next `n` bytes the pool would hand out as it stands.
    fn unused(n: usize) -> Vec<u8> {
        POOL.with_borrow(|pool| pool.bytes[pool.next..pool.next + n].to_vec())
    }

    #[test]
    fn a_pool_filled_by_another_process_is_refilled_before_use() {
        let (parent, child) = (u32::MAX - 1, u32::MAX);
        let mut nonce = [0u8; 24];
        fill_from_pool(parent, &mut nonce);
        // What the parent draws next is what a child forked now would find in its copy.
        let parents_next = unused(24);
        fill_from_pool(child, &mut nonce);
        assert_ne!(
            nonce.to_vec(),
            parents_next,
            "the child drew the parent's next bytes"
        );
        // The refilled pool is the child's own: it goes on serving from it without refilling.
        let childs_next = unused(24);
        fill_from_pool(child, &mut nonce);
        assert_eq!(nonce.to_vec(), childs_next);
    }
}
