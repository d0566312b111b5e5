//! `revoke_all` at scale: fills a registry with N sessions (1,000,000 by default), has another
//! registry on the same database (another process, another host) cache a sample of them, then
//! revokes every session (or, with `before`, those signed in before the middle of the range) and
//! prints how long the revocation took, how long until the other registry refused the sample,
//! the log rows written and the database's growth.
//!
//! ```text
//! cargo run --release --features sqlite --example bulk_revoke -- [N] [all|before]
//! SEALED_SESSIONS_POSTGRES_URL=postgres://... \
//!     cargo run --release --features postgres --example bulk_revoke -- [N] [all|before]
//! ```
//!
//! Not a test: a million sessions take minutes to write. The figures are in docs/registry.md.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{Registry, SqliteRegistry};
use sealed_sessions::SessionId;

const SAMPLE: usize = 1_000;
const USERS: usize = 100_000;
const DAY: Duration = Duration::from_secs(86_400);

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |s| s.parse().unwrap());
    let before = args.next().is_some_and(|s| s == "before");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(sqlite(n, before));
    #[cfg(feature = "postgres")]
    match std::env::var("SEALED_SESSIONS_POSTGRES_URL") {
        Ok(url) => rt.block_on(postgres::run(&url, n, before)),
        Err(_) => println!("postgres: skipped (SEALED_SESSIONS_POSTGRES_URL is not set)"),
    }
}

/// Session `i` of the fill: its user, and when it was signed in (spread over ten days, so that
/// "before the middle" is half of them).
fn user_of(i: usize) -> String {
    format!("user{}", i % USERS)
}

fn signed_in(i: usize, n: usize, now: SystemTime) -> SystemTime {
    now - DAY * 10 + DAY * 10 / n as u32 * i as u32
}

struct Figures {
    revoked: u64,
    took: Duration,
    refused_after: Duration,
    log_rows: i64,
    bytes_before: u64,
    bytes_after: u64,
}

impl Figures {
    fn print(&self, backend: &str, n: usize, before: bool) {
        println!(
            "{backend}: {n} sessions, revoke_all({}): revoked {} in {:.2?}; another host refused \
             the {SAMPLE} sampled sessions {:.2?} after the call began; {} log row(s) written; \
             database {:.1} MB -> {:.1} MB",
            if before {
                "signed in before the middle"
            } else {
                "None"
            },
            self.revoked,
            self.took,
            self.refused_after,
            self.log_rows,
            self.bytes_before as f64 / 1e6,
            self.bytes_after as f64 / 1e6,
        );
    }
}

/// Has `other` cache `sample` (validated until its cache vouches), runs `revoke` on `reg`, and
/// times it and the other registry's refusal of the revoked part of the sample.
async fn measure(
    reg: Arc<dyn Registry>,
    other: Arc<dyn Registry>,
    sample: &[(SessionId, String, bool)],
    before: Option<SystemTime>,
) -> (u64, Duration, Duration) {
    for (id, user, _) in sample {
        let started = Instant::now();
        while other.validate_cached(*id, user, SystemTime::now()) != Some(true) {
            assert!(other.validate(*id, user, SystemTime::now()).await.unwrap());
            assert!(started.elapsed() < Duration::from_secs(10), "never cached");
        }
    }
    let started = Instant::now();
    let revoked = reg.revoke_all(before).await.unwrap();
    let took = started.elapsed();
    for (id, user, covered) in sample.iter().filter(|s| s.2) {
        while other.validate_cached(*id, user, SystemTime::now()) == Some(true) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never refused"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert!(*covered && !other.validate(*id, user, SystemTime::now()).await.unwrap());
    }
    let refused_after = started.elapsed();
    for (id, user, _) in sample.iter().filter(|s| !s.2) {
        assert!(other.validate(*id, user, SystemTime::now()).await.unwrap());
    }
    (revoked, took, refused_after)
}

async fn sqlite(n: usize, before: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bulk.db");
    let open = || {
        SqliteRegistry::builder(&path)
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap()
    };
    drop(open()); // creates the schema
    let now = SystemTime::now();
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let mut sample = Vec::new();
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, \
                     user_agent, ip) VALUES (?1, ?2, ?3, ?4, ?3, ?5, '192.0.2.7')",
                )
                .unwrap();
            for i in 0..n {
                let id = SessionId::generate();
                let at = signed_in(i, n, now);
                insert
                    .execute(rusqlite::params![
                        id.as_bytes(),
                        user_of(i),
                        ms(at),
                        ms(now + DAY),
                        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    ])
                    .unwrap();
                if i % (n / SAMPLE).max(1) == 0 && sample.len() < SAMPLE {
                    sample.push((id, user_of(i), !before || i < n / 2));
                }
            }
        }
        tx.commit().unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let size = || {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(&path).map_or(0, |m| m.len())
            + std::fs::metadata(wal).map_or(0, |m| m.len())
    };
    let log = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT count(*) FROM revocations", [], |r| r.get(0))
            .unwrap()
    };
    let bytes_before = size();
    let (reg, other): (Arc<dyn Registry>, Arc<dyn Registry>) = (Arc::new(open()), Arc::new(open()));
    let cut = before.then(|| signed_in(n / 2, n, now));
    let (revoked, took, refused_after) = measure(reg, other, &sample, cut).await;
    Figures {
        revoked,
        took,
        refused_after,
        log_rows: log(),
        bytes_before,
        bytes_after: size(),
    }
    .print("sqlite", n, before);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sealed_sessions::registry::PostgresRegistry;

    pub async fn run(url: &str, n: usize, before: bool) {
        let schema = "bulk_revoke_example";
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .unwrap();
        let open = || {
            PostgresRegistry::builder(url)
                .schema(schema)
                .cleanup_interval(Duration::ZERO)
                .open()
                .unwrap()
        };
        drop(open()); // creates the schema
        let now = SystemTime::now();
        let start = now - DAY * 10;
        // Ids from md5: 16 bytes, distinct for distinct i.
        client
            .execute(
                &format!(
                    "INSERT INTO {schema}.sessions (id, user_id, created_at, expires_at, \
                     last_seen_at, user_agent, ip) \
                     SELECT decode(md5('bulk' || i), 'hex'), 'user' || (i % {USERS}), \
                     $1::timestamptz + (i * $2::float8) * interval '1 millisecond', \
                     $3::timestamptz, $1::timestamptz, \
                     'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', \
                     '192.0.2.7' FROM generate_series(0, $4::bigint - 1) AS i"
                ),
                &[
                    &start,
                    &((DAY * 10).as_millis() as f64 / n as f64),
                    &(now + DAY),
                    &(n as i64),
                ],
            )
            .await
            .unwrap();
        client
            .batch_execute(&format!("VACUUM ANALYZE {schema}.sessions"))
            .await
            .unwrap();
        let rows = client
            .query(
                &format!(
                    "SELECT id, user_id, created_at < $1 FROM {schema}.sessions \
                     TABLESAMPLE SYSTEM (1) LIMIT {SAMPLE}"
                ),
                &[&signed_in(n / 2, n, now)],
            )
            .await
            .unwrap();
        let sample: Vec<(SessionId, String, bool)> = rows
            .iter()
            .map(|r| {
                let id: Vec<u8> = r.get(0);
                let bytes: [u8; 16] = id.try_into().unwrap();
                (
                    SessionId::from_bytes(bytes),
                    r.get(1),
                    !before || r.get::<_, bool>(2),
                )
            })
            .collect();
        let size = || async {
            let row = client
                .query_one(
                    &format!(
                        "SELECT pg_total_relation_size('{schema}.sessions') \
                         + pg_total_relation_size('{schema}.revocations'), \
                         (SELECT count(*) FROM {schema}.revocations)"
                    ),
                    &[],
                )
                .await
                .unwrap();
            (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1))
        };
        let (bytes_before, _) = size().await;
        let (reg, other): (Arc<dyn Registry>, Arc<dyn Registry>) =
            (Arc::new(open()), Arc::new(open()));
        let cut = before.then(|| signed_in(n / 2, n, now));
        let (revoked, took, refused_after) = measure(reg, other, &sample, cut).await;
        let (bytes_after, log_rows) = size().await;
        Figures {
            revoked,
            took,
            refused_after,
            log_rows,
            bytes_before,
            bytes_after,
        }
        .print("postgres", n, before);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .unwrap();
    }
}
