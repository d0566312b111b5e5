//! What an outsider (a role with nothing but LOGIN) can do with the registry's notification
//! channel (docs/registry.md, "Who can do what"): learn revoked ids by LISTEN; and by NOTIFY,
//! neither make a host forget its cache nor make it read the log once per notification.
//! Needs a server whose URL's role may create roles (`tests/pg_support`); skips otherwise.
#![cfg(feature = "postgres")]

mod pg_support;

use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry};
use sealed_sessions::SessionId;

use pg_support::{Role, Schema};

const HOUR: Duration = Duration::from_secs(3600);
/// Generous, for a loaded CI machine: a limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(20);

fn hex(id: SessionId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn cached(reg: &PostgresRegistry, user: &str) -> SessionId {
    let now = SystemTime::now();
    let id = SessionId::generate();
    reg.register(NewSession::new(id, user, now, now + HOUR))
        .await
        .unwrap();
    assert!(reg.validate(id, user, now).await.unwrap());
    id
}

async fn evicted(host: &PostgresRegistry, id: SessionId, user: &str) -> Duration {
    let start = Instant::now();
    while host.validate_cached(id, user, SystemTime::now()) == Some(true) {
        assert!(start.elapsed() < DEADLINE, "never evicted");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// An outsider's notifications are hints: `1:` (what a TRUNCATE's log row looks like), an
/// empty id, and a forged next sequence number make no host forget its cache; only the log
/// decides. What it can do: LISTEN and learn revoked ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_notifications_do_not_empty_the_cache() {
    let Some(url) = pg_support::url_for_roles("outsider_notify").await else {
        return;
    };
    let schema = Schema::new(&url, "outsider_notify");
    let s = &schema.name;
    let a = schema.open();
    // A long staleness bound, so that a slow machine cannot make the cache stop vouching.
    let b = schema
        .builder()
        .staleness_bound(Duration::from_secs(600))
        .open()
        .unwrap();
    let kept = cached(&a, "alice").await;
    assert!(b.validate(kept, "alice", SystemTime::now()).await.unwrap());
    let outsider = Role::new(&url, "outsider_n");
    let (o, mut heard) = pg_support::listening(&outsider.url).await;
    o.batch_execute(&format!("LISTEN {s}_revocations"))
        .await
        .unwrap();

    // What the outsider learns: the ids of revoked sessions.
    let learned = cached(&a, "alice").await;
    assert!(a.revoke("alice", learned).await.unwrap());
    let payload = tokio::time::timeout(DEADLINE, heard.recv())
        .await
        .unwrap()
        .unwrap();
    println!("the outsider heard {payload}");
    assert!(payload.contains(&hex(learned)));

    let next: i64 = pg_support::connect(&url)
        .await
        .query_one(&format!("SELECT max(seq) + 1 FROM {s}.revocations"), &[])
        .await
        .unwrap()
        .get(0);
    o.batch_execute(&format!(
        "NOTIFY {s}_revocations, '1:'; NOTIFY {s}_revocations, '{next}:'; \
         NOTIFY {s}_revocations, '{next}:{}';",
        hex(SessionId::generate())
    ))
    .await
    .unwrap();
    // After those: one revocation announced (evicted from its notification), one not (evicted
    // only by a read of the log, which follows the outsider's notifications).
    let announced = cached(&a, "bob").await;
    assert!(b
        .validate(announced, "bob", SystemTime::now())
        .await
        .unwrap());
    assert!(a.revoke("bob", announced).await.unwrap());
    evicted(&b, announced, "bob").await;
    assert_eq!(
        b.validate_cached(kept, "alice", SystemTime::now()),
        Some(true),
        "an outsider's notification emptied the cache"
    );
    let unannounced = cached(&a, "carol").await;
    assert!(b
        .validate(unannounced, "carol", SystemTime::now())
        .await
        .unwrap());
    schema.revoke_unannounced(unannounced);
    evicted(&b, unannounced, "carol").await;
    let before = b.round_trips();
    assert_eq!(
        b.validate_cached(kept, "alice", SystemTime::now()),
        Some(true),
        "a forged sequence number made the host forget its cache"
    );
    assert_eq!(b.round_trips(), before);
}

/// A burst of 4,000 `max:` notifications (each "read the log") costs a host a few reads of
/// the log, not one each: they are coalesced, with at most one read in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_notifications_costs_a_bounded_number_of_log_reads() {
    let Some(url) = pg_support::url_for_roles("notify_burst").await else {
        return;
    };
    const BURST: usize = 4_000;
    let schema = Schema::new(&url, "notify_burst");
    let s = &schema.name;
    // No heartbeat during the test: every read of the log counted below is a notification's.
    let host = schema
        .builder()
        .heartbeat(Duration::from_secs(3600))
        .staleness_bound(Duration::from_secs(7200))
        .open()
        .unwrap();
    let (first, second) = (cached(&host, "dan").await, cached(&host, "dan").await);
    let outsider = Role::new(&url, "outsider_b");
    let o = pg_support::connect(&outsider.url).await;
    let before = host.log_reads();
    let burst: String = (1..=BURST)
        .map(|i| format!("NOTIFY {s}_revocations, 'max:{i}';"))
        .collect();
    o.batch_execute(&format!("BEGIN; {burst} COMMIT;"))
        .await
        .unwrap();
    // Notifications are handled in the order they arrive: once an id named after the burst
    // is evicted, every notification of the burst has been handled.
    o.batch_execute(&format!("NOTIFY {s}_revocations, '0:{}'", hex(first)))
        .await
        .unwrap();
    let took = evicted(&host, first, "dan").await;
    let handled = host.log_reads() - before;
    // And any read still owed to the burst is done once a revocation that only a read of the
    // log can bring, hinted after it, is evicted.
    schema.revoke_unannounced(second);
    o.batch_execute(&format!("NOTIFY {s}_revocations, 'max:0'"))
        .await
        .unwrap();
    evicted(&host, second, "dan").await;
    let reads = host.log_reads() - before;
    println!(
        "{BURST} notifications asking for a read of the log: {handled} reads by the time they \
         were handled ({took:?}), {reads} with one more hint after them"
    );
    assert!(handled <= 6, "{handled} reads of the log for one burst");
    assert!(
        reads <= 8,
        "{reads} reads of the log for one burst and one hint"
    );
}

/// A forged notification that names a session's id before its revocation (its owner knows the
/// id) evicts it early, which is harmless; the session is then cached again by its next
/// request. When the real revocation comes, the read of the log must evict it again, however
/// the revocation was announced: before, the listener remembered the forged `seq:id` pairs and
/// skipped what the log read found under them, so a revocation announced as `max:` (more than
/// 150 rows, or none at all) left the session cached as valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_hint_does_not_keep_a_later_revocation_out_of_the_cache() {
    let Some(url) = pg_support::url_for_roles("forged_hint").await else {
        return;
    };
    let schema = Schema::new(&url, "forged_hint");
    let s = &schema.name;
    let a = schema.open();
    let b = schema
        .builder()
        .staleness_bound(Duration::from_secs(600))
        .open()
        .unwrap();
    let mallory = cached(&a, "mallory").await;
    let sentinel = cached(&a, "sentinel").await;
    assert!(b
        .validate(sentinel, "sentinel", SystemTime::now())
        .await
        .unwrap());
    let outsider = Role::new(&url, "outsider_f");
    let o = pg_support::connect(&outsider.url).await;
    let next: i64 = pg_support::connect(&url)
        .await
        .query_one(
            &format!("SELECT coalesce(max(seq), 0) + 1 FROM {s}.revocations"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Mallory's id under every sequence number her revocation can get.
    let forged: Vec<String> = (next..next + 150)
        .map(|n| format!("{n}:{}", hex(mallory)))
        .collect();
    o.batch_execute(&format!(
        "NOTIFY {s}_revocations, '{}'; NOTIFY {s}_revocations, '0:{}';",
        forged.join(","),
        hex(sentinel)
    ))
    .await
    .unwrap();
    // Notifications are handled in order: the sentinel's eviction follows the forged one's.
    evicted(&b, sentinel, "sentinel").await;
    assert!(b
        .validate(mallory, "mallory", SystemTime::now())
        .await
        .unwrap());
    assert_eq!(
        b.validate_cached(mallory, "mallory", SystemTime::now()),
        Some(true)
    );
    // The real revocation, logged and announced only as "read the log".
    schema.revoke_unannounced(mallory);
    o.batch_execute(&format!("NOTIFY {s}_revocations, 'max:0'"))
        .await
        .unwrap();
    let took = evicted(&b, mallory, "mallory").await;
    println!("the revoked session left the cache {took:?} after the hint");
}
