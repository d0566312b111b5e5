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
//! pool is therefore stamped with the process that filled it and is refilled, before anything
//! is taken, in any other process. `tests/fork.rs` forks and checks that parent and child draw
//! different ids and nonces (it failed on every run before the stamp, and fails again if the
//! check is made to answer "no fork").
//!
//! ## How a child is told from its parent
//!
//! Where the platform has `fork` (Unix), by a fork handler: `pthread_atfork`, through the
//! `forkguard` crate (about 100 lines, read before it was taken), makes every `fork` bump a
//! counter in the child, and the pool's stamp is the counter's value at its fill. Checking it is
//! one load, no system call. Before, the stamp was the process id, and checking it cost a
//! `getpid` system call per draw, one per seal (issue 26: `strace -c` of `examples/hotpath.rs
//! write 10000`, 10,000 seals: 10,003 `getpid` calls before, none after; `getrandom` 243 both).
//! Where no handler can be registered (`pthread_atfork` failing, which needs memory to run out),
//! the process id is the stamp again, as on Windows, which has no `fork`.
//!
//! The measurements that chose the pool (the reference VM, 2 vCPUs shared with other builds,
//! Linux 6.18, glibc 2.36, the private seal of the ~200-byte session of `benches/seal.rs`; "best"
//! is the fastest of 15 rounds of 20,000 seals over 8 interleaved runs of the three builds,
//! "criterion" is `cargo bench --bench seal`'s `envelope/ours/Private/seal` over 3 interleaved
//! runs, median):
//!
//! | random source | system calls a seal | seal, best | seal, criterion | `SessionId::generate` |
//! | --- | --- | --- | --- | --- |
//! | pool, not fork-safe | 1/42 `getrandom` (1 KiB) | 640 ns | 770 ns | 45 ns |
//! | no pool, `getrandom` per draw | `getrandom` | 920 ns (+280) | 1,060 ns (+290) | 315 ns |
//! | pool + pid stamp (until issue 26) | `getpid` + 1/42 | 750 ns (+110) | 920 ns (+150) | 165 ns |
//!
//! One `getpid` costs ~120 ns, one 24-byte `getrandom` ~300 ns and a 1 KiB one ~2.3 µs (so even
//! the pool's bytes cost ~50 ns a nonce). Callgrind sees none of it, as the cost is in the
//! kernel. The fork handler takes the `getpid` away, which puts a seal back at the first row's
//! cost while staying fork-safe. With glibc 2.41 and Linux 6.11 or later, `getrandom` runs in
//! the vDSO from state that the kernel invalidates on fork and on VM clone; there, a pool-less
//! design would be both fork-safe and cheap, and is worth measuring again.
//!
//! ## What the handler does not see
//!
//! A fork handler runs on every `fork()` of the C library (glibc, musl, the BSDs and macOS), in
//! whatever pid namespace, so it closes the two gaps of the old
//! process-id stamp: an id recycled by a later descendant that still holds the copy, and a child
//! in a nested pid namespace whose id equals its ancestor's. What it cannot see is a process made
//! without the C library's `fork`: glibc's `_Fork` (2.34 and later), which skips the handlers by
//! design, or a raw `clone`/`clone3` system call, either without `exec` (no mainstream runtime
//! does this; Rust's `std::process::Command` execs), and, as before,
//! checkpoint/restore (CRIU) and cloned VM snapshots, which copy the whole process and are not
//! forks at all. A deployment that must exclude all of these should `exec` after `fork`: a new
//! program starts with an empty pool. `MADV_WIPEONFORK` would also catch a raw `clone` of the
//! whole address space, but needs `unsafe` (or a dependency that maps memory for us) for a page
//! of the pool, and `#![forbid(unsafe_code)]` holds here.

use std::cell::RefCell;

const POOL_LEN: usize = 1024;

struct Pool {
    bytes: [u8; POOL_LEN],
    /// Bytes before `next` have been handed out (and wiped).
    next: usize,
    /// The process that filled `bytes`; `None` until the first fill.
    filled_in: Option<Origin>,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_LEN], next: POOL_LEN, filled_in: None })
    };
}

/// The process a pool was filled in, in a form that tells a forked child from it (see the
/// module docs, "Fork safety").
enum Origin {
    /// Since the fill, no `fork` ran its handlers in this process's line (`pthread_atfork`,
    /// through `forkguard`: a counter the child's handler bumps; no system call to check).
    #[cfg(unix)]
    Atfork(forkguard::atfork::Guard),
    /// The id of the filling process, where no fork handler could be registered (or the
    /// platform has no `fork`): a system call to check on Unix, a read of the thread's
    /// environment block on Windows.
    Pid(u32),
}

impl Origin {
    /// This process, now.
    fn current() -> Origin {
        #[cfg(unix)]
        if let Ok(guard) = forkguard::atfork::Guard::try_new() {
            return Origin::Atfork(guard);
        }
        Origin::Pid(std::process::id())
    }

    /// Whether this is a process forked since `self` was taken.
    fn forked_since(&mut self) -> bool {
        match self {
            #[cfg(unix)]
            Origin::Atfork(guard) => guard.detected_fork(),
            Origin::Pid(pid) => *pid != std::process::id(),
        }
    }
}

/// Fills `buf` with bytes from the OS CSPRNG, through the per-thread pool when it is small.
pub(crate) fn fill(buf: &mut [u8]) {
    if buf.len() > POOL_LEN / 8 {
        return fill_direct(buf);
    }
    POOL.with_borrow_mut(|pool| {
        let forked = pool.filled_in.as_mut().is_none_or(Origin::forked_since);
        take(pool, forked, buf);
    });
}

/// Moves the pool's next `buf.len()` bytes into `buf`, refilling it first if it ran short or
/// if `forked` (its bytes are then a copy of another process's: see the module docs).
fn take(pool: &mut Pool, forked: bool, buf: &mut [u8]) {
    if forked || POOL_LEN - pool.next < buf.len() {
        // Stamped before the fill: a fork between the two (from a signal handler) then leaves
        // the child a stamp that is not its own, never the parent's bytes under the child's.
        let origin = Origin::current();
        fill_direct(&mut pool.bytes);
        pool.next = 0;
        pool.filled_in = Some(origin);
    }
    let taken = &mut pool.bytes[pool.next..pool.next + buf.len()];
    buf.copy_from_slice(taken);
    taken.fill(0);
    pool.next += buf.len();
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
        let draw = |forked: bool| {
            let mut nonce = [0u8; 24];
            POOL.with_borrow_mut(|pool| take(pool, forked, &mut nonce));
            nonce.to_vec()
        };
        draw(false);
        // What the parent draws next is what a child forked now would find in its copy.
        let parents_next = unused(24);
        assert_ne!(
            draw(true),
            parents_next,
            "the child drew the parent's next bytes"
        );
        // The refilled pool is the child's own: it goes on serving from it without refilling.
        let childs_next = unused(24);
        assert_eq!(draw(false), childs_next);
    }

    /// The check that costs no system call is the one in use where there is `fork`: a fork
    /// handler could be registered, and it reports no fork in this process.
    #[test]
    fn on_unix_a_fork_handler_tells_a_child_without_a_system_call() {
        let mut origin = Origin::current();
        #[cfg(unix)]
        assert!(matches!(origin, Origin::Atfork(_)));
        assert!(!origin.forked_since());
        assert!(!Origin::Pid(std::process::id()).forked_since());
        assert!(Origin::Pid(u32::MAX).forked_since());
    }
}
