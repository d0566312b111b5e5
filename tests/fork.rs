//! A process that forks after drawing random bytes must not hand its child the same session ids
//! and nonces it will use itself (the security review's finding on `src/random.rs`).
//!
//! The parent draws once so that its per-thread pool is full, forks, and the child draws a
//! session id (`Claims::new`) and a nonce (`Sealer::seal` in private mode) and sends both back
//! through a pipe. The parent then makes the same two draws. With a pool that does not notice
//! the fork, the child's draws are the parent's next ones byte for byte, so this fails every time,
//! not by chance.
//!
//! The test is its own binary with `harness = false` (see Cargo.toml): `main` runs on the only
//! thread, so the child of `fork` is an ordinary single-threaded copy and may allocate and take
//! locks. Under the default harness the fork would happen while other threads (the harness's,
//! other tests') may hold the allocator's or stdout's locks, and the child could deadlock on them:
//! after `fork` in a multi-threaded process only async-signal-safe calls are guaranteed, and a
//! seal allocates.

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    println!("fork: skipped (not unix)");
}

#[cfg(unix)]
mod unix {
    use std::time::{Duration, SystemTime};

    use base64_simd::URL_SAFE_NO_PAD;
    use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer, SessionId};

    /// A session id and a nonce, as one draw of each: 16 + 24 bytes.
    const DRAW_LEN: usize = SessionId::LEN + NONCE_LEN;
    /// The envelope (README, "The cookie envelope"): header (6 bytes) || nonce (24) || ...
    const HEADER_LEN: usize = 6;
    const NONCE_LEN: usize = 24;

    /// Draws a session id (a new session) and a nonce (sealing it), as a server does per sign-in.
    fn draw(sealer: &Sealer) -> [u8; DRAW_LEN] {
        let now = SystemTime::now();
        let claims = Claims::new(now, Duration::from_secs(3600), Duration::from_secs(600));
        let value = sealer.seal("session", &claims).expect("seal");
        let raw = URL_SAFE_NO_PAD
            .decode_to_vec(value.as_bytes())
            .expect("base64url");
        let mut out = [0u8; DRAW_LEN];
        out[..SessionId::LEN].copy_from_slice(claims.id().as_bytes());
        out[SessionId::LEN..].copy_from_slice(&raw[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        out
    }

    pub fn main() {
        // Keys come straight from the OS, not from the pool; the sealer draws nothing until it
        // seals.
        let sealer = Sealer::new(KeyRing::new(Key::generate()), Mode::Private);
        // Fill this thread's pool (as `SessionConfig::build` or `SqliteRegistry::open` do) so that
        // the fork copies unused pool bytes into the child.
        let before = draw(&sealer);

        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors `pipe` writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        let [read_fd, write_fd] = fds;

        // SAFETY: this process has one thread (harness = false), so the child is a complete copy
        // of it and may run ordinary Rust code; it leaves with `_exit`, never returning into
        // `main`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match std::panic::catch_unwind(|| draw(&sealer)) {
                Ok(child) => {
                    // SAFETY: `child` is DRAW_LEN readable bytes; `write_fd` is the pipe's open
                    // write end. 40 bytes are below PIPE_BUF, so the write is atomic and whole.
                    let written = unsafe { libc::write(write_fd, child.as_ptr().cast(), DRAW_LEN) };
                    if written == DRAW_LEN as isize {
                        0
                    } else {
                        3
                    }
                }
                Err(_) => 2,
            };
            // SAFETY: ends the child at once, without running the parent's atexit handlers or
            // flushing buffers it shares with the parent.
            unsafe { libc::_exit(code) };
        }

        // SAFETY: closing our copy of the write end, which this process no longer uses.
        unsafe { libc::close(write_fd) };
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        assert_eq!(
            unsafe { libc::waitpid(pid, &mut status, 0) },
            pid,
            "waitpid"
        );
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child failed (wait status {status:#x})"
        );
        let mut child = [0u8; DRAW_LEN];
        // SAFETY: `child` has room for DRAW_LEN bytes; `read_fd` is the pipe's open read end.
        let read = unsafe { libc::read(read_fd, child.as_mut_ptr().cast(), DRAW_LEN) };
        assert_eq!(read, DRAW_LEN as isize, "short read from the child");
        // SAFETY: closing the read end, no longer used.
        unsafe { libc::close(read_fd) };

        let after = draw(&sealer);
        let split =
            |d: &[u8; DRAW_LEN]| (d[..SessionId::LEN].to_vec(), d[SessionId::LEN..].to_vec());
        let (child_id, child_nonce) = split(&child);
        let (parent_id, parent_nonce) = split(&after);
        assert_ne!(before, after, "two draws in one process repeated");
        // Both checked before either fails, so a failure says which of the two repeated.
        let same_id = child_id == parent_id;
        let same_nonce = child_nonce == parent_nonce;
        assert!(
            !same_id && !same_nonce,
            "after fork the child drew what the parent drew next: session id repeated: {same_id}, \
             nonce repeated: {same_nonce} (one key, one nonce, two plaintexts)"
        );
        println!("fork: child and parent drew different session ids and nonces");
    }
}
