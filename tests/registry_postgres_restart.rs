//! The PostgreSQL server restarted under two hosts: `pg_ctl restart -m fast`, and a crash
//! (`stop -m immediate`, then `start`), each with revocations made while the other host's
//! listener is still reconnecting. Its own test binary, because it takes the shared test server
//! down (test binaries run one at a time). Needs a server (`tests/pg_support`) and
//! `SEALED_SESSIONS_PG_CTL`, a command that runs `pg_ctl` for it with the arguments given
//! (`.ci/run` writes one); skips with a reason otherwise.
#![cfg(feature = "postgres")]

mod pg_support;

use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{
    NewSession, PostgresRegistry, PostgresRegistryBuilder, Registry, RegistryError,
};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);
/// Generous, for a loaded CI machine: a limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(30);

fn pg_ctl(args: &str) {
    let command = std::env::var("SEALED_SESSIONS_PG_CTL").unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} {args}"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {args} failed");
}

/// Retries `op` while the server is coming back.
async fn retrying<T>(mut op: impl AsyncFnMut() -> Result<T, RegistryError>) -> T {
    let start = Instant::now();
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(
                    start.elapsed() < DEADLINE,
                    "the server never came back: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn cached(a: &PostgresRegistry, b: &PostgresRegistry, user: &str) -> SessionId {
    let now = SystemTime::now();
    let id = SessionId::generate();
    retrying(async || a.register(NewSession::new(id, user, now, now + HOUR)).await).await;
    assert!(retrying(async || b.validate(id, user, now).await).await);
    id
}

/// Revokes `id` on `a` as soon as the server takes it, then checks that `b` stops vouching for
/// it within the staleness bound (the correctness bound) and refuses it once it can read.
async fn revoked_everywhere(
    a: &PostgresRegistry,
    b: &PostgresRegistry,
    id: SessionId,
    bound: Duration,
) {
    assert!(retrying(async || a.revoke("alice", id).await).await);
    let returned = Instant::now();
    while b.validate_cached(id, "alice", SystemTime::now()) == Some(true) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = returned.elapsed();
    println!("revoked after the restart: the other host stopped vouching {took:?} after revoke() returned");
    // The bound, plus the loop's own granularity.
    assert!(
        took <= bound + Duration::from_millis(100),
        "vouched for {took:?} (bound {bound:?})"
    );
    assert!(!retrying(async || b.validate(id, "alice", SystemTime::now()).await).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_crashes_lose_no_revocation() {
    let Some(url) = pg_support::url("restart") else {
        return;
    };
    if std::env::var("SEALED_SESSIONS_PG_CTL").is_err() {
        assert!(
            std::env::var(pg_support::REQUIRE_VAR).is_err(),
            "{} is set but SEALED_SESSIONS_PG_CTL is not",
            pg_support::REQUIRE_VAR
        );
        pg_support::skip::skipped(
            "restart needs SEALED_SESSIONS_PG_CTL (a command running pg_ctl for the test server)",
        );
        return;
    }
    let schema = pg_support::Schema::new(&url, "restart");
    let bound = PostgresRegistryBuilder::DEFAULT_STALENESS_BOUND;
    let (a, b) = (schema.open(), schema.open());
    for (how, args) in [
        ("restart -m fast", vec!["restart -m fast"]),
        ("crash and start", vec!["stop -m immediate", "start"]),
    ] {
        let (revoked, kept) = (cached(&a, &b, "alice").await, cached(&a, &b, "alice").await);
        let down = Instant::now();
        for step in args {
            pg_ctl(step);
        }
        println!("{how}: server back after {:?}", down.elapsed());
        revoked_everywhere(&a, &b, revoked, bound).await;
        // The other session survived, and the host trusts its cache again after its catch-up.
        assert!(retrying(async || b.validate(kept, "alice", SystemTime::now()).await).await);
        let start = Instant::now();
        while b.validate_cached(kept, "alice", SystemTime::now()) != Some(true) {
            assert!(
                start.elapsed() < DEADLINE,
                "{how}: never trusted its cache again"
            );
            let _ = b.validate(kept, "alice", SystemTime::now()).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "{how}: cache trusted again {:?} after the server was back",
            start.elapsed()
        );
    }
}
