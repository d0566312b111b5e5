//! The metrics (feature `metrics`): each one moves on its path, recorded by `metrics-util`'s
//! debugging recorder, and no label value ever comes from the request (cookies, headers, user
//! ids). Each test takes its handles under a recorder of its own
//! (`metrics::with_local_recorder`), as an application does under its global one, so tests run
//! in parallel without sharing counts.
#![cfg(all(feature = "metrics", feature = "hyper", feature = "sqlite"))]

mod metrics_support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use metrics_util::debugging::DebuggingRecorder;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, SessionConfigBuilder};
use tower::{Service, ServiceExt};

use metrics_support::{app_with, cookie, refused, set, App, Req, Res, RevokeFirst, SET};

/// The app on SQLite (`with_registry`) or without a registry.
fn app(
    ring: KeyRing,
    with_registry: bool,
    configure: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
) -> App<impl Service<Req, Response = Res, Error = Infallible> + Clone, SqliteRegistry> {
    let open = with_registry.then_some(|dir: &std::path::Path| {
        SqliteRegistry::builder(dir.join("s.db"))
            .poll_interval(Duration::from_millis(10))
            .open()
            .unwrap()
    });
    app_with(ring, open, configure)
}

#[tokio::test]
async fn a_malformed_cookie_is_counted_as_malformed() {
    let app = app(KeyRing::new(Key::generate()), false, |b| b);
    app.changes();
    app.get("/read", &["__Host-session=not-a-sealed-value"])
        .await;
    assert_eq!(app.moved(&refused("malformed")), 1.0);
}

#[tokio::test]
async fn a_changed_cookie_is_counted_as_forged() {
    let app = app(KeyRing::new(Key::generate()), false, |b| b);
    let c = cookie(&app.get("/write", &[]).await);
    // Change one character of the sealed value's middle (base64url stays valid).
    let mut bytes = c.into_bytes();
    let at = bytes.len() - 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();
    app.changes();
    app.get("/read", &[&forged]).await;
    assert_eq!(app.moved(&refused("forged")), 1.0);
}

#[tokio::test]
async fn a_cookie_of_a_retired_key_is_counted_as_unknown_key() {
    let old = app(KeyRing::new(Key::generate()), false, |b| b);
    let c = cookie(&old.get("/write", &[]).await);
    let app = app(KeyRing::new(Key::generate()), false, |b| b);
    app.changes();
    app.get("/read", &[&c]).await;
    assert_eq!(app.moved(&refused("unknown_key")), 1.0);
}

#[tokio::test]
async fn an_expired_cookie_is_counted_as_expired() {
    let app = app(KeyRing::new(Key::generate()), false, |b| b);
    let c = cookie(&app.get("/write", &[]).await);
    app.clock.advance(60 * 60 * 24 * 30);
    app.changes();
    app.get("/read", &[&c]).await;
    assert_eq!(app.moved(&refused("expired")), 1.0);
}

#[tokio::test]
async fn more_cookies_than_the_caps_are_counted_once_as_over_caps() {
    let app = app(KeyRing::new(Key::generate()), false, |b| b);
    let junk: Vec<String> = (0..40).map(|n| format!("__Host-session=junk{n}")).collect();
    let junk: Vec<&str> = junk.iter().map(String::as_str).collect();
    app.changes();
    app.get("/read", &junk).await;
    let changes = app.changes();
    assert_eq!(
        changes.get(&refused("over_caps")),
        Some(&1.0),
        "{changes:#?}"
    );
}

#[tokio::test]
async fn a_revoked_session_is_counted_as_revoked_and_its_cookie_removed() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    let c = cookie(&app.get("/login/alice", &[]).await);
    let reg = app.registry.clone().unwrap();
    assert_eq!(reg.revoke_user("alice", None).await.unwrap(), 1);
    app.changes();
    let res = app.get("/read", &[&c]).await;
    assert!(res.headers().contains_key(SET_COOKIE));
    let changes = app.changes();
    assert_eq!(changes.get(&refused("revoked")), Some(&1.0), "{changes:#?}");
    assert_eq!(changes.get(&set("removal")), Some(&1.0), "{changes:#?}");
}

#[tokio::test]
async fn a_stopped_registry_is_counted_as_registry_unavailable() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    let c = cookie(&app.get("/login/alice", &[]).await);
    let reg = app.registry.as_ref().unwrap();
    // Evicted from the cache (revoked through another handle on the file), so that the stopped
    // registry must be asked, and cannot answer.
    let other = SqliteRegistry::open(app._dir.path().join("s.db")).unwrap();
    assert_eq!(other.revoke_user("alice", None).await.unwrap(), 1);
    reg.sync_revocations().unwrap();
    reg.stop();
    app.changes();
    let res = app.get("/read", &[&c]).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.moved(&refused("registry_unavailable")), 1.0);
}

#[tokio::test]
async fn each_set_cookie_reason_is_counted() {
    let app = app(KeyRing::new(Key::generate()), true, |b| {
        b.idle_timeout(Duration::from_secs(3600))
            .refresh_after(Duration::from_secs(60))
    });
    let login = app.get("/login/alice", &[]).await;
    let changes = app.changes();
    assert_eq!(changes.get(&set("login")), Some(&1.0), "{changes:#?}");
    assert_eq!(changes.get("sealed_sessions_logins_total{}"), Some(&1.0));
    let c = cookie(&login);

    let res = app.get("/read", &[&c]).await;
    assert!(!res.headers().contains_key(SET_COOKIE));
    let changes = app.changes();
    assert_eq!(
        changes.get("sealed_sessions_sessions_loaded_total{kind=signed_in}"),
        Some(&1.0),
        "{changes:#?}"
    );
    assert!(!changes.keys().any(|k| k.starts_with(SET)), "{changes:#?}");

    let c = cookie(&app.get("/write", &[&c]).await);
    assert_eq!(app.moved(&set("changed")), 1.0);

    app.clock.advance(120);
    let c = cookie(&app.get("/read", &[&c]).await);
    assert_eq!(app.moved(&set("idle_refresh")), 1.0);

    let res = app.get("/renew", &[&c]).await;
    assert_eq!(res.body(), "None");
    let changes = app.changes();
    assert_eq!(changes.get(&set("changed")), Some(&1.0), "{changes:#?}");
    assert_eq!(
        changes.get("sealed_sessions_renewals_total{result=ok}"),
        Some(&1.0)
    );
    // The old id, renewed away, is refused.
    app.get("/read", &[&c]).await;
    assert_eq!(app.moved(&refused("revoked")), 1.0);

    let c = cookie(&app.get("/login/alice", &[]).await);
    app.changes();
    app.get("/logout", &[&c]).await;
    let changes = app.changes();
    assert_eq!(changes.get(&set("logout")), Some(&1.0), "{changes:#?}");
    assert_eq!(changes.get("sealed_sessions_logouts_total{}"), Some(&1.0));

    let c = cookie(&app.get("/write", &[]).await);
    app.changes();
    app.get("/clear", &[&c]).await;
    assert_eq!(app.moved(&set("removal")), 1.0);
}

#[tokio::test]
async fn a_renewal_of_an_id_revoked_meanwhile_is_counted_as_not_active() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    let c = cookie(&app.get("/login/alice", &[]).await);
    app.changes();
    let reg = app.registry.clone().unwrap();
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
    assert!(
        !changes.contains_key("sealed_sessions_renewals_total{result=ok}"),
        "{changes:#?}"
    );
}

#[tokio::test]
async fn a_cookie_sealed_with_the_previous_key_is_resealed_as_key_rotation() {
    let (old, new) = (Key::generate(), Key::generate());
    let before = app(KeyRing::new(old.clone()), false, |b| b);
    let c = cookie(&before.get("/write", &[]).await);
    let mut ring = KeyRing::new(old);
    ring.rotate(new).unwrap();
    let app = app(ring, false, |b| b);
    app.changes();
    app.get("/read", &[&c]).await;
    let changes = app.changes();
    assert_eq!(
        changes.get(&set("key_rotation")),
        Some(&1.0),
        "{changes:#?}"
    );
    assert_eq!(
        changes.get("sealed_sessions_sessions_loaded_total{kind=anonymous}"),
        Some(&1.0)
    );
}

#[tokio::test]
async fn registry_operations_cache_lookups_and_the_feed_move() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    let c = cookie(&app.get("/login/alice", &[]).await);
    let changes = app.changes();
    for metric in [
        "sealed_sessions_registry_operations_total{op=register,result=ok}",
        "sealed_sessions_registry_operation_seconds{op=register}",
        "sealed_sessions_registry_write_batch_size{}",
    ] {
        assert!(changes.contains_key(metric), "{metric}: {changes:#?}");
    }
    app.get("/read", &[&c]).await;
    assert_eq!(
        app.moved("sealed_sessions_registry_cache_lookups_total{result=hit}"),
        1.0
    );

    // Another process (here: another handle on the file) revokes; this one's poller evicts
    // it and records how long that took.
    let reg = app.registry.clone().unwrap();
    let other = SqliteRegistry::open(app._dir.path().join("s.db")).unwrap();
    app.changes();
    assert_eq!(other.revoke_user("alice", None).await.unwrap(), 1);
    let lag = "sealed_sessions_revocation_propagation_seconds{}";
    let mut seen = BTreeMap::new();
    for _ in 0..500 {
        seen.extend(app.changes());
        if seen.contains_key(lag) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen.contains_key(lag), "{seen:#?}");
    assert!(seen.contains_key("sealed_sessions_feed_last_confirmed_timestamp_seconds{}"));
    assert_eq!(seen.get("sealed_sessions_feed_fresh{}"), Some(&1.0));

    let res = app.get("/read", &[&c]).await;
    assert!(
        res.headers().contains_key(SET_COOKIE),
        "refused and removed"
    );
    let changes = app.changes();
    for metric in [
        "sealed_sessions_registry_cache_lookups_total{result=miss}",
        "sealed_sessions_registry_operations_total{op=validate,result=ok}",
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
    assert!(
        health.connected && health.fresh && health.is_ready(),
        "{health:?}"
    );
}

#[tokio::test]
async fn a_replaced_database_file_flushes_the_cache_and_health_reports_it() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    app.get("/login/alice", &[]).await;
    let path = app._dir.path().join("s.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    app.changes();
    let flush = "sealed_sessions_cache_flushes_total{reason=replaced_database}";
    let mut seen = BTreeMap::new();
    for _ in 0..500 {
        seen.extend(app.changes());
        if seen.contains_key(flush) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.get(flush), Some(&1.0), "{seen:#?}");
}

/// Every label value the crate can record, from docs/operations.md.
const LABEL_VALUES: &[(&str, &[&str])] = &[
    (
        "reason",
        &[
            "malformed",
            "forged",
            "unknown_key",
            "expired",
            "revoked",
            "registry_unavailable",
            "over_caps",
            "restart",
            "replaced_database",
            "log_lost",
            "catch_up_too_long",
            "truncated",
        ],
    ),
    (
        "why",
        &[
            "changed",
            "login",
            "logout",
            "key_rotation",
            "idle_refresh",
            "removal",
        ],
    ),
    ("kind", &["anonymous", "signed_in"]),
    (
        "result",
        &[
            "ok",
            "error",
            "not_active",
            "hit",
            "refused",
            "miss",
            "not_trusted",
        ],
    ),
    (
        "op",
        &[
            "register",
            "rotate",
            "validate",
            "list",
            "revoke",
            "revoke_user",
            "revoke_all",
            "forget_user",
            "delete_expired",
        ],
    ),
];

#[test]
fn no_label_value_comes_from_the_request() {
    let app = app(KeyRing::new(Key::generate()), true, |b| b);
    // Requests run under a recorder of their own: a handle taken per request (with a label
    // from it, say) would show there. The app's handles went to the app's recorder.
    let during = DebuggingRecorder::new();
    let registered_during = during.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hostile = "evil\"} user=<script>";
    metrics::with_local_recorder(&during, || {
        rt.block_on(async {
            let c = cookie(&app.get("/login/mallory-7f3a", &[]).await);
            for cookies in [
                vec![c.as_str()],
                vec!["__Host-session=evil\"}"],
                vec!["__Host-session=AAAA", "__Host-session.1=zz", c.as_str()],
            ] {
                app.get("/read", &cookies).await;
                app.get("/write", &cookies).await;
            }
            let mut req = Request::get("/read")
                .header(USER_AGENT, HeaderValue::from_str(hostile).unwrap())
                .header("x-forwarded-for", "203.0.113.9")
                .body(String::new())
                .unwrap();
            req.headers_mut()
                .insert(COOKIE, HeaderValue::from_str(&c).unwrap());
            app.svc.clone().oneshot(req).await.unwrap();
            app.get("/logout", &[&c]).await;
        })
    });
    let registered = registered_during.snapshot().into_vec();
    assert!(
        registered.is_empty(),
        "registered per request: {registered:?}"
    );

    let all = app.snapshots.snapshot().into_vec();
    assert!(all.len() > 10, "{all:?}");
    for (key, _, _, _) in all {
        let key = key.key();
        assert!(key.name().starts_with("sealed_sessions_"), "{}", key.name());
        for label in key.labels() {
            let allowed = LABEL_VALUES
                .iter()
                .find(|(name, _)| *name == label.key())
                .unwrap_or_else(|| panic!("label {} of {}", label.key(), key.name()));
            assert!(
                allowed.1.contains(&label.value()),
                "{}={} on {}",
                label.key(),
                label.value(),
                key.name()
            );
        }
    }
}
