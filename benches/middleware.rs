//! Per-request overhead of `SessionLayer` over a bare service, calling the tower services
//! directly with in-memory requests (no sockets), on a current-thread tokio runtime.
//!
//! - `bare`: the inner service alone.
//! - `layer/anonymous`: no cookie, the handler does not touch the session (no Set-Cookie).
//! - `layer/stateless`: a ~200-byte anonymous session cookie; the handler reads one value.
//! - `layer/registry`: the same session bound to a user and validated by `SqliteRegistry`
//!   (an in-memory cache hit, the steady state).
//! - `layer/write`: the handler changes the session, so the cookie is re-sealed and rendered;
//!   every request sends the same cookie.
//! - `layer/write chain`: the same, but each request sends the cookie the previous response
//!   set, as a browser does (the time includes taking it from the response).
//! - `tower-sessions/memory`: the peer, `tower-sessions` with its `MemoryStore`, on the same
//!   signed-in session (`/read` loads it from the store and reads one value).
//!
//! Group `cache_contention`: `SqliteRegistry::validate_cached` hits plus the throttled `touch`
//! (what the middleware does per request), per call, from one thread
//! and from two threads at once (each on its own session, and both on the same one), to show
//! whether the cache's shard locks contend on this 2-core machine.
//!
//! tower-sessions' SQLite store needs sqlx, which cannot share a build with rusqlite; it is in
//! `benches/peers` (its own crate). `cargo bench --bench middleware`; ratios are in
//! docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::SET_COOKIE;
use http_body_util::Full;
use hyper::body::Bytes;
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionId, SessionLayer};
use tower::{Layer, Service, ServiceExt};
use workload::{cookie_of, handler, request, signed_in};

#[path = "common/server.rs"]
mod server;
#[path = "common/workload.rs"]
mod workload;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(SqliteRegistry::open(dir.path().join("bench.db")).unwrap());

    let stateless = SessionLayer::new(
        SessionConfig::builder(KeyRing::new(Key::generate()))
            .build()
            .unwrap(),
    )
    .layer(tower::service_fn(handler::<Full<Bytes>>));
    let bound = SessionLayer::new(
        SessionConfig::builder(KeyRing::new(Key::generate()))
            .registry(registry.clone())
            .build()
            .unwrap(),
    )
    .layer(tower::service_fn(handler::<Full<Bytes>>));
    let bare = tower::service_fn(handler::<Full<Bytes>>);
    let peer = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false)
        .layer(tower::service_fn(server::peer::<Full<Bytes>>));
    let peer_cookie = rt.block_on(signed_in(&peer));

    let (anon_cookie, user_cookie) = rt.block_on(async {
        let res = stateless
            .clone()
            .oneshot(request("/setup", None))
            .await
            .unwrap();
        let anon = cookie_of(&res);
        let res = bound
            .clone()
            .oneshot(request("/setup", None))
            .await
            .unwrap();
        let res = bound
            .clone()
            .oneshot(request("/login", Some(&cookie_of(&res))))
            .await
            .unwrap();
        (anon, cookie_of(&res))
    });
    // Sanity: the cookies open (the read path must not set a cookie or fail).
    rt.block_on(async {
        for (svc, cookie) in [(&stateless, &anon_cookie), (&bound, &user_cookie)] {
            let res = svc
                .clone()
                .oneshot(request("/read", Some(cookie)))
                .await
                .unwrap();
            assert!(res.status().is_success() && res.headers().get(SET_COOKIE).is_none());
        }
    });

    let mut g = c.benchmark_group("middleware");
    macro_rules! case {
        ($name:expr, $svc:expr, $path:expr, $cookie:expr) => {{
            let mut svc = $svc.clone();
            g.bench_function($name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = request($path, $cookie);
                        svc.ready().await.unwrap().call(req).await.unwrap()
                    })
                })
            });
        }};
    }
    case!("bare", bare, "/read", Some(&anon_cookie));
    case!("layer/anonymous", stateless, "/none", None);
    case!("layer/stateless", stateless, "/read", Some(&anon_cookie));
    case!("layer/registry", bound, "/read", Some(&user_cookie));
    case!("layer/write", stateless, "/write", Some(&anon_cookie));
    {
        let mut svc = stateless.clone();
        let mut cookie = anon_cookie.clone();
        g.bench_function("layer/write chain", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = request("/write", Some(&cookie));
                    let res = svc.ready().await.unwrap().call(req).await.unwrap();
                    cookie = cookie_of(&res);
                    res
                })
            })
        });
    }
    case!("tower-sessions/memory", peer, "/read", Some(&peer_cookie));
    g.finish();
    drop(rt);
    contention(c, &registry);
}

/// `validate_cached` hits from one thread, then from two at once: on distinct sessions (in
/// different shards, as real traffic mostly is) and on one session (the same shard lock).
fn contention(c: &mut Criterion, registry: &Arc<SqliteRegistry>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = SystemTime::now();
    let ids: Vec<SessionId> = (0u8..2)
        .map(|n| {
            let id = SessionId::from_bytes([n.wrapping_mul(37).wrapping_add(1); 16]);
            let new = NewSession::new(id, "carol", now, now + Duration::from_secs(3600));
            rt.block_on(async {
                registry.register(new).await.unwrap();
                assert!(registry.validate(id, "carol", now).await.unwrap());
            });
            assert_eq!(registry.validate_cached(id, "carol", now), Some(true));
            id
        })
        .collect();
    let run = |threads: &[SessionId], iters: u64| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for &id in threads {
                s.spawn(move || {
                    // What the middleware does per request: a cache hit, then the throttled touch.
                    for _ in 0..iters {
                        let id = std::hint::black_box(id);
                        std::hint::black_box(registry.validate_cached(id, "carol", now));
                        registry.touch(id, now);
                    }
                });
            }
        });
        start.elapsed()
    };
    let mut g = c.benchmark_group("cache_contention");
    g.bench_function("1 thread", |b| b.iter_custom(|iters| run(&ids[..1], iters)));
    g.bench_function("2 threads, distinct sessions", |b| {
        b.iter_custom(|iters| run(&ids, iters))
    });
    g.bench_function("2 threads, same session", |b| {
        b.iter_custom(|iters| run(&[ids[0], ids[0]], iters))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
