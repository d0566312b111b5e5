//! A full request through each session middleware, called as tower services (no sockets) on a
//! current-thread runtime, all reading one value of the same signed-in session: the floor (a
//! layer that only inserts one `Arc`), sealed-sessions (stateless, and with `PostgresRegistry`
//! validating from its cache), axum-extra's `PrivateCookieJar`, and tower-sessions with its
//! MemoryStore, its SQLite store and its PostgreSQL store (sqlx). Same run, so read the ratios.
//!
//! ```text
//! cd benches/peers && SEALED_SESSIONS_POSTGRES_URL=postgres://... cargo bench --bench peers
//! ```
//!
//! Without the URL the two PostgreSQL cases are skipped (the reason is printed); with it, each
//! works in a fresh schema, dropped at the end. The sealed-sessions PostgreSQL case counts the
//! registry's round trips to the server over the measured requests and prints them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::handler::Handler;
use criterion::{criterion_group, criterion_main, Criterion};
use sealed_sessions::registry::PostgresRegistry;
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use sealed_sessions_peers::{
    bare, drop_schema, fresh_schema, ours, peer, postgres_store, postgres_url, private_jar,
    request, signed_in, sqlite_store, Body, FloorLayer,
};
use tower::{Layer, Service, ServiceExt};
use tower_sessions::{MemoryStore, SessionManagerLayer};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .build()
        .unwrap();
    let ours_svc = SessionLayer::new(config).layer(tower::service_fn(ours::<Body>));
    let floor = FloorLayer.layer(tower::service_fn(ours::<Body>));
    let jar = private_jar.with_state(axum_extra::extract::cookie::Key::generate());
    let memory = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .layer(tower::service_fn(peer::<Body>));
    let store = rt.block_on(sqlite_store(dir.path()));
    let sqlite = SessionManagerLayer::new(store)
        .with_secure(false)
        .layer(tower::service_fn(peer::<Body>));
    let bare = tower::service_fn(bare::<Body>);

    // The PostgreSQL pair, each in a schema of its own.
    let url =
        postgres_url("the PostgreSQL cases (sealed-sessions/postgres, tower-sessions/postgres)");
    let pg = url.as_ref().map(|url| {
        let (ours_schema, peer_schema) = (fresh_schema("bench_ss"), fresh_schema("bench_ts"));
        let registry = Arc::new(
            PostgresRegistry::builder(url)
                .schema(&ours_schema)
                .open()
                .expect("open the PostgreSQL registry"),
        );
        let config = SessionConfig::builder(KeyRing::new(Key::generate()))
            .registry(registry.clone())
            .build()
            .unwrap();
        let ours_pg = SessionLayer::new(config).layer(tower::service_fn(ours::<Body>));
        let store = rt.block_on(postgres_store(url, &peer_schema));
        let peer_pg = SessionManagerLayer::new(store)
            .with_secure(false)
            .layer(tower::service_fn(peer::<Body>));
        (registry, ours_pg, peer_pg, ours_schema, peer_schema)
    });

    let ours_cookie = rt.block_on(signed_in(&ours_svc));
    let jar_cookie = rt.block_on(signed_in::<_, Body, _>(&jar));
    let memory_cookie = rt.block_on(signed_in(&memory));
    let sqlite_cookie = rt.block_on(signed_in(&sqlite));

    let mut g = c.benchmark_group("peers");
    macro_rules! case {
        ($name:expr, $svc:expr, $cookie:expr) => {{
            let mut svc = $svc.clone();
            g.bench_function($name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = request::<Body>("/read", $cookie);
                        ServiceExt::<http::Request<Body>>::ready(&mut svc)
                            .await
                            .unwrap()
                            .call(req)
                            .await
                            .unwrap()
                    })
                })
            });
        }};
    }
    case!("bare", bare, Some(&ours_cookie));
    case!("floor (one Arc)", floor, Some(&ours_cookie));
    case!("sealed-sessions/stateless", ours_svc, Some(&ours_cookie));
    case!("axum-extra/PrivateCookieJar", jar, Some(&jar_cookie));
    case!("tower-sessions/memory", memory, Some(&memory_cookie));
    case!("tower-sessions/sqlite", sqlite, Some(&sqlite_cookie));
    if let Some((registry, ours_pg, peer_pg, _, _)) = &pg {
        let ours_pg_cookie = rt.block_on(signed_in(ours_pg));
        let peer_pg_cookie = rt.block_on(signed_in(peer_pg));
        // Round trips over the measured requests only (sign-in and its check read the server).
        let requests = AtomicU64::new(0);
        let before = registry.round_trips();
        {
            let mut svc = ours_pg.clone();
            g.bench_function("sealed-sessions/postgres (cached)", |b| {
                b.iter(|| {
                    requests.fetch_add(1, Ordering::Relaxed);
                    rt.block_on(async {
                        let req = request("/read", Some(&ours_pg_cookie));
                        ServiceExt::<http::Request<Body>>::ready(&mut svc)
                            .await
                            .unwrap()
                            .call(req)
                            .await
                            .unwrap()
                    })
                })
            });
        }
        let trips = registry.round_trips() - before;
        println!(
            "sealed-sessions/postgres (cached): {trips} round trips to PostgreSQL over {} requests",
            requests.load(Ordering::Relaxed)
        );
        case!("tower-sessions/postgres", peer_pg, Some(&peer_pg_cookie));
    }
    g.finish();

    if let (Some(url), Some((registry, _, _, ours_schema, peer_schema))) = (url, pg) {
        registry.stop();
        rt.block_on(async {
            drop_schema(&url, &ours_schema).await;
            drop_schema(&url, &peer_schema).await;
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
