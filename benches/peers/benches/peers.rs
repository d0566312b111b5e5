//! A full request through each session middleware, called as tower services (no sockets) on a
//! current-thread runtime: the bare handler, sealed-sessions (stateless, signed-in ~200-byte
//! session), and tower-sessions with its MemoryStore and its SQLite (sqlx) store, all reading
//! one value of the same signed-in session. Same run, so read the ratios.
//!
//! `cd benches/peers && cargo bench`

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use sealed_sessions_peers::{bare, ours, peer, request, signed_in, sqlite_store, Body};
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
    let ours = SessionLayer::new(config).layer(tower::service_fn(ours::<Body>));
    let memory = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .layer(tower::service_fn(peer::<Body>));
    let store = rt.block_on(sqlite_store(dir.path()));
    let sqlite = SessionManagerLayer::new(store)
        .with_secure(false)
        .layer(tower::service_fn(peer::<Body>));
    let bare = tower::service_fn(bare::<Body>);

    let ours_cookie = rt.block_on(signed_in(&ours));
    let memory_cookie = rt.block_on(signed_in(&memory));
    let sqlite_cookie = rt.block_on(signed_in(&sqlite));

    let mut g = c.benchmark_group("peers");
    macro_rules! case {
        ($name:expr, $svc:expr, $cookie:expr) => {{
            let mut svc = $svc.clone();
            g.bench_function($name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = request("/read", $cookie);
                        svc.ready().await.unwrap().call(req).await.unwrap()
                    })
                })
            });
        }};
    }
    case!("bare", bare, Some(&ours_cookie));
    case!("sealed-sessions/stateless", ours, Some(&ours_cookie));
    case!("tower-sessions/memory", memory, Some(&memory_cookie));
    case!("tower-sessions/sqlite", sqlite, Some(&sqlite_cookie));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
