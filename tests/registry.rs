//! The registry's behaviour through its public API, on a real database file in a temp dir.
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, RegistryError, SqliteRegistry};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);

fn open(path: &Path) -> SqliteRegistry {
    SqliteRegistry::builder(path)
        .cleanup_interval(Duration::ZERO)
        .open()
        .expect("open the registry")
}

/// A fixed clock, millisecond-aligned like the stored times.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

async fn register(
    reg: &dyn Registry,
    user: &str,
    created: SystemTime,
    life: Duration,
) -> SessionId {
    let id = SessionId::generate();
    reg.register(NewSession::new(id, user, created, created + life))
        .await
        .expect("register");
    id
}

async fn valid(reg: &dyn Registry, id: SessionId, user: &str, now: SystemTime) -> bool {
    match reg.validate_cached(id, user, now) {
        Some(answer) => answer,
        None => reg.validate(id, user, now).await.expect("validate"),
    }
}

#[tokio::test]
async fn register_list_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let id = SessionId::generate();
    let session = NewSession::new(id, "alice", t0(), t0() + HOUR)
        .user_agent("Firefox")
        .ip("2001:db8::1".parse().unwrap());
    reg.register(session).await.unwrap();
    let other = register(&reg, "bob", t0(), HOUR).await;

    assert_eq!(
        reg.validate_cached(id, "alice", t0()),
        Some(true),
        "registered sessions are cached"
    );
    assert!(reg.validate(id, "alice", t0()).await.unwrap());
    assert!(
        !reg.validate(id, "bob", t0()).await.unwrap(),
        "another user's id is refused"
    );
    assert!(
        !reg.validate(SessionId::generate(), "alice", t0())
            .await
            .unwrap(),
        "unknown ids fail closed"
    );

    let list = reg.list_for_user("alice", t0()).await.unwrap();
    assert_eq!(list.len(), 1);
    let info = &list[0];
    assert_eq!(info.id, id);
    assert_eq!(info.created_at, t0());
    assert_eq!(info.last_seen_at, t0());
    assert_eq!(info.expires_at, t0() + HOUR);
    assert_eq!(info.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(info.ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(reg.list_for_user("bob", t0()).await.unwrap()[0].id, other);
    assert!(reg.list_for_user("carol", t0()).await.unwrap().is_empty());
}

#[tokio::test]
async fn validate_reads_the_table_when_the_cache_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::builder(dir.path().join("s.db"))
        .cache_capacity(0)
        .open()
        .unwrap();
    let id = register(&reg, "alice", t0(), HOUR).await;
    assert_eq!(reg.validate_cached(id, "alice", t0()), None);
    assert!(reg.validate(id, "alice", t0()).await.unwrap());
    assert!(!reg.validate(id, "alice", t0() + HOUR).await.unwrap());
    assert!(reg.revoke("alice", id).await.unwrap());
    assert!(!reg.validate(id, "alice", t0()).await.unwrap());
}

#[tokio::test]
async fn duplicate_ids_are_refused_without_harming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let id = register(&reg, "alice", t0(), HOUR).await;
    let again = reg
        .register(NewSession::new(id, "mallory", t0(), t0() + HOUR))
        .await;
    assert!(
        matches!(again, Err(RegistryError::DuplicateId(dup)) if dup == id),
        "{again:?}"
    );
    assert!(valid(&reg, id, "alice", t0()).await);
    assert!(!valid(&reg, id, "mallory", t0()).await);
}

#[tokio::test]
async fn revoke_is_scoped_to_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let alice = register(&reg, "alice", t0(), HOUR).await;
    let bob = register(&reg, "bob", t0(), HOUR).await;

    assert!(
        !reg.revoke("bob", alice).await.unwrap(),
        "bob cannot revoke alice's session"
    );
    assert!(valid(&reg, alice, "alice", t0()).await);
    assert_eq!(reg.list_for_user("alice", t0()).await.unwrap().len(), 1);

    assert!(reg.revoke("alice", alice).await.unwrap());
    assert_eq!(
        reg.validate_cached(alice, "alice", t0()),
        None,
        "evicted before revoke returned"
    );
    assert!(!valid(&reg, alice, "alice", t0()).await);
    assert!(
        !reg.revoke("alice", alice).await.unwrap(),
        "a second revoke changes nothing"
    );
    assert!(reg.list_for_user("alice", t0()).await.unwrap().is_empty());

    assert!(
        reg.revoke_id(bob).await.unwrap(),
        "an operator revokes by id alone"
    );
    assert!(!valid(&reg, bob, "bob", t0()).await);
    assert!(!reg.revoke_id(bob).await.unwrap());
}

#[tokio::test]
async fn revoke_user_except_the_current_session() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(register(&reg, "alice", t0(), HOUR).await);
    }
    let bob = register(&reg, "bob", t0(), HOUR).await;
    let current = ids[2];

    assert_eq!(reg.revoke_user("alice", Some(current)).await.unwrap(), 4);
    for &id in &ids {
        assert_eq!(valid(&reg, id, "alice", t0()).await, id == current);
    }
    let list = reg.list_for_user("alice", t0()).await.unwrap();
    assert_eq!(list.iter().map(|s| s.id).collect::<Vec<_>>(), vec![current]);
    assert!(
        valid(&reg, bob, "bob", t0()).await,
        "other users are untouched"
    );

    assert_eq!(reg.revoke_user("alice", None).await.unwrap(), 1);
    assert!(!valid(&reg, current, "alice", t0()).await);
    assert_eq!(reg.revoke_user("alice", None).await.unwrap(), 0);
    assert_eq!(reg.revoke_user("nobody", None).await.unwrap(), 0);
}

#[tokio::test]
async fn expiry_and_manual_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let short = register(&reg, "alice", t0(), Duration::from_secs(10)).await;
    let long = register(&reg, "alice", t0(), HOUR).await;
    let later = t0() + Duration::from_secs(10);

    assert!(valid(&reg, short, "alice", t0()).await);
    assert!(
        !valid(&reg, short, "alice", later).await,
        "expired at expires_at"
    );
    assert!(!reg.validate(short, "alice", later).await.unwrap());
    let list = reg.list_for_user("alice", later).await.unwrap();
    assert_eq!(list.iter().map(|s| s.id).collect::<Vec<_>>(), vec![long]);

    assert_eq!(reg.delete_expired(t0()).await.unwrap(), 0);
    assert_eq!(reg.delete_expired(later).await.unwrap(), 1);
    assert_eq!(reg.delete_expired(later).await.unwrap(), 0);
    assert!(valid(&reg, long, "alice", later).await);
    assert_eq!(reg.delete_expired(t0() + 2 * HOUR).await.unwrap(), 1);
    reg.stop();
    let reg = open(&dir.path().join("s.db"));
    assert!(
        !reg.validate(long, "alice", t0()).await.unwrap(),
        "a deleted row fails closed"
    );
}

#[tokio::test]
async fn background_cleanup_deletes_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = SqliteRegistry::builder(&path)
        .cleanup_interval(Duration::from_millis(20))
        .open()
        .unwrap();
    let now = SystemTime::now();
    let expired = SessionId::generate();
    reg.register(NewSession::new(
        expired,
        "alice",
        now - HOUR,
        now - Duration::from_secs(1),
    ))
    .await
    .unwrap();
    let active = register(&reg, "alice", now, HOUR).await;

    let rows = |path: &Path| -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&path) != 1 {
        assert!(
            Instant::now() < deadline,
            "the background cleanup never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(valid(&reg, active, "alice", SystemTime::now()).await);
    reg.stop();
}

#[tokio::test]
async fn touch_is_throttled_written_behind_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let id = register(&reg, "alice", t0(), 10 * HOUR).await;
    let seen = t0() + Duration::from_secs(120);

    reg.touch(id, seen);
    reg.touch(id, seen + Duration::from_secs(30)); // within the 60 s throttle: dropped
    let list = reg.list_for_user("alice", t0()).await.unwrap();
    assert_eq!(
        list[0].last_seen_at, seen,
        "pending last-seen shows at once"
    );

    reg.stop();
    let reg = open(&path);
    let list = reg.list_for_user("alice", t0()).await.unwrap();
    assert_eq!(list[0].last_seen_at, seen, "stop flushed the queued update");
    reg.touch(id, t0()); // older than what is stored: never moves last-seen back
    reg.stop();
    let reg = open(&path);
    assert_eq!(
        reg.list_for_user("alice", t0()).await.unwrap()[0].last_seen_at,
        seen
    );
}

#[tokio::test]
async fn reopening_keeps_sessions_and_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = open(&path);
    let kept = register(&reg, "alice", t0(), HOUR).await;
    let revoked = register(&reg, "alice", t0(), HOUR).await;
    assert!(reg.revoke("alice", revoked).await.unwrap());
    drop(reg);

    let reg = open(&path);
    assert!(valid(&reg, kept, "alice", t0()).await);
    assert!(!valid(&reg, revoked, "alice", t0()).await);
    assert_eq!(reg.list_for_user("alice", t0()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_stopped_registry_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("s.db"));
    let id = register(&reg, "alice", t0(), HOUR).await;
    reg.stop();
    reg.stop();
    assert!(matches!(
        reg.revoke("alice", id).await,
        Err(RegistryError::Stopped)
    ));
    assert!(matches!(
        reg.list_for_user("alice", t0()).await,
        Err(RegistryError::Stopped)
    ));
    assert!(matches!(
        reg.register(NewSession::new(
            SessionId::generate(),
            "a",
            t0(),
            t0() + HOUR
        ))
        .await,
        Err(RegistryError::Stopped)
    ));
    reg.touch(id, t0());
}

#[tokio::test]
async fn usable_as_a_shared_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let reg: std::sync::Arc<dyn Registry> = std::sync::Arc::new(open(&dir.path().join("s.db")));
    let id = register(&*reg, "alice", t0(), HOUR).await;
    let task = tokio::spawn({
        let reg = reg.clone();
        async move { reg.validate(id, "alice", t0()).await }
    });
    assert!(task.await.unwrap().unwrap());
}

#[tokio::test]
async fn a_cap_on_sessions_per_user_revokes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::builder(dir.path().join("s.db"))
        .max_sessions_per_user(2)
        .open()
        .unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut ids = Vec::new();
    for n in 0..4u64 {
        let id = SessionId::generate();
        let at = t0 + Duration::from_secs(n);
        reg.register(NewSession::new(
            id,
            "alice",
            at,
            at + Duration::from_secs(3600),
        ))
        .await
        .unwrap();
        ids.push(id);
    }
    let other = SessionId::generate();
    reg.register(NewSession::new(
        other,
        "bob",
        t0,
        t0 + Duration::from_secs(3600),
    ))
    .await
    .unwrap();
    let now = t0 + Duration::from_secs(10);
    let listed: Vec<SessionId> = reg
        .list_for_user("alice", now)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [ids[3], ids[2]], "the two newest are kept");
    for (id, active) in [
        (ids[0], false),
        (ids[1], false),
        (ids[3], true),
        (other, true),
    ] {
        let user = if id == other { "bob" } else { "alice" };
        assert_eq!(reg.validate(id, user, now).await.unwrap(), active, "{id}");
    }
    // A rotation counts the same way: the new id is kept, the oldest goes.
    let renewed = SessionId::generate();
    let at = t0 + Duration::from_secs(20);
    assert!(reg
        .rotate(
            "alice",
            ids[3],
            NewSession::new(renewed, "alice", at, at + Duration::from_secs(3600))
        )
        .await
        .unwrap());
    let listed = reg.list_for_user("alice", at).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [renewed, ids[2]]
    );
}

#[tokio::test]
async fn rotation_needs_the_old_id_active_and_the_users_own() {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::open(dir.path().join("s.db")).unwrap();
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let old = SessionId::generate();
    reg.register(NewSession::new(old, "alice", now, now + hour))
        .await
        .unwrap();
    let new = || NewSession::new(SessionId::generate(), "alice", now, now + hour);
    // Another user's claim on the id changes nothing.
    assert!(!reg.rotate("mallory", old, new()).await.unwrap());
    assert!(reg.validate(old, "alice", now).await.unwrap());
    let first = new();
    let first_id = first.id;
    assert!(reg.rotate("alice", old, first).await.unwrap());
    assert!(!reg.validate(old, "alice", now).await.unwrap());
    assert!(reg.validate(first_id, "alice", now).await.unwrap());
    // The old id is spent: a second rotation of it records nothing.
    let second = new();
    let second_id = second.id;
    assert!(!reg.rotate("alice", old, second).await.unwrap());
    assert!(!reg.validate(second_id, "alice", now).await.unwrap());
    // An expired session does not rotate either.
    let later = now + 2 * hour;
    let late = NewSession::new(SessionId::generate(), "alice", later, later + hour);
    assert!(!reg.rotate("alice", first_id, late).await.unwrap());
    assert_eq!(reg.list_for_user("alice", now).await.unwrap().len(), 1);
}
