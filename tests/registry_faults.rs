//! Fault injection on a live `SqliteRegistry` in a real file: the file deleted or its directory
//! removed, made read-only, locked by another writer, the disk full, pages corrupt. Each fault
//! gives a typed `RegistryError` (never a panic), no revoked session is ever reported valid, and
//! the registry recovers by itself once the fault clears. See `docs/reliability.md`.
//!
//! Several faults need root: `chattr +i` (an immutable file stops even root, where `chmod` does
//! not) and mounting a small tmpfs. Without them the test prints why and returns.
#![cfg(feature = "sqlite")]

mod skip;

#[cfg(feature = "hyper")]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, RegistryError, SqliteRegistry};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);
/// Generous, for a loaded machine; only ever reached when something is broken.
const DEADLINE: Duration = Duration::from_secs(20);
const PAGE: usize = 4096;

fn builder(path: &Path) -> sealed_sessions::registry::SqliteRegistryBuilder {
    SqliteRegistry::builder(path)
        .busy_timeout(Duration::from_millis(100))
        .cleanup_interval(Duration::ZERO)
}

fn open(path: &Path) -> SqliteRegistry {
    builder(path).open().unwrap()
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Sessions of one user, half of them revoked.
struct Sessions {
    user: &'static str,
    active: Vec<SessionId>,
    revoked: Vec<SessionId>,
}

async fn sessions(reg: &SqliteRegistry, user: &'static str, n: usize) -> Sessions {
    let now = SystemTime::now();
    let mut all = Vec::new();
    for _ in 0..n {
        let id = SessionId::generate();
        // A long user agent spreads the rows over more pages.
        let s = NewSession::new(id, user, now, now + HOUR).user_agent("Fault/1 ".repeat(20));
        reg.register(s).await.unwrap();
        all.push(id);
    }
    let revoked = all.split_off(n / 2);
    for id in &revoked {
        assert!(reg.revoke(user, *id).await.unwrap());
    }
    Sessions {
        user,
        active: all,
        revoked,
    }
}

/// What validate answers, through the cache as the middleware asks.
async fn validate(reg: &SqliteRegistry, id: SessionId, user: &str) -> Result<bool, RegistryError> {
    let now = SystemTime::now();
    match reg.validate_cached(id, user, now) {
        Some(answer) => Ok(answer),
        None => reg.validate(id, user, now).await,
    }
}

impl Sessions {
    /// No revoked session is valid, whatever else fails; every failure is `allowed`. Returns the
    /// number of errors.
    async fn check(&self, reg: &SqliteRegistry, allowed: fn(&RegistryError) -> bool) -> usize {
        let mut errors = 0;
        for id in &self.revoked {
            match validate(reg, *id, self.user).await {
                Ok(valid) => assert!(!valid, "revoked session {id} reported valid"),
                Err(e) => {
                    assert!(allowed(&e), "unexpected error {e:?}");
                    errors += 1;
                }
            }
        }
        for id in &self.active {
            if let Err(e) = validate(reg, *id, self.user).await {
                assert!(allowed(&e), "unexpected error {e:?}");
                errors += 1;
            }
        }
        errors
    }

    /// Everything answers as it should: the fault has cleared.
    async fn all_correct(&self, reg: &SqliteRegistry) {
        for id in &self.revoked {
            assert!(!validate(reg, *id, self.user).await.unwrap());
        }
        for id in &self.active {
            assert!(validate(reg, *id, self.user).await.unwrap());
        }
        let listed = reg.list_for_user(self.user, SystemTime::now()).await;
        assert_eq!(listed.unwrap().len(), self.active.len());
    }
}

/// A write works and is honoured: register, validate, revoke, refused.
async fn writes_work(reg: &SqliteRegistry) {
    let now = SystemTime::now();
    let id = SessionId::generate();
    reg.register(NewSession::new(id, "probe", now, now + HOUR))
        .await
        .unwrap();
    assert!(validate(reg, id, "probe").await.unwrap());
    assert!(reg.revoke("probe", id).await.unwrap());
    assert!(!validate(reg, id, "probe").await.unwrap());
}

/// Revokes `id` once the fault has cleared. The first attempt normally succeeds; one that
/// still meets the tail of the fault must fail typed, and a later one must succeed, with nothing
/// else to help it (no reopen, no restart). `Ok(false)` would mean a failed revocation was done.
async fn revoke_once_cleared(reg: &SqliteRegistry, user: &str, id: SessionId) {
    eventually(
        "the revocation succeeds after the fault",
        async || match reg.revoke(user, id).await {
            Ok(revoked) => {
                assert!(revoked, "reported failed, yet done");
                Some(())
            }
            Err(e @ RegistryError::Backend(_)) => panic!("untyped error {e:?}"),
            Err(e) => {
                eprintln!("retrying after {e:?}");
                None
            }
        },
    )
    .await;
}

/// Retries `attempt` until it returns `Some`, up to [`DEADLINE`].
async fn eventually<T>(what: &str, mut attempt: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(start.elapsed() < DEADLINE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Locked by another writer for longer than busy_timeout.

#[tokio::test]
async fn a_writer_lock_held_past_busy_timeout_is_busy_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;

    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let now = SystemTime::now();
    let new = NewSession::new(SessionId::generate(), "alice", now, now + HOUR);
    assert!(matches!(reg.register(new).await, Err(RegistryError::Busy)));
    let target = s.active[0];
    assert!(matches!(
        reg.revoke("alice", target).await,
        Err(RegistryError::Busy)
    ));
    assert!(matches!(
        reg.revoke_user("alice", None).await,
        Err(RegistryError::Busy)
    ));
    // WAL readers are not blocked by a writer: validation goes on, and the failed revocations
    // changed nothing (their callers were told so).
    assert_eq!(s.check(&reg, |_| false).await, 0);
    assert!(validate(&reg, target, "alice").await.unwrap());

    locker.execute_batch("COMMIT").unwrap();
    revoke_once_cleared(&reg, "alice", target).await;
    assert!(!validate(&reg, target, "alice").await.unwrap());
    writes_work(&reg).await;
}

// ---------------------------------------------------------------------------------------------
// Deleted while open.

#[tokio::test]
async fn deleted_files_are_noticed_and_reopened_empty_so_users_are_signed_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;
    s.all_correct(&reg).await; // the active ones are cached now

    for file in [
        path.clone(),
        companion(&path, "-wal"),
        companion(&path, "-shm"),
    ] {
        std::fs::remove_file(file).unwrap();
    }
    // The poller notices within its interval and the writer reopens a fresh database: a lost
    // registry signs everyone out (allow-list), it does not go on vouching from the lost file.
    for id in &s.active {
        eventually(
            "the deleted registry stops vouching",
            async || match validate(&reg, *id, "alice").await {
                Ok(false) => Some(()),
                Ok(true) => None,
                Err(e) => {
                    assert!(matches!(e, RegistryError::Replaced(_)), "{e:?}");
                    None
                }
            },
        )
        .await;
    }
    assert_eq!(s.check(&reg, |_| false).await, 0);
    assert!(path.is_file(), "recreated");
    writes_work(&reg).await;

    // The registry and a newcomer on the path agree again: a revocation by the newcomer (an
    // operator's tool, another process) reaches this registry.
    let now = SystemTime::now();
    let id = SessionId::generate();
    reg.register(NewSession::new(id, "bob", now, now + HOUR))
        .await
        .unwrap();
    assert!(validate(&reg, id, "bob").await.unwrap());
    let other = open(&path);
    assert_eq!(other.revoke_user("bob", None).await.unwrap(), 1);
    eventually("the other registry's revocation arrives", async || {
        (!validate(&reg, id, "bob").await.unwrap()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deleted_wal_and_shm_lose_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;
    let wal = companion(&path, "-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the commits are in the WAL"
    );
    std::fs::remove_file(&wal).unwrap();
    std::fs::remove_file(companion(&path, "-shm")).unwrap();

    // The writer checkpoints the old WAL into the database file before reopening, so every
    // registration and revocation is still there, for this registry and for a newcomer.
    eventually("the registry reopened", async || wal.exists().then_some(())).await;
    let errors = s
        .check(&reg, |e| matches!(e, RegistryError::Replaced(_)))
        .await;
    eprintln!("{errors} reads refused while reopening");
    eventually("reads work again", async || {
        (s.check(&reg, |e| matches!(e, RegistryError::Replaced(_)))
            .await
            == 0)
            .then_some(())
    })
    .await;
    s.all_correct(&reg).await;
    s.all_correct(&open(&path)).await;
    writes_work(&reg).await;
}

#[tokio::test]
async fn a_removed_directory_fails_typed_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("registry");
    std::fs::create_dir(&home).unwrap();
    let path = home.join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;
    std::fs::rename(&home, dir.path().join("moved-away")).unwrap();

    // Writes name the missing directory, reads the replaced file; nothing revoked is valid.
    let now = SystemTime::now();
    eventually("writes fail while the directory is gone", async || {
        let new = NewSession::new(SessionId::generate(), "alice", now, now + HOUR);
        match reg.register(new).await {
            Err(RegistryError::MissingDirectory(d)) => {
                assert_eq!(d, home);
                Some(())
            }
            // Before the writer noticed, it committed to the moved file.
            Ok(()) => None,
            Err(e) => panic!("{e:?}"),
        }
    })
    .await;
    assert!(matches!(
        reg.revoke_user("alice", None).await,
        Err(RegistryError::MissingDirectory(_))
    ));
    let errors = s
        .check(&reg, |e| matches!(e, RegistryError::Replaced(_)))
        .await;
    assert_eq!(
        errors,
        s.active.len() + s.revoked.len(),
        "no answer from the lost file"
    );

    // Back (empty): the registry creates a fresh database by itself; everyone is signed out.
    std::fs::create_dir(&home).unwrap();
    eventually("the registry reopens", async || {
        validate(&reg, s.active[0], "alice").await.ok()
    })
    .await;
    assert_eq!(s.check(&reg, |_| false).await, 0);
    for id in &s.active {
        assert!(!validate(&reg, *id, "alice").await.unwrap());
    }
    writes_work(&reg).await;
}

// ---------------------------------------------------------------------------------------------
// Made read-only while open.

/// Clears the immutable attribute again on drop, so the temp dir can always be removed.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// `chattr +i` on each path, or `None` (with the reason printed) if that is not possible.
    fn set(paths: &[PathBuf]) -> Option<Immutable> {
        let mut done = Immutable(Vec::new());
        for path in paths {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                skip::skipped("`chattr +i` is unavailable here (needs root and ext4/xfs)");
                return None;
            }
            done.0.push(path.clone());
        }
        Some(done)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(path).status();
        }
    }
}

#[tokio::test]
async fn a_file_made_read_only_while_open_is_read_only_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;

    // Commits go to the -wal first, the database file at checkpoints: both are made immutable.
    let Some(guard) = Immutable::set(&[path.clone(), companion(&path, "-wal")]) else {
        return;
    };
    let now = SystemTime::now();
    let new = NewSession::new(SessionId::generate(), "alice", now, now + HOUR);
    let err = reg.register(new).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::ReadOnly(p) if *p == path),
        "{err:?}"
    );
    let target = s.active[0];
    let err = reg.revoke("alice", target).await.unwrap_err();
    assert!(matches!(err, RegistryError::ReadOnly(_)), "{err:?}");
    let err = reg.revoke_user("alice", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::ReadOnly(_)), "{err:?}");
    assert_eq!(s.check(&reg, |_| false).await, 0, "reads are unaffected");
    assert!(validate(&reg, target, "alice").await.unwrap());

    drop(guard);
    revoke_once_cleared(&reg, "alice", target).await;
    assert!(!validate(&reg, target, "alice").await.unwrap());
    writes_work(&reg).await;
}

#[tokio::test]
async fn a_directory_made_read_only_while_open_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 4).await;
    // The registry's files all exist while it is open, so nothing needs the directory.
    let Some(_guard) = Immutable::set(&[dir.path().to_path_buf()]) else {
        return;
    };
    writes_work(&reg).await;
    s.all_correct(&reg).await;
}

// ---------------------------------------------------------------------------------------------
// Disk full.

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip::skipped("cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs(at))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system that holds `dir` with a file, until ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = [0u8; 1024];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
            return filler;
        }
    }
}

#[tokio::test]
async fn a_full_disk_is_full_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    // Real ENOSPC from the kernel, as SQLite sees it on a full disk (SQLITE_FULL), rather than
    // PRAGMA max_page_count, which only one connection would see and which fails differently.
    let Some(mnt) = Tmpfs::mount(dir.path().join("mnt"), "1m") else {
        return;
    };
    let path = mnt.0.join("s.db");
    let reg = open(&path);
    let s = sessions(&reg, "alice", 10).await;
    let filler = fill(&mnt.0);

    // What is left of the last block, and of the WAL's own space, may still take a write or
    // two; then every write is Full.
    let now = SystemTime::now();
    let mut accepted = 0;
    eventually("a write is refused as Full", async || {
        let new = NewSession::new(SessionId::generate(), "carol", now, now + HOUR)
            .user_agent("x".repeat(500));
        match reg.register(new).await {
            Ok(()) => {
                accepted += 1;
                None
            }
            Err(RegistryError::Full) => Some(()),
            Err(e) => panic!("{e:?}"),
        }
    })
    .await;
    eprintln!("{accepted} registrations fitted after the disk filled");
    let target = s.active[0];
    match reg.revoke("alice", target).await {
        Err(RegistryError::Full) => assert!(validate(&reg, target, "alice").await.unwrap()),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(s.check(&reg, |_| false).await, 0, "reads are unaffected");

    std::fs::remove_file(filler).unwrap();
    revoke_once_cleared(&reg, "alice", target).await;
    assert!(!validate(&reg, target, "alice").await.unwrap());
    writes_work(&reg).await;
    drop(reg);
}

// ---------------------------------------------------------------------------------------------
// Corrupt pages.

/// A database of sessions written and checkpointed into the main file (the registry closed).
async fn checkpointed(path: &Path, n: usize) -> (Sessions, Vec<u8>) {
    let reg = open(path);
    let s = sessions(&reg, "alice", n).await;
    drop(reg); // the last connection checkpoints the WAL into the file and removes it
    assert!(!companion(path, "-wal").exists());
    (s, std::fs::read(path).unwrap())
}

fn corrupt(bytes: &[u8], page: usize) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    bad[(page - 1) * PAGE..page * PAGE].fill(0x5a);
    bad
}

fn is_corrupt(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Corrupt(_))
}

#[tokio::test]
async fn every_page_corrupt_in_turn_while_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (s, good) = checkpointed(&path, 100).await;
    let pages = good.len() / PAGE;
    let (mut refused_at_open, mut detected) = (0, 0);
    // Page 1 (the header and schema) is `registry_errors.rs`'s case; here every other page.
    for page in 2..=pages {
        std::fs::write(&path, corrupt(&good, page)).unwrap();
        let reg = match builder(&path).cache_capacity(0).open() {
            Ok(reg) => reg,
            Err(e) => {
                assert!(is_corrupt(&e), "page {page}: {e:?}");
                refused_at_open += 1;
                continue;
            }
        };
        let errors = s.check(&reg, is_corrupt).await;
        let listed = reg.list_for_user("alice", SystemTime::now()).await;
        if errors > 0 || listed.is_err() {
            detected += 1;
        }
        // Repaired while open (a restored copy): the registry answers correctly at once.
        std::fs::write(&path, &good).unwrap();
        s.all_correct(&reg).await;
    }
    eprintln!("{pages} pages: {refused_at_open} refused at open, {detected} detected at use");
    assert!(detected > 0, "the corruption was seen");
}

#[tokio::test]
async fn pages_corrupt_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (s, good) = checkpointed(&path, 100).await;
    let reg = builder(&path).cache_capacity(0).open().unwrap();
    let pages = good.len() / PAGE;
    let mut bad = good.clone();
    for page in 2..=pages {
        bad = corrupt(&bad, page);
    }
    std::fs::write(&path, &bad).unwrap();

    // Pages the connections already hold may still answer (correctly); the rest fail, typed.
    let errors = s.check(&reg, is_corrupt).await;
    let now = SystemTime::now();
    let listed = reg.list_for_user("alice", now).await;
    assert!(
        matches!(listed, Err(RegistryError::Corrupt(_))),
        "{listed:?}"
    );
    let target = s.active[0];
    let revoked = reg.revoke("alice", target).await;
    assert!(
        matches!(revoked, Err(RegistryError::Corrupt(_))),
        "{revoked:?}"
    );
    eprintln!("{errors} validations failed as Corrupt");

    std::fs::write(&path, &good).unwrap();
    s.all_correct(&reg).await;
    revoke_once_cleared(&reg, "alice", target).await;
    assert!(!validate(&reg, target, "alice").await.unwrap());
    writes_work(&reg).await;
}

// ---------------------------------------------------------------------------------------------
// Through the middleware.

#[cfg(feature = "hyper")]
#[tokio::test]
async fn the_middleware_answers_503_with_the_cookie_kept_and_recovers() {
    use http::header::RETRY_AFTER;
    use http::StatusCode;
    use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
    use std::sync::Arc;
    use support::{get, serve};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // No validation cache, so every request reads the table, as a cache miss does.
    let reg = Arc::new(builder(&path).cache_capacity(0).open().unwrap());
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .registry(reg.clone())
        .build()
        .unwrap();
    let addr = serve(SessionLayer::new(config)).await;
    let jar = get(addr, "/login/dave", None)
        .await
        .cookie_pair("__Host-session");
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "dave");

    // Move the rows into the main file, then corrupt every page but the first.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    for page in 2..=good.len() / PAGE {
        bad = corrupt(&bad, page);
    }
    std::fs::write(&path, &bad).unwrap();

    let r = get(addr, "/set/a/1", Some(&jar)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[RETRY_AFTER], "5");
    assert!(
        r.set_cookies("__Host-session").is_empty(),
        "the cookie is kept"
    );

    std::fs::write(&path, &good).unwrap();
    let r = get(addr, "/user", Some(&jar)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "dave"));
}
