//! The PostgreSQL server restarted under two hosts: `pg_ctl restart -m fast`, and a crash
//! (`stop -m immediate`, then `start`), each with revocations made while the other host's
//! listener is still reconnecting. Its own test binary, because it takes the shared test server
//! down (test binaries run one at a time). Needs a server (`tests/pg_support`) and
//! `SEALED_SESSIONS_PG_CTL`, a command that runs `pg_ctl` for it with the arguments given
//! (`.ci/run` writes one); skips with a reason otherwise.
//!
//! Also the demo's `/readyz` on PostgreSQL: 503 while the server is stopped, 200 once it is back
//! (and its `/metrics` counting the reconnect and the restart's cache flush, with the `metrics`
//! feature). The two tests take turns with the server (`SERVER`).
#![cfg(feature = "postgres")]

#[cfg(all(feature = "hyper", feature = "sqlite"))]
mod demo_support;
mod pg_support;
#[cfg(all(feature = "hyper", feature = "sqlite"))]
mod support;

use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{
    NewSession, PostgresRegistry, PostgresRegistryBuilder, Registry, RegistryError,
};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);
/// Generous, for a loaded CI machine: a limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(30);

/// Held by each test while it stops and starts the server: they take turns.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server's URL if this can run: a server and `SEALED_SESSIONS_PG_CTL`; says why not
/// otherwise.
fn server(test: &str) -> Option<String> {
    let url = pg_support::url(test)?;
    if std::env::var("SEALED_SESSIONS_PG_CTL").is_err() {
        assert!(
            std::env::var(pg_support::REQUIRE_VAR).is_err(),
            "{} is set but SEALED_SESSIONS_PG_CTL is not",
            pg_support::REQUIRE_VAR
        );
        pg_support::skip::skipped(&format!(
            "{test} needs SEALED_SESSIONS_PG_CTL (a command running pg_ctl for the test server)"
        ));
        return None;
    }
    Some(url)
}

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
    let Some(url) = server("restart") else {
        return;
    };
    let _turn = SERVER.lock().await;
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

/// The demo on PostgreSQL answers `/readyz` with 503 while the server is stopped (past the
/// staleness bound: its cache no longer vouches) and with 200 once it is back and its listener
/// caught up. Bounded polling: no timing is asserted.
#[cfg(all(feature = "hyper", feature = "sqlite"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_server_is_stopped_and_200_after() {
    use demo_support::{Client, Demo};
    use http::StatusCode;

    let Some(url) = server("readyz") else {
        return;
    };
    let _turn = SERVER.lock().await;
    let schema = pg_support::Schema::new(&url, "readyz");
    let sep = if schema.url.contains('?') { '&' } else { '?' };
    let db = format!("{}{sep}schema={}", schema.url, schema.name);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("session.key");
    let demo = Demo::start_on(dir, &db, &key);
    let mut probe = Client::new(demo.addr, "probe");
    let mut until = async |status: StatusCode, what: &str| {
        let start = Instant::now();
        loop {
            let r = probe.get("/readyz").await;
            if r.status == status {
                return r.body;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: /readyz still {}: {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until(StatusCode::OK, "started").await;

    pg_ctl("stop -m fast");
    let stopped = until(StatusCode::SERVICE_UNAVAILABLE, "server stopped").await;
    assert!(stopped.contains("ready: false"), "{stopped}");
    // The error's text names the database: the log gets it, not a probe that answers anyone.
    assert!(!stopped.contains("error"), "{stopped}");
    let down = Instant::now();
    pg_ctl("start");
    let back = until(StatusCode::OK, "server started again").await;
    println!(
        "/readyz: 503 while stopped, 200 again {:?} after the start was issued",
        down.elapsed()
    );
    assert!(back.contains("ready: true"), "{back}");
    assert_eq!(probe.get("/healthz").await.status, StatusCode::OK);

    #[cfg(feature = "metrics")]
    {
        let r = probe.get("/metrics").await;
        assert_eq!(r.status, StatusCode::OK);
        let value = |series: &str| {
            r.body.lines().find_map(|line| {
                let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
                rest.trim().parse::<f64>().ok()
            })
        };
        // One working connection lost, however many attempts failed while the server was down.
        assert_eq!(
            value("sealed_sessions_feed_reconnects_total"),
            Some(1.0),
            "{}",
            r.body
        );
        assert_eq!(
            value("sealed_sessions_cache_flushes_total{reason=\"restart\"}"),
            Some(1.0),
            "{}",
            r.body
        );
        assert_eq!(value("sealed_sessions_feed_fresh"), Some(1.0), "{}", r.body);
    }
}
