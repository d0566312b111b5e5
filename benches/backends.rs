//! The two registry backends side by side in one run: a cached validation (the hot path of
//! every signed-in request), a cache miss (a table read), and the revocation throughput with
//! group commit, on SQLite and PostgreSQL.
//!
//! ```text
//! SEALED_SESSIONS_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench backends
//! ```
//!
//! Without the URL only SQLite runs. PostgreSQL runs in a schema of its own, dropped afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

#[path = "common/pg.rs"]
mod pg;
use pg::FreshSchema;

const HOUR: Duration = Duration::from_secs(3600);

struct Backend {
    name: &'static str,
    registry: Arc<dyn Registry>,
    cleanup: Box<dyn FnOnce()>,
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut all = vec![Backend {
        name: "sqlite",
        registry: Arc::new(SqliteRegistry::open(&path).unwrap()),
        cleanup: Box::new(move || drop(dir)),
    }];
    match std::env::var("SEALED_SESSIONS_POSTGRES_URL") {
        Ok(url) => {
            let pg = FreshSchema::open(&url, "bench_");
            all.push(Backend {
                name: "postgres",
                registry: pg.registry.clone(),
                cleanup: Box::new(move || pg.close()),
            });
        }
        Err(_) => eprintln!(
            "PostgreSQL skipped: set SEALED_SESSIONS_POSTGRES_URL to compare the backends"
        ),
    }
    all
}

async fn sessions(reg: &dyn Registry, user: &str, n: usize) -> Vec<SessionId> {
    let now = SystemTime::now();
    let mut ids = Vec::with_capacity(n);
    let mut pending = Vec::with_capacity(n);
    for _ in 0..n {
        let id = SessionId::generate();
        ids.push(id);
        pending.push(reg.register(NewSession::new(id, user, now, now + HOUR)));
    }
    for p in pending {
        p.await.unwrap();
    }
    ids
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let all = backends();
    let mut g = c.benchmark_group("backends");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for b in &all {
        let reg = &*b.registry;
        let ids = rt.block_on(sessions(reg, "alice", 1000));
        let now = SystemTime::now();
        for &id in &ids {
            assert!(rt.block_on(reg.validate(id, "alice", now)).unwrap());
        }
        let mut n = 0;
        g.bench_function(format!("{}/validate_cached_hit", b.name), |bench| {
            bench.iter(|| {
                n = (n + 1) % ids.len();
                assert_eq!(reg.validate_cached(ids[n], "alice", now), Some(true));
            })
        });
        // A miss reads the table: an id that is not there (its refusal is not cached for an
        // unknown id only once per id, so fresh ids every time).
        g.bench_function(format!("{}/validate_table_read", b.name), |bench| {
            bench.iter(|| {
                let id = SessionId::generate();
                assert!(!rt.block_on(reg.validate(id, "alice", now)).unwrap());
            })
        });
    }
    g.finish();

    // Revocations per second with group commit: 2,000 concurrent single revocations.
    for b in &all {
        let reg = &*b.registry;
        let ids = rt.block_on(sessions(reg, "bob", 2000));
        let start = Instant::now();
        rt.block_on(async {
            let pending: Vec<_> = ids.iter().map(|&id| reg.revoke("bob", id)).collect();
            for p in pending {
                assert!(p.await.unwrap());
            }
        });
        let took = start.elapsed();
        println!(
            "{}: 2,000 concurrent revocations in {took:?}: {:.0} revocations/s",
            b.name,
            2000.0 / took.as_secs_f64()
        );
    }
    for Backend {
        registry, cleanup, ..
    } in all
    {
        // The registry stops before its storage goes.
        drop(registry);
        cleanup();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
