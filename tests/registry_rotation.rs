//! Renewing a session id races revocation: a renewal must never bring a revoked session back.
//!
//! The registry rotates an id in one transaction (the new row exists only if the old one was
//! still active), so a request that validated just before "sign out everywhere" and renews after
//! it ends signed out, and many renewal chains racing one `revoke_user` leave no survivor.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod backends;
#[cfg(feature = "postgres")]
mod pg_support;
mod support;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use backends::backends;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use sealed_sessions::registry::Registry;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
use support::{get, serve, serve_fn};
use tokio::sync::Notify;

fn config(registry: Arc<dyn Registry>) -> SessionConfig {
    SessionConfig::builder(KeyRing::new(Key::generate()))
        .registry(registry)
        .build()
        .unwrap()
}

/// Serves `/login` (as alice), `/renew` (which waits for `gate` after the middleware validated
/// the request, then renews) and anything else (the user); errors come back as `error: ...`.
async fn serve_renewals(
    config: SessionConfig,
    gate: impl Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + Sync + 'static,
) -> std::net::SocketAddr {
    serve_fn(SessionLayer::new(config), move |req: Request<Incoming>| {
        let gate = gate.clone();
        async move {
            let session = req.extensions().get::<Session>().cloned().unwrap();
            let body = match req.uri().path() {
                "/login" => session.login("alice").await.map(|()| "in".to_owned()),
                "/renew" => {
                    gate().await;
                    session.renew().await.map(|()| "renewed".to_owned())
                }
                _ => Ok(session.user().unwrap_or_else(|| "anonymous".into())),
            };
            let body = body.unwrap_or_else(|e| format!("error: {e}"));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    })
    .await
}

/// The value of the session cookie a reply sets, if it sets a live one (not a removal).
fn live_cookie(reply: &support::Reply, name: &str) -> Option<String> {
    reply
        .cookie(name)
        .filter(|c| !c.value().is_empty())
        .map(|c| format!("{}={}", c.name(), c.value()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_held_past_sign_out_everywhere_ends_signed_out() {
    for backend in backends("held_renewal") {
        held_renewal(backend.registry).await;
    }
}

async fn held_renewal(reg: Arc<dyn Registry>) {
    let config = config(reg.clone());
    let name = config.cookie_name().to_owned();
    let validated = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let gates = (validated.clone(), release.clone());
    // The middleware validated the request's cookie before the handler runs; hold it there
    // until the test has signed alice out everywhere.
    let addr = serve_renewals(config, move || {
        let (validated, release) = gates.clone();
        Box::pin(async move {
            validated.notify_one();
            release.notified().await;
        })
    })
    .await;

    let jar = live_cookie(&get(addr, "/login", None).await, &name).expect("signed in");
    let held = tokio::spawn({
        let jar = jar.clone();
        async move { get(addr, "/renew", Some(&jar)).await }
    });
    validated.notified().await;
    assert_eq!(reg.revoke_user("alice", None).await.unwrap(), 1);
    release.notify_one();
    let reply = held.await.unwrap();

    assert!(
        reply.body.starts_with("error: "),
        "the renewal is refused: {}",
        reply.body
    );
    assert_eq!(
        live_cookie(&reply, &name),
        None,
        "no new session cookie goes out"
    );
    assert!(
        reg.list_for_user("alice", SystemTime::now())
            .await
            .unwrap()
            .is_empty(),
        "alice has no active session"
    );
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_chains_racing_sign_out_everywhere_leave_no_survivor() {
    const TRIALS: usize = 12;
    const CHAINS: usize = 8;
    const MAX_STEPS: usize = 40;
    for backend in backends("renewal_chains") {
        let name = backend.name;
        let started = Instant::now();
        let (renewals, survivors) =
            renewal_chains(backend.registry, TRIALS, CHAINS, MAX_STEPS).await;
        println!(
            "{name}: {TRIALS} trials x {CHAINS} renewal chains racing revoke_user: {renewals} \
             renewals, {survivors} survivors, {:?}",
            started.elapsed()
        );
        assert_eq!(
            survivors, 0,
            "{name}: a renewal brought a revoked session back"
        );
    }
}

/// Runs `trials` of `chains` renewal chains racing one `revoke_user`; returns the renewals made
/// and the sessions that survived the revocation.
async fn renewal_chains(
    reg: Arc<dyn Registry>,
    trials: usize,
    chains_per_trial: usize,
    max_steps: usize,
) -> (usize, usize) {
    let config = config(reg.clone());
    let name: Arc<str> = config.cookie_name().into();
    let addr = serve(SessionLayer::new(config)).await;
    let mut survivors = 0;
    let mut renewals = 0;
    for trial in 0..trials {
        let user = format!("user{trial}");
        let steps = Arc::new(AtomicUsize::new(0));
        let mut chains = Vec::new();
        for _ in 0..chains_per_trial {
            let login = get(addr, &format!("/login/{user}"), None).await;
            let mut jar = live_cookie(&login, &name).expect("signed in");
            let (name, steps) = (name.clone(), steps.clone());
            chains.push(tokio::spawn(async move {
                for _ in 0..max_steps {
                    let reply = get(addr, "/renew", Some(&jar)).await;
                    steps.fetch_add(1, Ordering::SeqCst);
                    match live_cookie(&reply, &name) {
                        Some(next) => jar = next,
                        None => break,
                    }
                }
                jar
            }));
        }
        // Revoke while the chains are in full swing, not before they start.
        while steps.load(Ordering::SeqCst) < chains_per_trial * 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        reg.revoke_user(&user, None).await.unwrap();
        for chain in chains {
            let last = chain.await.unwrap();
            if get(addr, "/user", Some(&last)).await.body != "anonymous" {
                survivors += 1;
            }
        }
        renewals += steps.load(Ordering::SeqCst);
        let active = reg.list_for_user(&user, SystemTime::now()).await.unwrap();
        survivors += active.len();
    }
    (renewals, survivors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_renewals_leave_the_browser_signed_in() {
    for backend in backends("concurrent_renewals") {
        concurrent_renewals(backend.registry).await;
    }
}

/// Two requests of one browser both renew (a page firing two calls to an endpoint that
/// renews). One rotation wins; the other finds the old id gone. The loser's response must not
/// remove the cookie the winner's response just set.
async fn concurrent_renewals(reg: Arc<dyn Registry>) {
    let config = config(reg.clone());
    let name = config.cookie_name().to_owned();
    let both_validated = Arc::new(tokio::sync::Barrier::new(2));
    let addr = serve_renewals(config, move || {
        let gate = both_validated.clone();
        Box::pin(async move {
            gate.wait().await;
        })
    })
    .await;
    let jar = live_cookie(&get(addr, "/login", None).await, &name).expect("signed in");
    let (a, b) = tokio::join!(
        get(addr, "/renew", Some(&jar)),
        get(addr, "/renew", Some(&jar))
    );
    let (won, lost) = if a.body == "renewed" { (a, b) } else { (b, a) };
    assert_eq!(won.body, "renewed");
    assert!(lost.body.starts_with("error: "), "{}", lost.body);
    assert!(
        lost.cookie(&name).is_none(),
        "the losing renewal's response touches no cookie: {:?}",
        lost.set_cookies(&name)
    );
    let kept = live_cookie(&won, &name).expect("the winner's new cookie");
    assert_eq!(get(addr, "/user", Some(&kept)).await.body, "alice");
    assert_eq!(
        reg.list_for_user("alice", SystemTime::now())
            .await
            .unwrap()
            .len(),
        1
    );
}
