//! Registry costs at 100k and 1M sessions: validate (cache hit, cache miss, strict hit),
//! register, revoke_user of 10 sessions, list_for_user; plus the raw SQLite costs the design
//! rests on (`PRAGMA data_version`, an indexed point lookup) and, as the yardstick, opening a
//! private cookie with the `cookie` crate.
//!
//! Each database is built once in a temp dir with bulk inserts in one transaction. Sample sizes
//! and measurement times are small to keep the whole run to a few minutes.

use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rusqlite::{params, Connection};
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

const PER_USER: usize = 10;
const HOUR: Duration = Duration::from_secs(3600);

fn id_of(n: usize) -> SessionId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    bytes[8..].copy_from_slice(&(n as u64).to_le_bytes());
    SessionId::from_bytes(bytes)
}

fn user_of(n: usize) -> String {
    format!("user{}", n / PER_USER)
}

/// Creates the schema through the registry, then bulk-inserts `rows` sessions.
fn build(path: &Path, rows: usize, now: SystemTime) {
    SqliteRegistry::open(path).unwrap().stop();
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, user_agent, ip) \
                 VALUES (?1, ?2, ?3, ?4, ?3, 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', '192.0.2.1')",
            )
            .unwrap();
        let created = to_ms(now);
        let expires = to_ms(now + 24 * HOUR);
        for n in 0..rows {
            stmt.execute(params![id_of(n).as_bytes(), user_of(n), created, expires])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .unwrap();
}

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn registry(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = SystemTime::now();
    // SEALED_BENCH_ROWS=100000 runs one size only.
    let sizes: Vec<usize> = match std::env::var("SEALED_BENCH_ROWS") {
        Ok(rows) => vec![rows.parse().expect("SEALED_BENCH_ROWS is a number")],
        Err(_) => vec![100_000, 1_000_000],
    };
    for rows in sizes {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        let started = std::time::Instant::now();
        build(&path, rows, now);
        eprintln!("built {rows} rows in {:?}", started.elapsed());

        let reg = SqliteRegistry::builder(&path)
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap();
        let uncached = SqliteRegistry::builder(&path)
            .cache_capacity(0)
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap();
        let strict = SqliteRegistry::builder(&path)
            .strict(true)
            .poll_interval(Duration::ZERO)
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap();

        let mut g = c.benchmark_group("registry");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));

        let probes: Vec<(SessionId, String)> = (0..1024)
            .map(|k| {
                let n = (k * 7919 + 13) % rows;
                (id_of(n), user_of(n))
            })
            .collect();
        for (id, user) in &probes {
            assert!(rt.block_on(reg.validate(*id, user, now)).unwrap());
            assert!(rt.block_on(strict.validate(*id, user, now)).unwrap());
        }

        let mut k = 0;
        g.bench_function(BenchmarkId::new("validate_hit", rows), |b| {
            b.iter(|| {
                k = (k + 1) % probes.len();
                let (id, user) = &probes[k];
                assert_eq!(reg.validate_cached(*id, user, now), Some(true));
            })
        });
        g.bench_function(BenchmarkId::new("validate_hit_strict", rows), |b| {
            b.iter(|| {
                k = (k + 1) % probes.len();
                let (id, user) = &probes[k];
                assert_eq!(strict.validate_cached(*id, user, now), Some(true));
            })
        });
        g.bench_function(BenchmarkId::new("validate_miss", rows), |b| {
            b.iter(|| {
                k = (k + 1) % probes.len();
                let (id, user) = &probes[k];
                assert!(rt.block_on(uncached.validate(*id, user, now)).unwrap());
            })
        });
        g.bench_function(BenchmarkId::new("list_for_user", rows), |b| {
            b.iter(|| {
                k = (k + 1) % probes.len();
                let list = rt.block_on(reg.list_for_user(&probes[k].1, now)).unwrap();
                assert_eq!(list.len(), PER_USER);
            })
        });
        g.bench_function(BenchmarkId::new("register", rows), |b| {
            b.iter(|| {
                let s = NewSession::new(SessionId::generate(), "bench-register", now, now + HOUR);
                rt.block_on(reg.register(s)).unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("register_64_concurrent", rows), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let pending: Vec<_> = (0..64)
                        .map(|_| {
                            let id = SessionId::generate();
                            reg.register(NewSession::new(id, "bench-burst", now, now + HOUR))
                        })
                        .collect();
                    for done in pending {
                        done.await.unwrap();
                    }
                })
            })
        });
        let mut fresh_user = 0usize;
        g.bench_function(BenchmarkId::new("revoke_user_10", rows), |b| {
            b.iter_batched(
                || {
                    fresh_user += 1;
                    let user = format!("bench-revoke-{fresh_user}");
                    rt.block_on(async {
                        // Registered concurrently, so they share one group commit.
                        let pending: Vec<_> = (0..PER_USER)
                            .map(|_| {
                                reg.register(NewSession::new(
                                    SessionId::generate(),
                                    user.clone(),
                                    now,
                                    now + HOUR,
                                ))
                            })
                            .collect();
                        for done in pending {
                            done.await.unwrap();
                        }
                    });
                    user
                },
                |user| assert_eq!(rt.block_on(reg.revoke_user(&user, None)).unwrap(), 10),
                BatchSize::PerIteration,
            )
        });

        let raw = Connection::open(&path).unwrap();
        g.bench_function(BenchmarkId::new("sqlite_data_version", rows), |b| {
            let mut stmt = raw.prepare("PRAGMA data_version").unwrap();
            b.iter(|| stmt.query_row([], |r| r.get::<_, i64>(0)).unwrap())
        });
        g.bench_function(BenchmarkId::new("sqlite_point_lookup", rows), |b| {
            let mut stmt = raw
                .prepare("SELECT user_id, expires_at, revoked_at FROM sessions WHERE id = ?1")
                .unwrap();
            b.iter(|| {
                k = (k + 1) % probes.len();
                stmt.query_row([probes[k].0.as_bytes()], |r| r.get::<_, String>(0))
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("sqlite_list_query", rows), |b| {
            let mut stmt = raw
                .prepare(
                    "SELECT id, created_at, last_seen_at, expires_at, user_agent, ip FROM sessions \
                     WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                     ORDER BY created_at DESC, id",
                )
                .unwrap();
            b.iter(|| {
                k = (k + 1) % probes.len();
                let rows = stmt
                    .query_map(params![probes[k].1, to_ms(now)], |r| r.get::<_, Vec<u8>>(0))
                    .unwrap()
                    .count();
                assert_eq!(rows, PER_USER);
            })
        });
        g.finish();
        drop((reg, uncached, strict, raw));
    }

    // The yardstick: opening a private (AES-256-GCM) cookie with the `cookie` crate.
    let key = cookie::Key::generate();
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&key)
        .add(cookie::Cookie::new("session", "x".repeat(200)));
    let sealed = jar.get("session").unwrap().clone();
    c.bench_function("reference/cookie_private_get", |b| {
        b.iter(|| {
            let mut jar = cookie::CookieJar::new();
            jar.add_original(sealed.clone());
            assert!(jar.private(&key).get("session").is_some());
        })
    });

    // And the cost the registry check is added to: opening this crate's own sealed cookie.
    let now = SystemTime::now();
    let mut claims =
        sealed_sessions::Claims::new(now, Duration::from_secs(3600), Duration::from_secs(900));
    claims.set_user("user-42", now);
    claims.insert("data", &"x".repeat(160)).unwrap();
    let sealer = sealed_sessions::Sealer::new(
        sealed_sessions::KeyRing::new(sealed_sessions::Key::generate()),
        sealed_sessions::Mode::Private,
    );
    let value = sealer.seal("session", &claims).unwrap();
    c.bench_function("reference/sealed_open", |b| {
        b.iter(|| sealer.open("session", &value, now).unwrap())
    });
}

criterion_group!(benches, registry);
criterion_main!(benches);
