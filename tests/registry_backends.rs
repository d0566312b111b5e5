//! One suite, every backend: the same allow-list semantics on SQLite and (when a server is
//! available, see `tests/pg_support`) PostgreSQL, through `Arc<dyn Registry>`.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod backends;
mod pg_support;

use std::time::{Duration, Instant, SystemTime};

use backends::backends;
use sealed_sessions::registry::{NewSession, Registry, RegistryError};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

async fn session(reg: &dyn Registry, user: &str, at: SystemTime) -> SessionId {
    let id = SessionId::generate();
    reg.register(NewSession::new(id, user, at, at + HOUR).user_agent("agent/1"))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn register_validate_list_and_revoke() {
    for b in backends("register_validate_list") {
        let (reg, name) = (&*b.registry, b.name);
        let first = session(reg, "alice", t(0)).await;
        let second = session(reg, "alice", t(10)).await;
        let bobs = session(reg, "bob", t(0)).await;
        assert!(reg.validate(first, "alice", t(20)).await.unwrap(), "{name}");
        assert!(
            !reg.validate(first, "bob", t(20)).await.unwrap(),
            "{name}: owner"
        );
        assert!(
            !reg.validate(first, "alice", t(0) + HOUR).await.unwrap(),
            "{name}: expired"
        );
        assert!(
            !reg.validate(SessionId::generate(), "alice", t(20))
                .await
                .unwrap(),
            "{name}: unknown"
        );
        let listed = reg.list_for_user("alice", t(20)).await.unwrap();
        assert_eq!(
            listed.iter().map(|s| s.id).collect::<Vec<_>>(),
            [second, first],
            "{name}: newest first"
        );
        assert_eq!(listed[0].user_agent.as_deref(), Some("agent/1"), "{name}");
        assert_eq!(listed[0].created_at, t(10), "{name}");

        // Scoped: another user's id is not revoked.
        assert!(!reg.revoke("bob", first).await.unwrap(), "{name}");
        assert!(reg.validate(first, "alice", t(20)).await.unwrap(), "{name}");
        assert!(reg.revoke("alice", first).await.unwrap(), "{name}");
        assert!(!reg.revoke("alice", first).await.unwrap(), "{name}: twice");
        assert_eq!(reg.validate_cached(first, "alice", t(20)), None, "{name}");
        assert!(
            !reg.validate(first, "alice", t(20)).await.unwrap(),
            "{name}"
        );
        assert!(reg.validate(bobs, "bob", t(20)).await.unwrap(), "{name}");
        assert!(reg.revoke_id(bobs).await.unwrap(), "{name}");
        assert!(!reg.validate(bobs, "bob", t(20)).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn sign_out_others_and_everywhere() {
    for b in backends("sign_out_others") {
        let (reg, name) = (&*b.registry, b.name);
        let ids: Vec<SessionId> = futures_join(reg, "carol", 5).await;
        assert!(reg.validate(ids[0], "carol", t(1)).await.unwrap(), "{name}");
        assert_eq!(
            reg.revoke_user("carol", Some(ids[0])).await.unwrap(),
            4,
            "{name}"
        );
        for &id in &ids[1..] {
            assert_ne!(reg.validate_cached(id, "carol", t(1)), Some(true), "{name}");
            assert!(!reg.validate(id, "carol", t(1)).await.unwrap(), "{name}");
        }
        assert!(
            reg.validate(ids[0], "carol", t(1)).await.unwrap(),
            "{name}: kept"
        );
        assert_eq!(reg.revoke_user("carol", None).await.unwrap(), 1, "{name}");
        assert!(
            !reg.validate(ids[0], "carol", t(1)).await.unwrap(),
            "{name}"
        );
        assert!(
            reg.list_for_user("carol", t(1)).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

async fn futures_join(reg: &dyn Registry, user: &str, n: usize) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(session(reg, user, t(0)).await);
    }
    ids
}

#[tokio::test]
async fn rotation_is_all_or_nothing() {
    for b in backends("rotation") {
        let (reg, name) = (&*b.registry, b.name);
        let old = session(reg, "dave", t(0)).await;
        let new = |at| NewSession::new(SessionId::generate(), "dave", at, at + HOUR);
        assert!(
            !reg.rotate("mallory", old, new(t(1))).await.unwrap(),
            "{name}"
        );
        let first = new(t(1));
        let first_id = first.id;
        assert!(reg.rotate("dave", old, first).await.unwrap(), "{name}");
        // The same sign-in under a new id: created when the old one was, seen at the rotation.
        let listed = reg.list_for_user("dave", t(2)).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|s| (s.id, s.created_at, s.last_seen_at))
                .collect::<Vec<_>>(),
            [(first_id, t(0), t(1))],
            "{name}"
        );
        assert!(!reg.validate(old, "dave", t(2)).await.unwrap(), "{name}");
        assert!(
            reg.validate(first_id, "dave", t(2)).await.unwrap(),
            "{name}"
        );
        let again = new(t(2));
        let again_id = again.id;
        assert!(
            !reg.rotate("dave", old, again).await.unwrap(),
            "{name}: spent"
        );
        assert!(
            !reg.validate(again_id, "dave", t(2)).await.unwrap(),
            "{name}"
        );
        assert_eq!(reg.revoke_user("dave", None).await.unwrap(), 1, "{name}");
        let late = new(t(3));
        assert!(
            !reg.rotate("dave", first_id, late).await.unwrap(),
            "{name}: revoked"
        );
        assert!(
            reg.list_for_user("dave", t(3)).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn duplicate_ids_fail_alone_and_cleanup_counts() {
    for b in backends("duplicates_cleanup") {
        let (reg, name) = (&*b.registry, b.name);
        let id = session(reg, "erin", t(0)).await;
        let again = reg.register(NewSession::new(id, "erin", t(0), t(0) + HOUR));
        let other = session(reg, "erin", t(5));
        let (again, other) = tokio::join!(again, other);
        assert!(
            matches!(again, Err(RegistryError::DuplicateId(d)) if d == id),
            "{name}: {again:?}"
        );
        assert!(reg.validate(other, "erin", t(6)).await.unwrap(), "{name}");
        assert!(
            reg.validate(id, "erin", t(6)).await.unwrap(),
            "{name}: first kept"
        );
        // Both expire at their hour; cleanup at 1 h + 1 s takes the first only.
        assert_eq!(reg.delete_expired(t(1) + HOUR).await.unwrap(), 1, "{name}");
        assert_eq!(reg.delete_expired(t(1) + HOUR).await.unwrap(), 0, "{name}");
        assert!(reg.validate(other, "erin", t(6)).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn last_seen_is_written_behind_and_merged() {
    for b in backends("last_seen") {
        let (reg, name) = (&*b.registry, b.name);
        let id = session(reg, "frank", t(0)).await;
        assert!(reg.validate(id, "frank", t(1)).await.unwrap(), "{name}");
        reg.touch(id, t(120));
        let listed = reg.list_for_user("frank", t(121)).await.unwrap();
        assert_eq!(
            listed[0].last_seen_at,
            t(120),
            "{name}: merged before the flush"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listed = reg.list_for_user("frank", t(121)).await.unwrap();
        assert_eq!(listed[0].last_seen_at, t(120), "{name}: written");
    }
}

#[tokio::test]
async fn a_check_ahead_of_time_does_not_refuse_the_session_now() {
    for b in backends("check_ahead") {
        let (reg, name) = (&*b.registry, b.name);
        let id = session(reg, "gina", t(0)).await;
        // Another host, whose cache has never seen the session: its answers come from the table.
        let other = (b.another)();
        assert!(
            !other.validate(id, "gina", t(0) + 2 * HOUR).await.unwrap(),
            "{name}"
        );
        assert!(
            other.validate(id, "gina", t(10)).await.unwrap(),
            "{name}: expired later, valid now"
        );
    }
}

/// A registry whose clock runs two hours ahead deletes sessions that are live by every other
/// clock: every other registry on the same storage stops vouching for them, as after any
/// deletion, within the usual propagation.
#[tokio::test]
async fn a_cleanup_by_a_clock_running_ahead_reaches_every_registry() {
    for b in backends("skewed_cleanup") {
        let (reg, name) = (&*b.registry, b.name);
        let other = (b.another)();
        let now = SystemTime::now();
        let id = SessionId::generate();
        reg.register(NewSession::new(id, "hal", now, now + HOUR))
            .await
            .unwrap();
        assert!(other.validate(id, "hal", now).await.unwrap(), "{name}");
        assert_eq!(
            other.validate_cached(id, "hal", SystemTime::now()),
            Some(true),
            "{name}"
        );
        assert_eq!(
            reg.delete_expired(now + 2 * HOUR).await.unwrap(),
            1,
            "{name}"
        );
        let start = Instant::now();
        while other.validate_cached(id, "hal", SystemTime::now()) == Some(true) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{name}: the other registry still vouches for the deleted session"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!(
            "{name}: a deletion by a clock 2 h ahead left the other registry's cache after {:?}",
            start.elapsed()
        );
        assert!(
            !other.validate(id, "hal", SystemTime::now()).await.unwrap(),
            "{name}"
        );
    }
}
