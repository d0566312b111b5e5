//! The PostgreSQL registry under the faults a review found: a failover that reuses sequence
//! numbers, a cleanup of the log's newest row, a catch-up too large to read, a batch that meets a
//! held lock, a connection the network drops silently, an operator's DELETE beside the writer,
//! and two guards (a rotation racing sign-out-everywhere, a lost notification followed by
//! another). Needs a server (`tests/pg_support`); skips with a reason otherwise.
#![cfg(feature = "postgres")]

mod pg_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry, RegistryError};
use sealed_sessions::SessionId;

use pg_support::Schema;

const HOUR: Duration = Duration::from_secs(3600);

fn hex(id: SessionId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn registered(reg: &PostgresRegistry, user: &str, life: Duration) -> SessionId {
    let now = SystemTime::now();
    let id = SessionId::generate();
    reg.register(NewSession::new(id, user, now, now + life))
        .await
        .unwrap();
    id
}

async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn max_seq(url: &str, s: &str) -> i64 {
    let c = pg_support::connect(url).await;
    c.query_one(
        &format!("SELECT coalesce(max(seq), 0) FROM {s}.revocations"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// An async-replica failover loses the log's tail (seq B+1..w, already seen by host b), and the
/// promoted server hands those numbers out again to other hosts' revocations before b's listener
/// is back. Reading `seq > w` would never see them: the row at b's watermark, which now holds
/// another id, tells b to forget its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_reuses_sequence_numbers_is_noticed() {
    let Some(url) = pg_support::url("failover") else {
        return;
    };
    let schema = Schema::new(&url, "pf_failover");
    let s = schema.name.clone();
    let (proxy, through) = pg_support::proxied(&url).await;
    let a = schema.open();
    let b = PostgresRegistry::builder(&through)
        .schema(&s)
        .staleness_bound(Duration::from_millis(1000))
        .heartbeat(Duration::from_millis(200))
        .operation_timeout(Duration::from_millis(500))
        .cleanup_interval(Duration::ZERO)
        .open()
        .unwrap();
    let now = SystemTime::now();
    let mut lost = Vec::new();
    let mut later = Vec::new();
    for _ in 0..3 {
        lost.push(registered(&a, "u", HOUR).await);
    }
    for _ in 0..5 {
        later.push(registered(&a, "u", HOUR).await);
    }
    for &id in lost.iter().chain(&later) {
        assert!(b.validate(id, "u", now).await.unwrap());
    }
    let base = max_seq(&url, &s).await;
    for &id in &lost {
        assert!(a.revoke_id(id).await.unwrap());
    }
    for &id in &lost {
        wait_until("eviction on b", Duration::from_secs(5), || {
            b.validate_cached(id, "u", SystemTime::now()) != Some(true)
        })
        .await;
    }
    // b's listener is cut off; the "failover" loses the last 3 log rows (and their sessions'
    // revocations), and the promoted server's sequence is back at base+1.
    proxy.paused.store(true, Ordering::SeqCst);
    let in_list = lost
        .iter()
        .map(|id| format!("'\\x{}'::bytea", hex(*id)))
        .collect::<Vec<_>>()
        .join(",");
    schema.execute(&format!(
        "DELETE FROM {s}.revocations WHERE seq > {base};
         UPDATE {s}.sessions SET revoked_at = NULL WHERE id IN ({in_list});
         ALTER TABLE {s}.revocations ALTER COLUMN seq RESTART WITH {};",
        base + 1
    ));
    // Revocations on the new primary, by another host, while b reconnects.
    for &id in &later {
        assert!(a.revoke_id(id).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    proxy.paused.store(false, Ordering::SeqCst);
    // b reconnects and catches up; wait until it is fresh again, then twice the bound more.
    wait_until("b fresh again", Duration::from_secs(10), || {
        b.staleness() < Duration::from_millis(300)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let still: Vec<usize> = later
        .iter()
        .enumerate()
        .filter(|(_, &id)| b.validate_cached(id, "u", SystemTime::now()) == Some(true))
        .map(|(i, _)| i)
        .collect();
    println!(
        "b staleness {:?}; revoked after the failover yet cached valid on b: {still:?}",
        b.staleness()
    );
    assert!(
        still.is_empty(),
        "sessions revoked {:?}+ ago still accepted from b's cache: {still:?}",
        Duration::from_millis(3200)
    );
}

/// Cleanup must not remove the log's newest row (when its session expired first): `max(seq)`
/// would drop below the watermark, every host would take it for a restore and drop its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_up_the_newest_log_row_keeps_every_cache() {
    let Some(url) = pg_support::url("spurious") else {
        return;
    };
    let schema = Schema::new(&url, "pf_spurious");
    let (a, b) = (schema.open(), schema.open());
    let keep = registered(&a, "u", HOUR).await;
    assert!(b.validate(keep, "u", SystemTime::now()).await.unwrap());
    let long = registered(&a, "u", HOUR).await;
    let short = registered(&a, "u", Duration::from_secs(2)).await;
    assert!(a.revoke_id(long).await.unwrap());
    assert!(a.revoke_id(short).await.unwrap()); // the newest log row, expiring first
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(b.validate_cached(keep, "u", SystemTime::now()), Some(true));
    let before = b.round_trips();
    // The periodic cleanup does the same on any host.
    a.delete_expired(SystemTime::now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await; // two heartbeats
    let answer = b.validate_cached(keep, "u", SystemTime::now());
    println!(
        "after cleanup: b's cached answer for an untouched live session: {answer:?} (staleness {:?})",
        b.staleness()
    );
    assert_eq!(answer, Some(true), "b dropped its whole cache");
    assert_eq!(b.round_trips(), before);
}

/// A gap too large to read within a heartbeat (an operator's DELETE of 150,000 live sessions):
/// read in one query, it never completed and the host stayed stale; now the host empties its
/// cache and is fresh again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_too_large_to_read_empties_the_cache() {
    let Some(url) = pg_support::url("huge") else {
        return;
    };
    let schema = Schema::new(&url, "pf_huge");
    let s = &schema.name;
    let b = schema.open();
    let keep = registered(&b, "u", HOUR).await;
    assert_eq!(b.validate_cached(keep, "u", SystemTime::now()), Some(true));
    let start = Instant::now();
    // As an operator's `DELETE FROM sessions WHERE ...` of many live sessions would log; more
    // than the listener reads (it empties its cache instead).
    schema.execute(&format!(
        "INSERT INTO {s}.revocations (id, expires_at) \
         SELECT decode(lpad(to_hex(g), 32, '0'), 'hex'), now() + interval '1 hour' \
         FROM generate_series(1, 150000) g"
    ));
    println!("150,000 log rows inserted in {:?}", start.elapsed());
    let start = Instant::now();
    let mut fresh_again = None;
    while start.elapsed() < Duration::from_secs(20) {
        if b.staleness() < Duration::from_millis(600) && start.elapsed() > Duration::from_secs(3) {
            fresh_again = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "fresh again: {fresh_again:?}; staleness now {:?}; cached answer {:?}",
        b.staleness(),
        b.validate_cached(keep, "u", SystemTime::now())
    );
    assert!(fresh_again.is_some(), "the host never caught up in 20 s");
    assert_ne!(
        b.validate_cached(keep, "u", SystemTime::now()),
        Some(true),
        "the cache was emptied, not trusted"
    );
    assert!(b.validate(keep, "u", SystemTime::now()).await.unwrap());
}

/// A batch that meets a held writers' lock fails at once: retried op by op, each would wait the
/// full lock timeout again before any caller is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_meets_a_held_lock_fails_at_once() {
    let Some(url) = pg_support::url("busy") else {
        return;
    };
    let schema = Schema::new(&url, "pf_busy");
    let s = schema.name.clone();
    let a = Arc::new(
        schema
            .builder()
            .operation_timeout(Duration::from_millis(300))
            .open()
            .unwrap(),
    );
    let mut ids = Vec::new();
    for _ in 0..21 {
        ids.push(registered(&a, "u", HOUR).await);
    }
    // Someone holds the writers' lock (an operator's open transaction, a slow cleanup...).
    let holder = pg_support::connect(&url).await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .batch_execute(&format!("LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE"))
        .await
        .unwrap();
    let first = {
        let a = a.clone();
        let id = ids[0];
        tokio::spawn(async move { a.revoke_id(id).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for &id in &ids[1..] {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let r = a.revoke_id(id).await;
            (r.map_err(|e| format!("{e:?}")), Instant::now())
        }));
    }
    let _ = first.await.unwrap();
    let mut latencies = Vec::new();
    for t in tasks {
        let (r, at) = t.await.unwrap();
        latencies.push((at - start, r.is_err()));
    }
    holder.batch_execute("ROLLBACK").await.unwrap();
    let worst = latencies.iter().map(|l| l.0).max().unwrap();
    println!(
        "20 revokes, operation timeout 300 ms: worst latency {worst:?}, failed {}",
        latencies.iter().filter(|l| l.1).count()
    );
    assert!(
        worst < Duration::from_millis(300 + 1000 + 300),
        "a caller waited {worst:?} with an operation timeout of 300 ms"
    );
}

/// The reader's (and writer's) connection is silently dropped by the network (NAT state lost:
/// no RST). After a timeout the connection is replaced, so later reads work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dropped_connection_is_replaced() {
    let Some(url) = pg_support::url("blackhole") else {
        return;
    };
    let schema = Schema::new(&url, "pf_blackhole");
    let (proxy, through) = pg_support::proxied(&url).await;
    let a = schema.open();
    let b = PostgresRegistry::builder(&through)
        .schema(&schema.name)
        .operation_timeout(Duration::from_millis(300))
        .cleanup_interval(Duration::ZERO)
        .cache_capacity(0) // every validate reads the table
        .open()
        .unwrap();
    let id = registered(&a, "u", HOUR).await;
    assert!(b.validate(id, "u", SystemTime::now()).await.unwrap());
    proxy.blackhole_existing();
    let start = Instant::now();
    let mut results = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        let r = b.validate(id, "u", SystemTime::now()).await;
        results.push(match r {
            Ok(v) => format!("Ok({v})"),
            Err(RegistryError::Unreachable { .. }) => "Unreachable".into(),
            Err(e) => format!("{e}"),
        });
        if results.last().unwrap().starts_with("Ok") {
            break;
        }
    }
    let w = b.revoke_id(registered(&a, "u", HOUR).await).await;
    println!(
        "validate after the blackhole, for 8 s: {results:?}; a write: {:?}; staleness {:?}",
        w.as_ref().map_err(|e| e.to_string()),
        b.staleness()
    );
    assert!(
        results.iter().any(|r| r.starts_with("Ok")),
        "no read succeeded in 8 s though new connections work"
    );
}

/// An operator's plain `DELETE FROM sessions WHERE ...` takes the writers' lock before its row
/// locks (a BEFORE DELETE trigger), as the registry's writer does, so the two cannot deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_delete_beside_the_writer_does_not_deadlock() {
    let Some(url) = pg_support::url("deadlock") else {
        return;
    };
    let schema = Schema::new(&url, "pf_deadlock");
    let s = schema.name.clone();
    let a = schema.open();
    let x1 = registered(&a, "x", HOUR).await;
    let _x2 = registered(&a, "x", HOUR).await;
    let op = pg_support::connect(&url).await;
    // The second row takes a second to qualify (a slow predicate / a big scan).
    let sql = format!(
        "DELETE FROM {s}.sessions WHERE user_id = 'x' AND \
         (CASE WHEN id = '\\x{}'::bytea THEN true ELSE pg_sleep(1)::text = '' END)",
        hex(x1)
    );
    let deleting =
        tokio::spawn(async move { op.execute(&sql, &[]).await.map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked = a.revoke_id(x1).await.map_err(|e| e.to_string());
    let deleted = deleting.await.unwrap();
    println!("operator DELETE: {deleted:?}; concurrent revoke_id: {revoked:?}");
    assert!(
        deleted.is_ok() && revoked.is_ok(),
        "a deadlock between an operator's DELETE and the registry's writer"
    );
}

/// No password in errors of malformed URLs.
#[test]
fn no_password_in_url_errors() {
    for url in [
        "postgres://user:s3cr3tpw@127.0.0.1:notaport/db",
        "postgres://user:s3cr3tpw@127.0.0.1:1/db?sslmode=bogus",
        "postgres://user:s3cr3tpw@127.0.0.1:1/db?connect_timeout=x",
        "host=127.0.0.1 password=s3cr3tpw port=x",
        "postgres://user:s3cr3tpw@127.0.0.1:1/db",
    ] {
        let err = PostgresRegistry::open(url).unwrap_err();
        let text = format!("{err} / {err:?}");
        println!("{url}: {text}");
        assert!(!text.contains("s3cr3tpw"), "{text}");
        let b = format!("{:?}", PostgresRegistry::builder(url));
        assert!(!b.contains("s3cr3tpw"), "{b}");
    }
}

/// A guard for the writers' lock: a rotation committing while a "sign out everywhere" on
/// another host runs must not leave the rotated-in session alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_racing_sign_out_everywhere_is_not_missed() {
    let Some(url) = pg_support::url("g1") else {
        return;
    };
    let schema = Schema::new(&url, "pf_g1");
    let s = schema.name.clone();
    let b = Arc::new(schema.open());
    let old = registered(&b, "u", HOUR).await;
    let new = SessionId::generate();
    // Host a's rotation, by hand so that the test can hold it open: revoke old (logged), insert new.
    let a = pg_support::connect(&url).await;
    a.batch_execute(&format!(
        "BEGIN;
         LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE;
         WITH r AS (UPDATE {s}.sessions SET revoked_at = now() WHERE id = '\\x{o}' RETURNING id, expires_at)
           INSERT INTO {s}.revocations (id, expires_at) SELECT id, expires_at FROM r;
         INSERT INTO {s}.sessions (id, user_id, created_at, expires_at, last_seen_at)
           VALUES ('\\x{n}', 'u', now(), now() + interval '1 hour', now());",
        o = hex(old),
        n = hex(new)
    ))
    .await
    .unwrap();
    let everywhere = {
        let b = b.clone();
        tokio::spawn(async move { b.revoke_user("u", None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.batch_execute("COMMIT").await.unwrap();
    let n = everywhere.await.unwrap().unwrap();
    let other = schema.open(); // an empty cache: the table's answer
    let alive = other.validate(new, "u", SystemTime::now()).await.unwrap();
    println!("revoke_user revoked {n}; rotated-in session alive afterwards: {alive}");
    assert!(
        !alive,
        "the rotated-in session survived sign-out-everywhere"
    );
}

/// A guard for the watermark's "consecutive only" rule: a revocation whose notification is
/// lost, followed at once by one whose notification arrives, is still caught by the heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_followed_by_another_is_caught() {
    let Some(url) = pg_support::url("g2") else {
        return;
    };
    let schema = Schema::new(&url, "pf_g2");
    let s = &schema.name;
    let host = schema.open();
    let lost = registered(&host, "u", HOUR).await;
    let next = registered(&host, "u", HOUR).await;
    assert_eq!(
        host.validate_cached(lost, "u", SystemTime::now()),
        Some(true)
    );
    // Both in one round trip, well within one heartbeat.
    schema.execute(&format!(
        "BEGIN;
         ALTER TABLE {s}.revocations DISABLE TRIGGER revocations_notify;
         UPDATE {s}.sessions SET revoked_at = now() WHERE id = '\\x{l}';
         INSERT INTO {s}.revocations (id, expires_at) VALUES ('\\x{l}', now() + interval '1 hour');
         ALTER TABLE {s}.revocations ENABLE TRIGGER revocations_notify;
         COMMIT;
         DELETE FROM {s}.sessions WHERE id = '\\x{n}';",
        l = hex(lost),
        n = hex(next)
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await; // three heartbeats
    let answer = host.validate_cached(lost, "u", SystemTime::now());
    println!("1.5 s later, the revocation without a notification: cached answer {answer:?}");
    assert_ne!(answer, Some(true));
}

/// A host whose clock runs two hours ahead cleans up while another host is cut off: neither
/// the deletions nor the revocations of sessions that the database's clock says are live leave
/// the log, so the other host catches up on all of them when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_by_a_clock_ahead_stays_in_the_log_for_a_host_cut_off() {
    let Some(url) = pg_support::url("skew") else {
        return;
    };
    let schema = Schema::new(&url, "pf_skew");
    let (proxy, through) = pg_support::proxied(&url).await;
    let a = schema.open();
    let b = PostgresRegistry::builder(&through)
        .schema(&schema.name)
        .staleness_bound(Duration::from_secs(60))
        .cleanup_interval(Duration::ZERO)
        .open()
        .unwrap();
    let deleted = registered(&a, "u", HOUR).await;
    let revoked = registered(&a, "u", HOUR).await;
    let sentinel = registered(&a, "v", 3 * HOUR).await;
    for (id, user) in [(deleted, "u"), (revoked, "u"), (sentinel, "v")] {
        assert!(b.validate(id, user, SystemTime::now()).await.unwrap());
    }
    // b's connections hear nothing from now on; its listener reconnects after a heartbeat.
    proxy.blackhole_existing();
    assert!(a.revoke_id(revoked).await.unwrap());
    let now = SystemTime::now();
    assert_eq!(a.delete_expired(now + 2 * HOUR).await.unwrap(), 2);
    assert!(a.revoke_id(sentinel).await.unwrap());
    let start = Instant::now();
    wait_until("the sentinel's eviction", Duration::from_secs(20), || {
        b.validate_cached(sentinel, "v", SystemTime::now()) != Some(true)
    })
    .await;
    let answers = [deleted, revoked].map(|id| b.validate_cached(id, "u", SystemTime::now()));
    println!(
        "cut off during a cleanup 2 h ahead: caught up after {:?}; cached answers for the \
         deleted and the revoked session: {answers:?}",
        start.elapsed()
    );
    assert_eq!(answers, [None, None], "a session missed by the catch-up");
}

/// Polls `pg_locks` (bounded) until a backend running a statement on `schema` waits for a
/// lock: the statement under test has reached the row or table another connection holds (other
/// tests, on schemas of their own, may be waiting at the same time).
async fn until_someone_waits(admin: &tokio_postgres::Client, schema: &str) {
    let start = Instant::now();
    loop {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE NOT l.granted AND strpos(a.query, $1) > 0",
                &[&format!("{schema}.")],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing waited for the held lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `revoke_all` must not lose a session whose row another transaction updated while the batch
/// ran (an application's own `UPDATE` of a column, which takes no writers' lock): the row has
/// moved, and an update that finds its rows by their place in the heap skips it silently
/// (the second review's finding: 2 of 3 revoked, the third still valid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_does_not_lose_a_row_updated_under_it() {
    let Some(url) = pg_support::url("moved_row") else {
        return;
    };
    let schema = Schema::new(&url, "pf_moved_row");
    let s = schema.name.clone();
    let reg = Arc::new(schema.open());
    let ids = [
        registered(&reg, "u1", HOUR).await,
        registered(&reg, "u2", HOUR).await,
        registered(&reg, "u3", HOUR).await,
    ];
    let other = pg_support::connect(&url).await;
    other
        .batch_execute(&format!(
            "BEGIN; UPDATE {s}.sessions SET user_agent = 'renamed' WHERE id = '\\x{}'",
            hex(ids[1])
        ))
        .await
        .unwrap();
    let all = {
        let reg = reg.clone();
        tokio::spawn(async move { reg.revoke_all(None).await })
    };
    let admin = pg_support::connect(&url).await;
    until_someone_waits(&admin, &s).await;
    other.batch_execute("COMMIT").await.unwrap();
    let revoked = all.await.unwrap().unwrap();
    let active: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM {s}.sessions WHERE revoked_at IS NULL"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let fresh = schema.open(); // an empty cache: the table's answer
    let alive = fresh
        .validate(ids[1], "u2", SystemTime::now())
        .await
        .unwrap();
    println!("revoke_all revoked {revoked}; {active} left active; the moved row valid: {alive}");
    assert_eq!((revoked, active, alive), (3, 0, false));
}

/// A time far in the future (past what the driver converts without overflow) is the same to
/// the registry as "every session", and does not stop the registry (the second review's
/// finding: the registry's thread panicked in the driver, and every later call said stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_in_the_far_future_neither_panics_nor_stops_the_registry() {
    let Some(url) = pg_support::url("far_future") else {
        return;
    };
    let schema = Schema::new(&url, "pf_far_future");
    let reg = schema.open();
    let id = registered(&reg, "u", HOUR).await;
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 45);
    assert_eq!(reg.revoke_user_signed_in_before("u", far).await.unwrap(), 1);
    let later = registered(&reg, "u", HOUR).await;
    assert_eq!(reg.revoke_all(Some(far)).await.unwrap(), 1);
    let now = SystemTime::now();
    reg.register(NewSession::new(SessionId::generate(), "v", now, far))
        .await
        .unwrap();
    assert!(!reg.validate(id, "u", now).await.unwrap());
    assert!(!reg.validate(later, "u", now).await.unwrap());
    assert_eq!(reg.list_for_user("v", far).await.unwrap().len(), 0);
    assert!(
        reg.revoke_id(SessionId::generate()).await.is_ok(),
        "still running"
    );
}

/// With a cap of one session per user, a rotation and a sign-in of the same user in one batch
/// end as on SQLite and as in the batch's order: the sign-in, which came last, is the session
/// kept (the second review's finding: pipelined, the rotation's cap ran after the sign-in and
/// kept the rotated-in session, signing the newest sign-in out at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_keeps_the_last_sign_in_of_a_batch() {
    let Some(url) = pg_support::url("cap_batch") else {
        return;
    };
    let schema = Schema::new(&url, "pf_cap_batch");
    let s = schema.name.clone();
    let reg = Arc::new(schema.builder().max_sessions_per_user(1).open().unwrap());
    let b = registered(&reg, "alice", HOUR).await;
    // Holds the writers' lock, so that the next batch waits with a sign-in of bob's in it, and
    // the two calls below queue behind it into one batch.
    let holder = pg_support::connect(&url).await;
    holder
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    let bob = {
        let reg = reg.clone();
        tokio::spawn(async move { registered(&reg, "bob", HOUR).await })
    };
    let admin = pg_support::connect(&url).await;
    until_someone_waits(&admin, &s).await;
    let now = SystemTime::now();
    let (a, c) = (SessionId::generate(), SessionId::generate());
    let rotated = reg.rotate("alice", b, NewSession::new(c, "alice", now, now + HOUR));
    let signed_in = reg.register(NewSession::new(a, "alice", now, now + HOUR));
    holder.batch_execute("COMMIT").await.unwrap();
    bob.await.unwrap();
    assert!(rotated.await.unwrap());
    signed_in.await.unwrap();
    let fresh = schema.open(); // an empty cache: the table's answer
    let valid = |id| {
        let fresh = &fresh;
        async move {
            fresh
                .validate(id, "alice", SystemTime::now())
                .await
                .unwrap()
        }
    };
    let (a, c, b) = (valid(a).await, valid(c).await, valid(b).await);
    println!("last sign-in {a}, rotated-in {c}, rotated-out {b}");
    assert_eq!((a, c, b), (true, false, false));
}

/// How many lock requests on `schema.write_lock` wait.
async fn write_lock_waiters(admin: &tokio_postgres::Client, schema: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::text::regclass",
            &[&format!("{schema}.write_lock")],
        )
        .await
        .unwrap()
        .get(0)
}

/// Polls (bounded) until exactly `n` lock requests on the writers' lock wait.
async fn until_write_lock_waiters(admin: &tokio_postgres::Client, schema: &str, n: i64) {
    let start = Instant::now();
    while write_lock_waiters(admin, schema).await != n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never {n} waiting for the writers' lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A connection of its own that asks for the writers' lock in a transaction; the task ends,
/// handing the connection back, once the lock is granted.
async fn lock_when_free(
    url: &str,
    schema: &str,
) -> tokio::task::JoinHandle<tokio_postgres::Client> {
    let client = pg_support::connect(url).await;
    let sql = format!("BEGIN; LOCK TABLE {schema}.write_lock IN EXCLUSIVE MODE");
    tokio::spawn(async move {
        client.batch_execute(&sql).await.unwrap();
        client
    })
}

/// An operation retried alone after its batch failed, and given up on by the host (its
/// operation timeout), must not leave the writer's connection inside its transaction: the
/// caller is told it failed, so the next batch on that connection must not commit it. Before
/// the batch went out in one flight, `tokio_postgres::Transaction` sent a ROLLBACK when the
/// dropped transaction went (and `Client::transaction` guards its BEGIN the same way); now the
/// BEGIN goes out as a plain statement and a future dropped between it and the COMMIT sends
/// neither COMMIT nor ROLLBACK. The retry loop in `commit()` goes on with the same connection
/// (only a failed batch reconnects), so the next batch's BEGIN only warns and its COMMIT commits
/// the abandoned operation too; until then the connection sits idle in its transaction holding
/// the writers' lock, and every host's writes wait.
///
/// Staged with the writers' lock handed from connection to connection (PostgreSQL grants it in
/// the order it was asked for), so that the batch [sign-in with a taken id, forget_user] fails
/// and its second operation, retried alone, waits for the lock; a row lock then holds its
/// DELETE until the host gives up. Two margins of time, both of seconds: the lock wait (6 s)
/// must stay under the server's lock timeout (12 s), and must exceed the 1 s by which the
/// host's own bound (operation timeout + 1 s) outlasts the server's; else the server ends the
/// statement before the host gives up. Each margin is 5 s or more, for a loaded machine.
/// Review of d6b4fe8 (branch review/flight); the writer now closes a connection whose
/// transaction's end it did not see (`Writer::in_doubt`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_given_up_on_is_not_committed_by_the_next_batch() {
    let Some(url) = pg_support::url("leftover") else {
        return;
    };
    const TIMEOUT: Duration = Duration::from_secs(12);
    let schema = Schema::new(&url, "pf_leftover");
    let s = schema.name.clone();
    let b = schema.builder().operation_timeout(TIMEOUT).open().unwrap();
    registered(&b, "x", HOUR).await;
    let taken = registered(&b, "d", HOUR).await;
    let admin = pg_support::connect(&url).await;
    let x_rows = format!("SELECT count(*) FROM {s}.sessions WHERE user_id = 'x'");
    // Holds the row of x's session, so that a DELETE of it waits.
    let row = pg_support::connect(&url).await;
    row.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM {s}.sessions WHERE user_id = 'x' FOR UPDATE"
    ))
    .await
    .unwrap();

    // The writer waits for the lock with one operation; two more queue behind it: one batch.
    let l1 = lock_when_free(&url, &s).await.await.unwrap();
    let blocker = b.revoke_id(SessionId::generate());
    until_write_lock_waiters(&admin, &s, 1).await;
    let now = SystemTime::now();
    let signed_in = b.register(NewSession::new(taken, "d", now, now + HOUR));
    let forgot = b.forget_user("x");
    // Hand the lock on: each holder's successor asks while the writer waits, so it is next.
    let l2 = lock_when_free(&url, &s).await;
    until_write_lock_waiters(&admin, &s, 2).await;
    l1.batch_execute("COMMIT").await.unwrap();
    assert!(!blocker.await.unwrap());
    let l2 = l2.await.unwrap();
    until_write_lock_waiters(&admin, &s, 1).await; // the batch [sign-in, forget_user]
    let l3 = lock_when_free(&url, &s).await;
    until_write_lock_waiters(&admin, &s, 2).await;
    l2.batch_execute("COMMIT").await.unwrap(); // the batch fails on the taken id, rolls back
    let l3 = l3.await.unwrap();
    until_write_lock_waiters(&admin, &s, 1).await; // the sign-in alone
    let l4 = lock_when_free(&url, &s).await;
    until_write_lock_waiters(&admin, &s, 2).await;
    l3.batch_execute("COMMIT").await.unwrap(); // the sign-in alone fails again
    let l4 = l4.await.unwrap();
    until_write_lock_waiters(&admin, &s, 1).await; // forget_user alone: its bound runs
    tokio::time::sleep(TIMEOUT / 2).await;
    l4.batch_execute("COMMIT").await.unwrap(); // its DELETE now waits for `row`

    let forgot = forgot.await;
    println!("forget_user, given up on: {forgot:?}");
    assert!(
        matches!(forgot, Err(RegistryError::Unreachable { .. })),
        "{forgot:?}"
    );
    assert!(matches!(
        signed_in.await,
        Err(RegistryError::DuplicateId(_))
    ));
    // Given up on, the writer cancels what its connection still runs: the writers' lock is free
    // again while `row` still holds the row the abandoned DELETE waits for. (Without the cancel,
    // the DELETE kept the lock until the server's own lock timeout ended it, 5 s later.)
    let probe = pg_support::connect(&url).await;
    probe
        .batch_execute(&format!(
            "SET lock_timeout = '4s'; BEGIN; LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE"
        ))
        .await
        .expect("the abandoned transaction still holds the writers' lock");
    probe.batch_execute("ROLLBACK").await.unwrap();
    row.batch_execute("ROLLBACK").await.unwrap(); // the abandoned DELETE runs now, if alive
    let state: Vec<String> = admin
        .query(
            "SELECT coalesce(state, '') FROM pg_stat_activity WHERE strpos(query, $1) > 0",
            &[&format!("DELETE FROM {s}.sessions WHERE user_id")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    println!("the writer's connection after forget_user failed: {state:?}");
    // A later sign-in on the same host.
    let later = registered(&b, "f", HOUR).await;
    assert!(b.validate(later, "f", SystemTime::now()).await.unwrap());
    let left: i64 = admin.query_one(&x_rows, &[]).await.unwrap().get(0);
    println!("x's sessions left after forget_user failed and a later sign-in: {left}");
    assert_eq!(
        left, 1,
        "forget_user was reported failed (Unreachable), yet a later batch committed it"
    );
}

/// A renewal the host gave up on (its operation timeout) and reported failed must not commit
/// afterwards: after a failed `Session::renew` the response is a 503 without a cookie, so the
/// browser keeps the old id, and if the rotation committed anyway that id is revoked and the
/// user is signed out. With the transaction driven step by step, a batch given up on before
/// its COMMIT went out was rolled back (the dropped `tokio_postgres::Transaction` sent
/// ROLLBACK): only a timeout during the COMMIT's own round trip left the outcome open. With the
/// batch in one flight as first written, the COMMIT was on the wire from the start, so any batch
/// of pipelined operations the host gave up on after the server granted its lock committed;
/// now the COMMIT goes out only once every answer is in.
///
/// The rotation waits for the writers' lock (6 s, under the server's 12 s lock timeout) and then
/// for a row lock until the host gives up (12 s + 1 s after it started); the same two margins
/// as the test above. Review of d6b4fe8 (branch review/flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_reported_failed_does_not_commit_afterwards() {
    let Some(url) = pg_support::url("renew_given_up") else {
        return;
    };
    const TIMEOUT: Duration = Duration::from_secs(12);
    let schema = Schema::new(&url, "pf_renew_given_up");
    let s = schema.name.clone();
    let b = schema.builder().operation_timeout(TIMEOUT).open().unwrap();
    let old = registered(&b, "u", HOUR).await;
    let admin = pg_support::connect(&url).await;
    let row = pg_support::connect(&url).await;
    row.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM {s}.sessions WHERE id = '\\x{}' FOR UPDATE",
        hex(old)
    ))
    .await
    .unwrap();
    let l1 = lock_when_free(&url, &s).await.await.unwrap();
    let now = SystemTime::now();
    let new = SessionId::generate();
    let renewed = b.rotate("u", old, NewSession::new(new, "u", now, now + HOUR));
    until_write_lock_waiters(&admin, &s, 1).await; // the rotation's bound runs
    tokio::time::sleep(TIMEOUT / 2).await;
    l1.batch_execute("COMMIT").await.unwrap(); // its UPDATE now waits for `row`
    let renewed = renewed.await;
    println!("rotate, given up on: {renewed:?}");
    assert!(
        matches!(renewed, Err(RegistryError::Unreachable { .. })),
        "{renewed:?}"
    );
    row.batch_execute("ROLLBACK").await.unwrap(); // the rotation runs now
                                                  // Whatever the abandoned transaction does, it has done once the writers' lock is free.
    let probe = lock_when_free(&url, &s).await.await.unwrap();
    probe.batch_execute("ROLLBACK").await.unwrap();
    let fresh = schema.open(); // an empty cache: the table's answer
    let (old_valid, new_valid) = (
        fresh.validate(old, "u", SystemTime::now()).await.unwrap(),
        fresh.validate(new, "u", SystemTime::now()).await.unwrap(),
    );
    println!("after the failed renewal: old id valid {old_valid}, new id valid {new_valid}");
    assert_eq!(
        (old_valid, new_valid),
        (true, false),
        "the renewal was reported failed, yet it committed: the old id, which the browser \
         keeps, is revoked"
    );
}

/// A batch that meets a held writers' lock fails with `Busy` for every operation in it, those
/// sent in the same flight as the lock (pipelined) and those that run alone after them, not
/// with the "current transaction is aborted" the later statements answer; and the connection
/// is usable at once afterwards. Review of d6b4fe8 (branch review/flight): passes on main.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_a_batch_that_meets_a_held_lock_is_told_busy() {
    let Some(url) = pg_support::url("busy_kinds") else {
        return;
    };
    let schema = Schema::new(&url, "pf_busy_kinds");
    let s = schema.name.clone();
    let b = schema
        .builder()
        .operation_timeout(Duration::from_millis(500))
        .open()
        .unwrap();
    let x = registered(&b, "x", HOUR).await;
    let admin = pg_support::connect(&url).await;
    let holder = lock_when_free(&url, &s).await.await.unwrap();
    let blocker = b.revoke_id(SessionId::generate());
    until_write_lock_waiters(&admin, &s, 1).await;
    // Queued behind the waiting batch: the next batch mixes pipelined and lone operations.
    let now = SystemTime::now();
    let revoked = b.revoke_id(x);
    let forgot = b.forget_user("x");
    let signed_in = b.register(NewSession::new(SessionId::generate(), "y", now, now + HOUR));
    let first = blocker.await;
    let results = [
        revoked.await.map(|_| ()),
        forgot.await.map(|_| ()),
        signed_in.await.map(|_| ()),
    ];
    println!("the waiting batch: {first:?}; the next: {results:?}");
    assert!(matches!(first, Err(RegistryError::Busy)), "{first:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(RegistryError::Busy))),
        "{results:?}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(b.revoke_id(x).await.unwrap(), "usable at once");
}

/// `forget_user` deletes a user's rows, active and revoked, under the writers' lock, so every
/// host's writes wait for it: it must find them through the user's indexes, not read the whole
/// table. Version 4 split the index by user in two partial ones (`revoked_at IS NULL`, `IS NOT
/// NULL`), and `WHERE user_id = $1` alone implies neither predicate, so the planner can use
/// neither: its DELETE is a sequential scan of `sessions` (23.7 ms at 200,000 rows measured
/// here; 0.16 ms with `AND (revoked_at IS NULL OR revoked_at IS NOT NULL)`, a bitmap OR of
/// the two indexes). The statement is the writer's own, read from `pg_stat_activity` while a
/// row lock holds it; its plan is asked for as PostgreSQL plans it (a custom plan: the driver
/// prepares a text statement and runs it once) and as a generic one. Review of 71e08c4
/// (branch review/doubt): fails on main.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_user_finds_the_users_rows_by_index() {
    let Some(url) = pg_support::url("forget_plan") else {
        return;
    };
    let schema = Schema::new(&url, "pf_forget_plan");
    let s = schema.name.clone();
    let b = Arc::new(schema.open());
    let x = registered(&b, "x", HOUR).await;
    let revoked = registered(&b, "x", HOUR).await;
    assert!(b.revoke_id(revoked).await.unwrap());
    let admin = pg_support::connect(&url).await;
    // Other users' sessions, half of them revoked, as a registry in use holds.
    admin
        .batch_execute(&format!(
            "INSERT INTO {s}.sessions (id, user_id, created_at, expires_at, last_seen_at, \
             revoked_at) SELECT decode(md5(g::text), 'hex'), 'user' || (g % 5000), now(), \
             now() + interval '1 day', now(), CASE WHEN g % 2 = 0 THEN now() END \
             FROM generate_series(1, 50000) g; ANALYZE {s}.sessions"
        ))
        .await
        .unwrap();
    let row = pg_support::connect(&url).await;
    row.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM {s}.sessions WHERE id = '\\x{}' FOR UPDATE",
        hex(x)
    ))
    .await
    .unwrap();
    let forgot = {
        let b = b.clone();
        tokio::spawn(async move { b.forget_user("x").await })
    };
    // The writer's DELETE, waiting for the row lock.
    let start = Instant::now();
    let sql: String = loop {
        let waiting = admin
            .query_opt(
                "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND strpos(query, $1) > 0",
                &[&format!("DELETE FROM {s}.sessions")],
            )
            .await
            .unwrap();
        if let Some(waiting) = waiting {
            break waiting.get(0);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "forget_user's DELETE never waited for the row lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut plans = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        admin
            .batch_execute(&format!(
                "DEALLOCATE ALL; SET plan_cache_mode = {mode}; PREPARE forget(text) AS {sql}"
            ))
            .await
            .unwrap();
        let plan: Vec<String> = admin
            .query("EXPLAIN EXECUTE forget('x')", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        plans.push((mode, plan.join("\n")));
    }
    row.batch_execute("ROLLBACK").await.unwrap();
    let forgotten = forgot.await.unwrap();
    println!("forget_user: {forgotten:?}");
    assert!(forgotten.is_ok(), "{forgotten:?}");
    let left: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM {s}.sessions WHERE user_id = 'x'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "x's rows, active and revoked, are gone");
    for (mode, plan) in &plans {
        println!("forget_user's DELETE ({mode}):\n{sql}\n{plan}");
    }
    for (mode, plan) in &plans {
        assert!(
            !plan.contains("Seq Scan"),
            "forget_user reads the whole table under the writers' lock ({mode}):\n{plan}"
        );
    }
}
