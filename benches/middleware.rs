//! Per-request overhead of `SessionLayer` over a bare service, calling the tower services
//! directly with in-memory requests (no sockets), on a current-thread tokio runtime.
//!
//! - `bare`: the inner service alone.
//! - `floor`: the inner service behind a layer that only inserts one `Arc` into the request's
//!   extensions (`common/floor.rs`): the yardstick every middleware case is read against.
//! - `layer/anonymous`: no cookie, the handler does not touch the session (no Set-Cookie).
//! - `layer/stateless`: a ~200-byte anonymous session cookie; the handler reads one value.
//! - `layer/registry`: the same session bound to a user and validated by `SqliteRegistry`
//!   (an in-memory cache hit, the steady state).
//! - `registry-validated request on PostgreSQL (cache hit)`: the same with `PostgresRegistry`
//!   (feature `postgres` and `SEALED_SESSIONS_POSTGRES_URL`; a fresh schema, dropped at the
//!   end; skipped with the reason printed otherwise). Target: within 1.1x of `layer/stateless`.
//!   The registry's round trips to the server over the measured requests are counted and
//!   printed (target: 0).
//! - `layer/write`: the handler changes the session, so the cookie is re-sealed and rendered;
//!   every request sends the same cookie.
//! - `layer/write chain`: the same, but each request sends the cookie the previous response
//!   set, as a browser does (the time includes taking it from the response).
//!
//! Group `cache_contention`: `SqliteRegistry::validate_cached` hits plus the throttled `touch`
//! (what the middleware does per request), per call, from one thread
//! and from two threads at once (each on its own session, and both on the same one), to show
//! whether the cache's shard locks contend on this 2-core machine.
//!
//! The peers (tower-sessions and its stores, axum-extra's `PrivateCookieJar`) are in
//! `benches/peers`, a crate of its own: sqlx cannot share a build with rusqlite, and the peers
//! stay out of this crate's dev-dependencies. `cargo bench --bench middleware --features
//! postgres`; ratios are in docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::SET_COOKIE;
use http_body_util::Full;
use hyper::body::Bytes;
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionId, SessionLayer};
use tower::{Layer, Service, ServiceExt};
use workload::{cookie_of, handler, request};

#[path = "common/floor.rs"]
mod floor;
#[path = "common/workload.rs"]
mod workload;

use floor::{read_floor, FloorLayer};

#[cfg(feature = "postgres")]
#[path = "common/pg.rs"]
mod pg;

/// The PostgreSQL registry for its case, when the feature and a server are there.
mod postgres {
    /// A `PostgresRegistry` in a fresh schema of its own.
    pub struct Pg {
        #[cfg(feature = "postgres")]
        fresh: super::pg::FreshSchema,
        #[cfg(feature = "postgres")]
        pub registry: std::sync::Arc<sealed_sessions::registry::PostgresRegistry>,
        #[cfg(not(feature = "postgres"))]
        pub registry: std::sync::Arc<sealed_sessions::registry::SqliteRegistry>,
    }

    #[cfg(not(feature = "postgres"))]
    pub fn open() -> Option<Pg> {
        eprintln!("skipped: the PostgreSQL case needs the postgres feature (--features postgres)");
        None
    }

    #[cfg(feature = "postgres")]
    pub fn open() -> Option<Pg> {
        const URL_VAR: &str = "SEALED_SESSIONS_POSTGRES_URL";
        let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
            eprintln!("skipped: the PostgreSQL case needs a server; set {URL_VAR}=postgres://...");
            return None;
        };
        let fresh = super::pg::FreshSchema::open(&url, "bench_mw_");
        Some(Pg {
            registry: fresh.registry.clone(),
            fresh,
        })
    }

    impl Pg {
        /// Round trips to the server so far (none without the feature: there is no server).
        pub fn round_trips(&self) -> u64 {
            #[cfg(feature = "postgres")]
            {
                self.registry.round_trips()
            }
            #[cfg(not(feature = "postgres"))]
            {
                0
            }
        }

        /// Stops the registry and drops its schema.
        pub fn close(self) {
            #[cfg(feature = "postgres")]
            self.fresh.close();
            #[cfg(not(feature = "postgres"))]
            self.registry.stop();
        }
    }
}

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
    let floor = FloorLayer.layer(tower::service_fn(|req: http::Request<Full<Bytes>>| {
        read_floor(&req);
        handler(req)
    }));
    let postgres = postgres::open();
    let pg_bound = postgres.as_ref().map(|pg| {
        SessionLayer::new(
            SessionConfig::builder(KeyRing::new(Key::generate()))
                .registry(pg.registry.clone())
                .build()
                .unwrap(),
        )
        .layer(tower::service_fn(handler::<Full<Bytes>>))
    });

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
    // The same session as `layer/registry`'s: the sample data, then a sign-in.
    let pg_cookie = pg_bound.as_ref().map(|svc| {
        rt.block_on(async {
            let res = svc.clone().oneshot(request("/setup", None)).await.unwrap();
            let res = svc
                .clone()
                .oneshot(request("/login", Some(&cookie_of(&res))))
                .await
                .unwrap();
            let cookie = cookie_of(&res);
            let res = svc
                .clone()
                .oneshot(request("/read", Some(&cookie)))
                .await
                .unwrap();
            assert!(res.status().is_success() && res.headers().get(SET_COOKIE).is_none());
            cookie
        })
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
    case!("floor", floor, "/read", Some(&anon_cookie));
    case!("layer/anonymous", stateless, "/none", None);
    case!("layer/stateless", stateless, "/read", Some(&anon_cookie));
    case!("layer/registry", bound, "/read", Some(&user_cookie));
    if let (Some(pg), Some(svc), Some(cookie)) = (&postgres, &pg_bound, &pg_cookie) {
        let mut svc = svc.clone();
        let mut requests = 0u64;
        let before = pg.round_trips();
        g.bench_function(
            "registry-validated request on PostgreSQL (cache hit)",
            |b| {
                b.iter(|| {
                    requests += 1;
                    rt.block_on(async {
                        let req = request("/read", Some(cookie));
                        svc.ready().await.unwrap().call(req).await.unwrap()
                    })
                })
            },
        );
        let trips = pg.round_trips() - before;
        println!(
            "PostgreSQL, cache hit: {trips} round trips to the server over {requests} requests \
             ({:.4} per request)",
            trips as f64 / requests.max(1) as f64
        );
    }
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
    g.finish();
    drop(rt);
    contention(c, &registry);
    if let Some(pg) = postgres {
        pg.close();
    }
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
