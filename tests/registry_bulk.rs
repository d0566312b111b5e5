//! Ending many sessions at once (ASVS 5.0 7.4.5 and 7.4.2): every user's (`revoke_all`), those
//! signed in before a time (of everyone, or of one user), and forgetting a user (`forget_user`),
//! on SQLite and PostgreSQL. Each reaches another registry on the same database (another
//! process, another host) that had the sessions cached as valid, and a forgotten user's rows,
//! with their addresses and user agents, are gone.
#![cfg(feature = "sqlite")]

#[cfg(feature = "postgres")]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The log's rows, and those with an empty id (`revoke_all`'s, one per batch).
const COUNT_LOG: &str = "SELECT count(*), \
    coalesce(sum(CASE WHEN length(id) = 0 THEN 1 ELSE 0 END), 0) FROM revocations";

/// What a row holds of a person: its user agent and its address.
type PersonalData = (Option<String>, Option<String>);

/// Reads the [`PersonalData`] of every row of a user from the table itself.
type RowsOf = Box<dyn Fn(&str) -> Vec<PersonalData>>;

/// Two registries on one database, and direct SQL on it.
struct Hosts {
    name: &'static str,
    a: Arc<dyn Registry>,
    b: Arc<dyn Registry>,
    /// The user agent and address of every row of a user, read from the table itself.
    rows_of: RowsOf,
    /// The number of rows in the revocation log, and of those with an empty id.
    log_rows: Box<dyn Fn() -> (i64, i64)>,
    /// Writes this many active sessions (of users `filler0` ...) straight into the table.
    fill: Box<dyn Fn(usize)>,
    /// The number of active sessions, counted in the table.
    active: Box<dyn Fn() -> i64>,
    _storage: Box<dyn std::any::Any>,
}

fn hosts(test: &str) -> Vec<Hosts> {
    #[cfg(not(feature = "postgres"))]
    let _ = test;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let open = |p: &std::path::Path| -> Arc<dyn Registry> {
        Arc::new(
            SqliteRegistry::builder(p)
                .cleanup_interval(Duration::ZERO)
                .open()
                .unwrap(),
        )
    };
    let (p1, p2, p3, p4) = (path.clone(), path.clone(), path.clone(), path.clone());
    #[allow(unused_mut)] // without the postgres feature
    let mut all = vec![Hosts {
        name: "sqlite",
        a: open(&path),
        b: open(&path),
        rows_of: Box::new(move |user| {
            let conn = rusqlite::Connection::open(&p1).unwrap();
            let mut stmt = conn
                .prepare("SELECT user_agent, ip FROM sessions WHERE user_id = ?1")
                .unwrap();
            let rows = stmt
                .query_map([user], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap();
            rows.map(Result::unwrap).collect()
        }),
        log_rows: Box::new(move || {
            let conn = rusqlite::Connection::open(&p2).unwrap();
            conn.query_row(COUNT_LOG, [], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
        }),
        fill: Box::new(move |n| {
            let mut conn = rusqlite::Connection::open(&p3).unwrap();
            let tx = conn.transaction().unwrap();
            let now = ms(SystemTime::now());
            for i in 0..n {
                tx.execute(
                    "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at) \
                     VALUES (?1, ?2, ?3, ?4, ?3)",
                    rusqlite::params![
                        SessionId::generate().as_bytes(),
                        format!("filler{i}"),
                        now - 60_000,
                        now + 3_600_000
                    ],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }),
        active: Box::new(move || {
            let conn = rusqlite::Connection::open(&p4).unwrap();
            conn.query_row(
                "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1",
                [ms(SystemTime::now())],
                |row| row.get(0),
            )
            .unwrap()
        }),
        _storage: Box::new(dir),
    }];
    #[cfg(feature = "postgres")]
    if let Some(url) = pg_support::url(test) {
        let schema = pg_support::Schema::new(&url, test);
        let s = schema.name.clone();
        let (u1, u2, s2) = (url.clone(), url.clone(), s.clone());
        let (u3, u4, s3, s4) = (url.clone(), url.clone(), s.clone(), s.clone());
        all.push(Hosts {
            name: "postgres",
            a: Arc::new(schema.open()),
            b: Arc::new(schema.open()),
            rows_of: Box::new(move |user| {
                let sql =
                    format!("SELECT user_agent, host(ip) FROM {s}.sessions WHERE user_id = $1");
                pg_query(&u1, sql, Some(user.to_owned()))
                    .iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect()
            }),
            log_rows: Box::new(move || {
                let sql = COUNT_LOG.replace("revocations", &format!("{s2}.revocations"));
                let row = &pg_query(&u2, sql, None)[0];
                (row.get(0), row.get(1))
            }),
            fill: Box::new(move |n| {
                let sql = format!(
                    "INSERT INTO {s3}.sessions (id, user_id, created_at, expires_at, last_seen_at) \
                     SELECT decode(md5(random()::text || i), 'hex'), 'filler' || i, \
                     now() - interval '1 minute', now() + interval '1 hour', now() \
                     FROM generate_series(1, {n}) AS i"
                );
                pg_query(&u3, sql, None);
            }),
            active: Box::new(move || {
                let sql = format!(
                    "SELECT count(*) FROM {s4}.sessions WHERE revoked_at IS NULL \
                     AND expires_at > now()"
                );
                pg_query(&u4, sql, None)[0].get(0)
            }),
            _storage: Box::new(schema),
        });
    }
    all
}

/// A time as the SQLite registry stores it: milliseconds since the epoch.
fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs one query on a connection of its own, on a thread of its own (so that it works from
/// inside the test's runtime).
#[cfg(feature = "postgres")]
fn pg_query(url: &str, sql: String, param: Option<String>) -> Vec<tokio_postgres::Row> {
    pg_support::blocking(url, move |client| async move {
        match &param {
            Some(p) => client.query(&sql, &[p]).await.unwrap(),
            None => client.query(&sql, &[]).await.unwrap(),
        }
    })
}

/// Registers a session of `user` signed in at `at`, with an address and a user agent.
async fn session(reg: &dyn Registry, user: &str, at: SystemTime) -> SessionId {
    let id = SessionId::generate();
    let s = NewSession::new(id, user, at, SystemTime::now() + HOUR)
        .user_agent(format!("Firefox/128 ({user})"))
        .ip("192.0.2.7".parse().unwrap());
    reg.register(s).await.unwrap();
    id
}

/// Validates each session on `host` until its cache vouches for it (bounded: the cache trusts
/// itself only once its revocation feed is confirmed fresh).
async fn cache_on(host: &dyn Registry, sessions: &[(SessionId, &str)]) {
    for &(id, user) in sessions {
        let started = Instant::now();
        loop {
            let now = SystemTime::now();
            assert!(
                host.validate(id, user, now).await.unwrap(),
                "{user} is valid"
            );
            if host.validate_cached(id, user, now) == Some(true) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never cached");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Waits (bounded) until `host` no longer vouches for any of `sessions` from memory, then checks
/// that it refuses each of them; returns how long the news took.
async fn refused_on(host: &dyn Registry, sessions: &[(SessionId, &str)]) -> Duration {
    let started = Instant::now();
    while sessions
        .iter()
        .any(|&(id, user)| host.validate_cached(id, user, SystemTime::now()) == Some(true))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other host went on vouching for revoked sessions"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    for &(id, user) in sessions {
        assert!(!host.validate(id, user, SystemTime::now()).await.unwrap());
    }
    took
}

async fn still_valid(host: &dyn Registry, sessions: &[(SessionId, &str)]) {
    for &(id, user) in sessions {
        assert!(
            host.validate(id, user, SystemTime::now()).await.unwrap(),
            "{user}'s later session survives"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_ends_every_session_on_every_host_with_one_log_row() {
    for h in hosts("bulk_all") {
        let now = SystemTime::now();
        let mut sessions = Vec::new();
        for (user, ago) in [
            ("alice", HOUR),
            ("alice", MINUTE),
            ("bob", MINUTE),
            ("carol", HOUR),
        ] {
            sessions.push((session(&*h.a, user, now - ago).await, user));
        }
        cache_on(&*h.b, &sessions).await;
        cache_on(&*h.a, &sessions).await;
        let logged = (h.log_rows)();

        assert_eq!(h.a.revoke_all(None).await.unwrap(), 4, "{}", h.name);
        for &(id, user) in &sessions {
            assert_ne!(
                h.a.validate_cached(id, user, SystemTime::now()),
                Some(true),
                "{}: the revoking host vouches for nothing once it returned",
                h.name
            );
        }
        let took = refused_on(&*h.b, &sessions).await;
        println!(
            "{}: another host refused every session {took:?} after revoke_all returned",
            h.name
        );
        let after = (h.log_rows)();
        assert_eq!(
            (after.0 - logged.0, after.1 - logged.1),
            (1, 1),
            "{}: one log row, not one per session",
            h.name
        );
        for user in ["alice", "bob", "carol"] {
            assert!(h
                .a
                .list_for_user(user, SystemTime::now())
                .await
                .unwrap()
                .is_empty());
        }
        assert_eq!(h.a.revoke_all(None).await.unwrap(), 0, "nothing left");
        // Signing in again works as before.
        let again = [(session(&*h.a, "alice", SystemTime::now()).await, "alice")];
        cache_on(&*h.b, &again).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_before_ends_earlier_sign_ins_only_of_everyone_or_of_one_user() {
    for h in hosts("bulk_before") {
        let now = SystemTime::now();
        let before = now - 30 * MINUTE;
        let mut old = Vec::new();
        let mut new = Vec::new();
        for user in ["alice", "bob"] {
            old.push((session(&*h.a, user, now - HOUR).await, user));
            new.push((session(&*h.a, user, now - MINUTE).await, user));
        }
        cache_on(&*h.b, &[old.clone(), new.clone()].concat()).await;

        assert_eq!(h.a.revoke_all(Some(before)).await.unwrap(), 2, "{}", h.name);
        let took = refused_on(&*h.b, &old).await;
        println!(
            "{}: revoke_all(signed in before) refused on another host after {took:?}",
            h.name
        );
        still_valid(&*h.b, &new).await;
        still_valid(&*h.a, &new).await;

        // One user's: alice's earlier sign-in ends, bob's and alice's later ones stay.
        let alice_old = [(session(&*h.a, "alice", now - HOUR).await, "alice")];
        let bob_old = [(session(&*h.a, "bob", now - HOUR).await, "bob")];
        cache_on(&*h.b, &[&alice_old[..], &bob_old, &new].concat()).await;
        let n =
            h.a.revoke_user_signed_in_before("alice", before)
                .await
                .unwrap();
        assert_eq!(n, 1, "{}", h.name);
        let took = refused_on(&*h.b, &alice_old).await;
        println!(
            "{}: revoke_user_signed_in_before refused on another host after {took:?}",
            h.name
        );
        still_valid(&*h.b, &[&bob_old[..], &new].concat()).await;
        assert_eq!(
            h.a.list_for_user("alice", SystemTime::now())
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_user_ends_and_deletes_their_sessions_everywhere() {
    for h in hosts("bulk_forget") {
        let now = SystemTime::now();
        let alice = [
            (session(&*h.a, "alice", now - HOUR).await, "alice"),
            (session(&*h.a, "alice", now - MINUTE).await, "alice"),
        ];
        let revoked = session(&*h.a, "alice", now - MINUTE).await;
        assert!(h.a.revoke("alice", revoked).await.unwrap());
        let bob = [(session(&*h.a, "bob", now - MINUTE).await, "bob")];
        cache_on(&*h.b, &[&alice[..], &bob].concat()).await;
        assert_eq!((h.rows_of)("alice").len(), 3);

        // Every row of alice's, revoked ones too: they hold her address and agent as well.
        assert_eq!(h.a.forget_user("alice").await.unwrap(), 3, "{}", h.name);
        let took = refused_on(&*h.b, &alice).await;
        println!(
            "{}: a forgotten user's sessions refused on another host after {took:?}",
            h.name
        );
        assert_eq!(
            (h.rows_of)("alice"),
            vec![],
            "{}: no row of alice's left",
            h.name
        );
        for &(id, user) in &alice {
            assert!(!h.a.validate(id, user, SystemTime::now()).await.unwrap());
        }
        assert!(h
            .a
            .list_for_user("alice", SystemTime::now())
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            (h.rows_of)("bob"),
            vec![(
                Some("Firefox/128 (bob)".to_owned()),
                Some("192.0.2.7".to_owned())
            )],
            "{}: nobody else's rows change",
            h.name
        );
        still_valid(&*h.b, &bob).await;
        assert_eq!(h.a.forget_user("alice").await.unwrap(), 0);
    }
}

/// Chains of renewals (each rotates the id, keeping the sign-in time) racing one revocation of
/// everyone: whichever commits first wins, so no chain outlives it. Half the trials revoke
/// everything, half "signed in before now", which a renewal must not escape either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_racing_revoke_all_leave_no_survivor() {
    const TRIALS: usize = 8;
    const CHAINS: usize = 8;
    const MAX_STEPS: usize = 60;
    for h in hosts("bulk_race") {
        let started = Instant::now();
        let (mut renewals, mut survivors) = (0, 0);
        for trial in 0..TRIALS {
            let signed_in = SystemTime::now() - MINUTE;
            let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut chains = Vec::new();
            for chain in 0..CHAINS {
                let user = format!("user{chain}");
                let mut id = session(&*h.a, &user, signed_in).await;
                let (reg, steps) = (h.a.clone(), steps.clone());
                chains.push(tokio::spawn(async move {
                    for _ in 0..MAX_STEPS {
                        let next = SessionId::generate();
                        let s = NewSession::new(next, &user, signed_in, SystemTime::now() + HOUR);
                        steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if !reg.rotate(&user, id, s).await.unwrap() {
                            break;
                        }
                        id = next;
                    }
                    (user, id)
                }));
            }
            while steps.load(std::sync::atomic::Ordering::SeqCst) < CHAINS * 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let before = (trial % 2 == 1).then(SystemTime::now);
            h.a.revoke_all(before).await.unwrap();
            for chain in chains {
                let (user, last) = chain.await.unwrap();
                if h.a.validate(last, &user, SystemTime::now()).await.unwrap() {
                    survivors += 1;
                }
                survivors +=
                    h.a.list_for_user(&user, SystemTime::now())
                        .await
                        .unwrap()
                        .len();
            }
            renewals += steps.load(std::sync::atomic::Ordering::SeqCst);
        }
        println!(
            "{}: {TRIALS} trials x {CHAINS} renewal chains racing revoke_all: {renewals} \
             renewals, {survivors} survivors, {:?}",
            h.name,
            started.elapsed()
        );
        assert_eq!(survivors, 0, "{}: a renewal outlived revoke_all", h.name);
    }
}

/// More sessions than one batch of `revoke_all` (50,000), with renewals racing it: the batches
/// go on from a cursor, and a renewal's new row may land behind it, so the last pass starts
/// from the start again. Nothing active is left, and the log holds one row per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_of_more_than_a_batch_leaves_nothing_active() {
    const FILLER: usize = 110_000;
    for h in hosts("bulk_batches") {
        (h.fill)(FILLER);
        let signed_in = SystemTime::now() - MINUTE;
        let mut chains = Vec::new();
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        for chain in 0..4 {
            let user = format!("user{chain}");
            let mut id = session(&*h.a, &user, signed_in).await;
            let (reg, running) = (h.a.clone(), running.clone());
            chains.push(tokio::spawn(async move {
                let mut renewals = 0;
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    let next = SessionId::generate();
                    let s = NewSession::new(next, &user, signed_in, SystemTime::now() + HOUR);
                    if !reg.rotate(&user, id, s).await.unwrap() {
                        break;
                    }
                    id = next;
                    renewals += 1;
                }
                (user, id, renewals)
            }));
        }
        let logged = (h.log_rows)();
        let started = Instant::now();
        let revoked = h.a.revoke_all(None).await.unwrap();
        let took = started.elapsed();
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut renewals = 0;
        for chain in chains {
            let (user, last, n) = chain.await.unwrap();
            renewals += n;
            assert!(!h.a.validate(last, &user, SystemTime::now()).await.unwrap());
        }
        let batches = (h.log_rows)().1 - logged.1;
        println!(
            "{}: revoke_all of {revoked} sessions ({renewals} renewals racing it) in {took:?}, \
             {batches} log rows",
            h.name
        );
        assert!(revoked >= FILLER as u64 + 4, "{}: {revoked}", h.name);
        assert_eq!(
            (h.active)(),
            0,
            "{}: an active session outlived revoke_all",
            h.name
        );
        assert!((3..=5).contains(&batches), "{}: {batches} log rows", h.name);
    }
}
