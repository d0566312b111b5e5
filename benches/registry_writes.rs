//! The registry's write throughput, with 1, 2 and 4 hosts on one database: sign-ins
//! (`register`), sign-outs (`register` then `revoke` of that id: a pair), and "sign out
//! everywhere" (`revoke_user` of a user with 5 sessions), each with 64 concurrent callers per
//! host, on SQLite (one file, `synchronous = FULL`) and PostgreSQL. It prints the table of
//! issue 26; `docs/performance.md` keeps the figures.
//!
//! ```text
//! SEALED_SESSIONS_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench registry_writes
//! ```
//!
//! Without the URL only SQLite runs. A host is a registry instance with its own writer (and, for
//! PostgreSQL, its own connections and listener), as a process of its own would have; here they
//! share one process, so they also share its two cores with the database. PostgreSQL's
//! `fsync` and `synchronous_commit` are printed: a durable figure needs both on.
//! `REGISTRY_WRITES_SECONDS` sets each cell's length (default 3). Arguments that are not flags
//! pick rows: `cargo bench --bench registry_writes -- postgres revoke_user` runs the rows whose
//! backend or operation contains one of them (`sqlite`, `postgres`; `register`, `pairs`,
//! `revoke_user`, `revoke_user_only`).
//!
//! "Sign out everywhere" is measured two ways. `revoke_user`: each caller signs a user in 5
//! times, then revokes them, again and again; the rate is revocations per second of the callers'
//! time spent in `revoke_user`, which shares its batches with other callers' sign-ins.
//! `revoke_user_only`: 10,240 users are signed in first (untimed), spread over the callers, then
//! every caller revokes its users one after another; the rate is revocations per second of wall
//! time, from the first to the last: the throughput of `revoke_user` alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

#[path = "common/pg.rs"]
mod pg;

const CALLERS_PER_HOST: usize = 64;
const SESSIONS_PER_USER: usize = 5;
const HOST_COUNTS: [usize; 3] = [1, 2, 4];

#[derive(Clone, Copy, Debug)]
enum Workload {
    Register,
    RegisterRevoke,
    RevokeUser,
    RevokeUserOnly,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::Register,
        Workload::RegisterRevoke,
        Workload::RevokeUser,
        Workload::RevokeUserOnly,
    ];

    /// The name an argument picks it by.
    fn key(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::RegisterRevoke => "pairs",
            Workload::RevokeUser => "revoke_user",
            Workload::RevokeUserOnly => "revoke_user_only",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Register => "register (sign-ins/s)",
            Workload::RegisterRevoke => "register + revoke (pairs/s)",
            Workload::RevokeUser => "revoke_user, 5 sessions each, among sign-ins (/s)",
            Workload::RevokeUserOnly => "revoke_user, 5 sessions each, alone (/s)",
        }
    }
}

fn session(user: &str) -> NewSession {
    let now = SystemTime::now();
    NewSession::new(
        SessionId::generate(),
        user,
        now,
        now + Duration::from_secs(3600),
    )
}

/// One caller's loop: `workload` on `host` until `stop`, counting completed operations.
async fn caller(
    host: Arc<dyn Registry>,
    workload: Workload,
    name: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) {
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let user = format!("{name}-{round}");
        round += 1;
        match workload {
            Workload::Register => host.register(session(&user)).await.expect("register"),
            Workload::RegisterRevoke => {
                let new = session(&user);
                let id = new.id;
                host.register(new).await.expect("register");
                assert!(host.revoke(&user, id).await.expect("revoke"));
            }
            Workload::RevokeUserOnly => unreachable!("measured by `revoke_users_only`"),
            Workload::RevokeUser => {
                // The sessions are signed in untimed, then the revocation is timed alone.
                let pending: Vec<_> = (0..SESSIONS_PER_USER)
                    .map(|_| host.register(session(&user)))
                    .collect();
                for registered in pending {
                    registered.await.expect("register");
                }
                let started = Instant::now();
                let revoked = host.revoke_user(&user, None).await.expect("revoke_user");
                assert_eq!(revoked, SESSIONS_PER_USER as u64);
                TIMED_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Time spent inside `revoke_user` calls, summed over callers (sign-ins before it are not
/// counted).
static TIMED_NANOS: AtomicU64 = AtomicU64::new(0);

/// Operations a second for `workload` on `hosts`, run for `seconds`.
fn measure(
    rt: &tokio::runtime::Runtime,
    hosts: &[Arc<dyn Registry>],
    workload: Workload,
    seconds: f64,
) -> f64 {
    if let Workload::RevokeUserOnly = workload {
        // The same 10,240 revocations whatever the number of hosts (2 a caller in a quick run).
        let users = if seconds < 1.0 { 2 } else { 160 / hosts.len() };
        return revoke_users_only(rt, hosts, users);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    TIMED_NANOS.store(0, Ordering::Relaxed);
    let run = Instant::now();
    let mut tasks = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        for c in 0..CALLERS_PER_HOST {
            let name = format!("{workload:?}-{}-h{h}-c{c}", run.elapsed().as_nanos());
            tasks.push(rt.spawn(caller(
                Arc::clone(host),
                workload,
                name,
                Arc::clone(&stop),
                Arc::clone(&done),
            )));
        }
    }
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for task in tasks {
            task.await.expect("a caller panicked");
        }
    });
    let elapsed = run.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed) as f64;
    match workload {
        // Callers spend part of their time signing users in; the rate is of revocations a
        // second of time spent revoking, per concurrent caller, times the callers.
        Workload::RevokeUser => {
            let busy = TIMED_NANOS.load(Ordering::Relaxed) as f64 / 1e9;
            let callers = hosts.len() * CALLERS_PER_HOST;
            count / (busy / callers as f64)
        }
        _ => count / elapsed,
    }
}

/// `revoke_user` alone: `users` users a caller, each signed in `SESSIONS_PER_USER` times
/// first, untimed; then every caller revokes its users one after another. Revocations a second
/// of wall time, from the first call to the last answer.
fn revoke_users_only(
    rt: &tokio::runtime::Runtime,
    hosts: &[Arc<dyn Registry>],
    users: usize,
) -> f64 {
    let run = Instant::now().elapsed().as_nanos();
    let names = |h: usize, c: usize| -> Vec<String> {
        (0..users)
            .map(|u| format!("only-{run}-h{h}-c{c}-u{u}"))
            .collect()
    };
    rt.block_on(async {
        let mut signing_in = Vec::new();
        for (h, host) in hosts.iter().enumerate() {
            for c in 0..CALLERS_PER_HOST {
                let host = Arc::clone(host);
                let users = names(h, c);
                signing_in.push(tokio::spawn(async move {
                    for user in &users {
                        for _ in 0..SESSIONS_PER_USER {
                            host.register(session(user)).await.expect("register");
                        }
                    }
                }));
            }
        }
        for task in signing_in {
            task.await.expect("a sign-in panicked");
        }
    });
    let started = Instant::now();
    let revoking: Vec<_> = hosts
        .iter()
        .enumerate()
        .flat_map(|(h, host)| (0..CALLERS_PER_HOST).map(move |c| (h, c, Arc::clone(host))))
        .map(|(h, c, host)| {
            let users = names(h, c);
            rt.spawn(async move {
                for user in &users {
                    let revoked = host.revoke_user(user, None).await.expect("revoke_user");
                    assert_eq!(revoked, SESSIONS_PER_USER as u64);
                }
            })
        })
        .collect();
    rt.block_on(async {
        for task in revoking {
            task.await.expect("a caller panicked");
        }
    });
    (hosts.len() * CALLERS_PER_HOST * users) as f64 / started.elapsed().as_secs_f64()
}

/// `hosts` registries on one fresh database, and what closes them and removes it.
type Hosts = (Vec<Arc<dyn Registry>>, Box<dyn FnOnce()>);

fn row(
    backend: &str,
    open: &dyn Fn(usize) -> Hosts,
    seconds: f64,
    picked: &dyn Fn(&str, Workload) -> bool,
) {
    if !Workload::ALL.into_iter().any(|w| picked(backend, w)) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("\n{backend}: {CALLERS_PER_HOST} callers a host, {seconds} s a cell");
    println!(
        "| operation | {} |",
        HOST_COUNTS
            .map(|n| format!("{n} host{}", if n == 1 { "" } else { "s" }))
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(HOST_COUNTS.len()));
    for workload in Workload::ALL.into_iter().filter(|w| picked(backend, *w)) {
        let mut cells = Vec::new();
        for hosts in HOST_COUNTS {
            let (registries, close) = open(hosts);
            cells.push(format!(
                "{:.0}",
                measure(&rt, &registries, workload, seconds)
            ));
            drop(registries);
            close();
        }
        println!("| {} | {} |", workload.name(), cells.join(" | "));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: one short
    // round then, so that the bench is checked to run.
    let seconds: f64 = std::env::var("REGISTRY_WRITES_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            3.0
        } else {
            0.2
        });
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backends = ["sqlite", "postgresql", "postgres"];
    let (for_backend, for_workload): (Vec<&String>, Vec<&String>) =
        filters.iter().partition(|f| backends.contains(&f.as_str()));
    let picked = |backend: &str, workload: Workload| {
        let backend = backend.to_lowercase();
        (for_backend.is_empty() || for_backend.iter().any(|f| backend.starts_with(f.as_str())))
            && (for_workload.is_empty() || for_workload.iter().any(|f| *f == workload.key()))
    };

    row(
        "SQLite",
        &|hosts| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("writes.db");
            let registries = (0..hosts)
                .map(|_| Arc::new(SqliteRegistry::open(&path).unwrap()) as Arc<dyn Registry>)
                .collect();
            (registries, Box::new(move || drop(dir)))
        },
        seconds,
        &picked,
    );

    match std::env::var("SEALED_SESSIONS_POSTGRES_URL") {
        Ok(url) => {
            print_durability(&url);
            row(
                "PostgreSQL",
                &|hosts| {
                    let first = pg::FreshSchema::open(&url, "writes_");
                    let mut registries: Vec<Arc<dyn Registry>> = vec![first.registry.clone()];
                    let others: Vec<_> =
                        (1..hosts).map(|_| Arc::new(first.another_host())).collect();
                    registries.extend(others.iter().map(|r| Arc::clone(r) as Arc<dyn Registry>));
                    (
                        registries,
                        Box::new(move || {
                            for other in others {
                                other.stop();
                            }
                            first.close();
                        }),
                    )
                },
                seconds,
                &picked,
            );
        }
        Err(_) => eprintln!("PostgreSQL skipped: set SEALED_SESSIONS_POSTGRES_URL to measure it"),
    }
}

/// Prints the server's durability settings, which the figures depend on.
fn print_durability(url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        for setting in ["fsync", "synchronous_commit"] {
            let row = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .expect("SHOW");
            println!("PostgreSQL {setting} = {}", row.get::<_, String>(0));
        }
    });
}
