//! Sudo mode: a sensitive action asks for a recent authentication; re-authenticating rotates
//! the id like a renewal (so it can never bring back a session signed out meanwhile) and
//! records a new authentication time.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod backends;
#[cfg(feature = "postgres")]
mod pg_support;
mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backends::backends;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionError, SessionLayer};
use support::{get, serve_fn, TestClock};
use tokio::sync::Notify;

/// Serves `/login`, `/set` (stores data), `/get`, `/sensitive` (the guard), `/reauth` (waits
/// for `gate` after the middleware validated the request, then re-authenticates), `/since`
/// and `/user`; errors come back as `error: ...`, the guard's as `reauthenticate`.
async fn serve_sudo(
    config: SessionConfig,
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
) -> std::net::SocketAddr {
    serve_fn(SessionLayer::new(config), move |req: Request<Incoming>| {
        let gate = gate.clone();
        async move {
            let session = req.extensions().get::<Session>().cloned().unwrap();
            let body = match req.uri().path() {
                "/login" => session.login("alice").await.map(|()| "in".to_owned()),
                "/set" => session.insert("k", "v").map(|()| "set".to_owned()),
                "/get" => session.get::<String>("k").map(|v| v.unwrap_or_default()),
                "/sensitive" => match session.require_recent_authentication() {
                    Ok(()) => Ok("done".to_owned()),
                    Err(SessionError::ReauthenticationRequired { .. }) => {
                        Ok("reauthenticate".to_owned())
                    }
                    Err(e) => Err(e),
                },
                "/reauth" => {
                    if let Some((validated, release)) = gate {
                        validated.notify_one();
                        release.notified().await;
                    }
                    session.reauthenticate().await.map(|()| "again".to_owned())
                }
                "/since" => Ok(format!("{:?}", session.since_authentication())),
                _ => Ok(session.user().unwrap_or_else(|| "anonymous".into())),
            };
            let body = body.unwrap_or_else(|e| format!("error: {e}"));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    })
    .await
}

fn live_cookie(reply: &support::Reply, name: &str) -> Option<String> {
    reply
        .cookie(name)
        .filter(|c| !c.value().is_empty())
        .map(|c| format!("{}={}", c.name(), c.value()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_an_old_sign_in_and_accepts_it_after_reauthentication() {
    for backend in backends("sudo_guard") {
        let clock = TestClock::default();
        let config = clock
            .install(SessionConfig::builder(KeyRing::new(Key::generate())))
            .registry(backend.registry.clone())
            .build()
            .unwrap();
        assert_eq!(
            config.reauthentication_window(),
            Duration::from_secs(20 * 60)
        );
        let name = config.cookie_name().to_owned();
        let addr = serve_sudo(config, None).await;

        let jar = live_cookie(&get(addr, "/login", None).await, &name).unwrap();
        let jar = live_cookie(&get(addr, "/set", Some(&jar)).await, &name).unwrap();
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(get(addr, "/sensitive", Some(&jar)).await.body, "done");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            get(addr, "/sensitive", Some(&jar)).await.body,
            "reauthenticate",
            "{}: a sign-in 20 min 1 s old is refused",
            backend.name
        );
        assert_eq!(
            get(addr, "/since", Some(&jar)).await.body,
            format!("{:?}", Some(Duration::from_secs(20 * 60 + 1)))
        );

        let reply = get(addr, "/reauth", Some(&jar)).await;
        assert_eq!(reply.body, "again");
        let fresh = live_cookie(&reply, &name).expect("a new cookie for the new id");
        assert_eq!(get(addr, "/sensitive", Some(&fresh)).await.body, "done");
        assert_eq!(
            get(addr, "/since", Some(&fresh)).await.body,
            format!("{:?}", Some(Duration::ZERO))
        );
        assert_eq!(get(addr, "/get", Some(&fresh)).await.body, "v", "data kept");
        assert_eq!(
            get(addr, "/user", Some(&jar)).await.body,
            "anonymous",
            "{}: the old id was retired in the registry",
            backend.name
        );
        let active = backend
            .registry
            .list_for_user("alice", SystemTime::now())
            .await
            .unwrap();
        assert_eq!(active.len(), 1, "{}: one row, the new id", backend.name);
    }
}

/// A sign-in time the clock has not reached (the clock was set back, or a host's runs behind
/// the one that sealed it by more than the window) is not a recent authentication: otherwise a
/// session signed in while the clock ran ahead would skip the question for as long as the clock
/// was off, however long that is.
#[tokio::test]
async fn a_sign_in_time_in_the_future_past_the_window_asks_again() {
    let clock = TestClock::default();
    clock.advance(Duration::from_secs(3 * 60 * 60));
    let config = clock
        .install(SessionConfig::builder(KeyRing::new(Key::generate())))
        .build()
        .unwrap();
    let name = config.cookie_name().to_owned();
    let addr = serve_sudo(config, None).await;
    let jar = live_cookie(&get(addr, "/login", None).await, &name).unwrap();
    // A few seconds of skew between hosts is no reason to ask.
    clock.rewind(Duration::from_secs(5));
    assert_eq!(get(addr, "/sensitive", Some(&jar)).await.body, "done");
    clock.rewind(Duration::from_secs(20 * 60));
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "alice");
    assert_eq!(
        get(addr, "/sensitive", Some(&jar)).await.body,
        "reauthenticate",
        "a sign-in 20 min 5 s in the future counted as recent"
    );
}

#[tokio::test]
async fn the_window_is_configurable_and_anonymous_sessions_cannot_reauthenticate() {
    let clock = TestClock::default();
    let config = clock
        .install(SessionConfig::builder(KeyRing::new(Key::generate())))
        .reauthentication_window(Duration::from_secs(5 * 60))
        .build()
        .unwrap();
    let name = config.cookie_name().to_owned();
    let addr = serve_sudo(config, None).await;
    assert!(get(addr, "/reauth", None)
        .await
        .body
        .starts_with("error: no user"));
    assert_eq!(
        get(addr, "/sensitive", None).await.body,
        "error: no user is signed in"
    );
    let jar = live_cookie(&get(addr, "/login", None).await, &name).unwrap();
    clock.advance(Duration::from_secs(5 * 60 + 1));
    assert_eq!(
        get(addr, "/sensitive", Some(&jar)).await.body,
        "reauthenticate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reauthentication_held_past_sign_out_everywhere_ends_signed_out() {
    for backend in backends("sudo_held") {
        let reg = backend.registry;
        let config = SessionConfig::builder(KeyRing::new(Key::generate()))
            .registry(reg.clone())
            .build()
            .unwrap();
        let name = config.cookie_name().to_owned();
        let (validated, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let addr = serve_sudo(config, Some((validated.clone(), release.clone()))).await;
        let jar = live_cookie(&get(addr, "/login", None).await, &name).unwrap();
        let held = tokio::spawn({
            let jar = jar.clone();
            async move { get(addr, "/reauth", Some(&jar)).await }
        });
        validated.notified().await;
        assert_eq!(reg.revoke_user("alice", None).await.unwrap(), 1);
        release.notify_one();
        let reply = held.await.unwrap();
        assert_eq!(
            reply.body,
            "error: the session was revoked; it is signed out now"
        );
        assert_eq!(live_cookie(&reply, &name), None, "no cookie for a new id");
        assert!(reg
            .list_for_user("alice", SystemTime::now())
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthentication_chains_racing_sign_out_everywhere_leave_no_survivor() {
    const TRIALS: usize = 8;
    const CHAINS: usize = 6;
    const MAX_STEPS: usize = 30;
    for backend in backends("sudo_chains") {
        let reg = backend.registry;
        let config = SessionConfig::builder(KeyRing::new(Key::generate()))
            .registry(reg.clone())
            .build()
            .unwrap();
        let name: Arc<str> = config.cookie_name().into();
        let addr = serve_sudo(config, None).await;
        let mut survivors = 0;
        for _ in 0..TRIALS {
            let steps = Arc::new(AtomicUsize::new(0));
            let mut chains = Vec::new();
            for _ in 0..CHAINS {
                let mut jar = live_cookie(&get(addr, "/login", None).await, &name).unwrap();
                let (name, steps) = (name.clone(), steps.clone());
                chains.push(tokio::spawn(async move {
                    for _ in 0..MAX_STEPS {
                        let reply = get(addr, "/reauth", Some(&jar)).await;
                        steps.fetch_add(1, Ordering::SeqCst);
                        match live_cookie(&reply, &name) {
                            Some(next) => jar = next,
                            None => break,
                        }
                    }
                    jar
                }));
            }
            while steps.load(Ordering::SeqCst) < CHAINS * 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            reg.revoke_user("alice", None).await.unwrap();
            for chain in chains {
                let last = chain.await.unwrap();
                if get(addr, "/user", Some(&last)).await.body != "anonymous" {
                    survivors += 1;
                }
            }
            survivors += reg
                .list_for_user("alice", SystemTime::now())
                .await
                .unwrap()
                .len();
        }
        assert_eq!(
            survivors, 0,
            "{}: a re-authentication revived a session",
            backend.name
        );
    }
}
