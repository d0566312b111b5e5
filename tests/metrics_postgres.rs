//! The metrics on PostgreSQL (feature `metrics`), recorded by `metrics-util`'s debugging
//! recorder as `tests/metrics.rs` does on SQLite: registry operations and cache lookups, the
//! feed's confirmation and freshness, a reconnect after the listener's connection was
//! terminated, cache flushes (a replaced database, a lost log, a truncation, a catch-up too
//! long; the restart's is in `tests/registry_postgres_restart.rs`), a renewal refused because
//! the id was revoked meanwhile, and the propagation lag of a revocation made by another host.
//! Needs a server (`tests/pg_support`); skips with a reason otherwise.
#![cfg(all(feature = "metrics", feature = "hyper", feature = "postgres"))]

mod metrics_support;
mod pg_support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request};
use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry};
use sealed_sessions::{Key, KeyRing, SessionId};
use tower::Service;

use metrics_support::{app_with, cookie, refused, samples, App, Req, Res, RevokeFirst, LAG};
use metrics_util::debugging::Snapshotter;
use pg_support::Schema;

/// A limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(30);

/// The app on a registry in `schema`, its handles taken under a recorder of its own.
fn app(
    schema: &Schema,
) -> App<impl Service<Req, Response = Res, Error = Infallible> + Clone, PostgresRegistry> {
    let builder = schema.builder();
    let open = Some(move |_: &std::path::Path| builder.open().unwrap());
    app_with(KeyRing::new(Key::generate()), open, |b| b)
}

/// Waits (bounded) until `histogram` gets samples; its samples and what else moved meanwhile.
async fn wait_for_samples(
    snapshots: &Snapshotter,
    histogram: &str,
) -> (Vec<f64>, BTreeMap<String, f64>) {
    let start = Instant::now();
    let mut seen = BTreeMap::new();
    loop {
        let (found, others) = samples(snapshots, histogram);
        seen.extend(others);
        if !found.is_empty() {
            return (found, seen);
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{histogram} got no sample; what moved: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until `reg` reports itself connected and fresh.
async fn ready_again(reg: &PostgresRegistry) {
    let start = Instant::now();
    loop {
        let health = reg.health();
        if health.connected && health.is_ready() {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "never ready again: {health:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_operations_cache_lookups_and_the_feed_move_on_postgres() {
    let Some(url) = pg_support::url("metrics_ops") else {
        return;
    };
    let schema = Schema::new(&url, "m_ops");
    let app = app(&schema);
    let reg = app.registry.clone().unwrap();
    // The listener's first catch-up confirmed the feed when the registry opened.
    let seen = app
        .wait_for("sealed_sessions_feed_last_confirmed_timestamp_seconds{}")
        .await;
    assert_eq!(
        seen.get("sealed_sessions_feed_fresh{}"),
        Some(&1.0),
        "{seen:#?}"
    );

    let c = cookie(&app.get("/login/alice", &[]).await);
    let changes = app.changes();
    for metric in [
        "sealed_sessions_registry_operations_total{op=register,result=ok}",
        "sealed_sessions_registry_operation_seconds{op=register}",
        "sealed_sessions_registry_write_batch_size{}",
        "sealed_sessions_logins_total{}",
    ] {
        assert!(changes.contains_key(metric), "{metric}: {changes:#?}");
    }
    app.get("/read", &[&c]).await;
    assert_eq!(
        app.moved("sealed_sessions_registry_cache_lookups_total{result=hit}"),
        1.0
    );

    // Another host revokes; this host's listener evicts it on the notification, and its next
    // read of the log records the propagation lag.
    let other = schema.open();
    app.changes();
    let before = SystemTime::now();
    assert_eq!(other.revoke_user("alice", None).await.unwrap(), 1);
    let (lags, seen) = wait_for_samples(&app.snapshots, LAG).await;
    let after = SystemTime::now();
    println!("propagation lag to this host: {:?} s", lags);
    assert_eq!(
        lags.len(),
        1,
        "one revocation, one sample: {lags:?} {seen:#?}"
    );
    // Causality, not timing: the revocation was stamped after `before` and evicted before
    // `after`. Both clocks are this machine's only when the server is local; the stamp is in
    // microseconds.
    if url.contains("@127.0.0.1") || url.contains("@localhost") || url.contains("host=/") {
        let most = after.duration_since(before).unwrap() + Duration::from_millis(1);
        assert!(
            lags[0] >= 0.0 && lags[0] <= most.as_secs_f64(),
            "lag {} s outside what happened, {most:?}",
            lags[0]
        );
    }
    let start = Instant::now();
    loop {
        let res = app.get("/read", &[&c]).await;
        if res.headers().contains_key(SET_COOKIE) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never refused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let changes = app.changes();
    for metric in [
        "sealed_sessions_registry_cache_lookups_total{result=miss}",
        "sealed_sessions_registry_operations_total{op=validate,result=ok}",
        &refused("revoked"),
    ] {
        assert!(changes.contains_key(metric), "{metric}: {changes:#?}");
    }
    // The refusal is remembered: the next request is answered from memory.
    app.get("/read", &[&c]).await;
    assert_eq!(
        app.moved("sealed_sessions_registry_cache_lookups_total{result=refused}"),
        1.0
    );
    let health = reg.health();
    assert!(health.connected && health.is_ready(), "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_listener_is_counted_as_a_reconnect() {
    let Some(url) = pg_support::url("metrics_reconnect") else {
        return;
    };
    let schema = Schema::new(&url, "m_reconnect");
    let app = app(&schema);
    let reg = app.registry.clone().unwrap();
    app.get("/login/alice", &[]).await;
    app.changes();
    let admin = pg_support::connect(&url).await;
    let killed = pg_support::terminate_connections_of(&admin, &schema.name).await;
    assert!(killed >= 1, "no connection of the registry was found");
    let seen = app
        .wait_for("sealed_sessions_feed_reconnects_total{}")
        .await;
    assert_eq!(
        seen["sealed_sessions_feed_reconnects_total{}"], 1.0,
        "{seen:#?}"
    );
    assert!(
        reg.health().last_error.is_some(),
        "the lost connection is kept as the last error"
    );
    ready_again(&reg).await;
    // Confirmed again after the reconnect's catch-up.
    app.wait_for("sealed_sessions_feed_last_confirmed_timestamp_seconds{}")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_database_is_counted_as_a_cache_flush() {
    let Some(url) = pg_support::url("metrics_replaced") else {
        return;
    };
    let schema = Schema::new(&url, "m_replaced");
    let app = app(&schema);
    let reg = app.registry.clone().unwrap();
    app.get("/login/alice", &[]).await;
    // A new database under the same name: another incarnation.
    schema.execute(&format!("DROP SCHEMA {} CASCADE", schema.name));
    let replacement = schema.open();
    app.changes();
    let flush = "sealed_sessions_cache_flushes_total{reason=replaced_database}";
    let seen = app.wait_for(flush).await;
    assert_eq!(seen[flush], 1.0, "{seen:#?}");
    ready_again(&reg).await;
    drop(replacement);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_of_an_id_revoked_meanwhile_is_counted_as_not_active_on_postgres() {
    let Some(url) = pg_support::url("metrics_not_active") else {
        return;
    };
    let schema = Schema::new(&url, "m_not_active");
    let app = app(&schema);
    let c = cookie(&app.get("/login/alice", &[]).await);
    app.changes();
    let reg: std::sync::Arc<dyn Registry> = app.registry.clone().unwrap();
    let mut req = Request::get("/revoke-then-renew")
        .header(COOKIE, HeaderValue::from_str(&c).unwrap())
        .body(String::new())
        .unwrap();
    req.extensions_mut().insert(RevokeFirst(reg));
    let res = app.request(req).await;
    assert_eq!(res.body(), "Some(NotActive)");
    let changes = app.changes();
    assert_eq!(
        changes.get("sealed_sessions_renewals_total{result=not_active}"),
        Some(&1.0),
        "{changes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_log_a_truncation_and_a_catch_up_too_long_are_counted_as_cache_flushes() {
    let Some(url) = pg_support::url("metrics_flushes") else {
        return;
    };
    let schema = Schema::new(&url, "m_flushes");
    let s = &schema.name;
    let app = app(&schema);
    app.get("/login/alice", &[]).await;
    // Another host's revocation, read from the log by this one (its lag sample says so): the
    // watermark is past 0.
    let other = schema.open();
    let now = SystemTime::now();
    let id = SessionId::generate();
    let hour = Duration::from_secs(3600);
    other
        .register(NewSession::new(id, "bob", now, now + hour))
        .await
        .unwrap();
    assert!(other.revoke_id(id).await.unwrap());
    wait_for_samples(&app.snapshots, LAG).await;

    // The log now ends before what this host read (a restore from a backup).
    app.changes();
    schema.execute(&format!("DELETE FROM {s}.revocations"));
    let flush = "sealed_sessions_cache_flushes_total{reason=log_lost}";
    assert_eq!(app.wait_for(flush).await[flush], 1.0);

    app.changes();
    schema.execute(&format!("TRUNCATE {s}.sessions"));
    let flush = "sealed_sessions_cache_flushes_total{reason=truncated}";
    assert_eq!(app.wait_for(flush).await[flush], 1.0);

    // More revocations than a catch-up reads (as an operator's DELETE of many live sessions
    // would log).
    app.changes();
    schema.execute(&format!(
        "INSERT INTO {s}.revocations (id, expires_at) \
         SELECT decode(lpad(to_hex(g), 32, '0'), 'hex'), now() + interval '1 hour' \
         FROM generate_series(1, 150000) g"
    ));
    let flush = "sealed_sessions_cache_flushes_total{reason=catch_up_too_long}";
    let seen = app.wait_for(flush).await;
    assert_eq!(seen[flush], 1.0, "{seen:#?}");
    ready_again(app.registry.as_ref().unwrap()).await;
}
