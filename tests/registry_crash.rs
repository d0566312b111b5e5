//! Crash consistency: a process doing logins and revocations is SIGKILLed at random points, many
//! times, on one database file. After each kill a fresh registry must find every revocation
//! whose call had returned still in force, every registration that had returned and was never
//! part of a revocation still valid, and `PRAGMA integrity_check` must say `ok`.
//!
//! The child is this test binary re-invoked with `SEALED_SESSIONS_CRASH_DB` set (as
//! `registry_sync.rs` does for its second process). It prints a line only *after* a call
//! returned (`registered`, `revoked`) or *before* it starts (`revoking`), so the parent knows a
//! lower bound of what must be durable and an upper bound of what may have been revoked.
//!
//! Reproducible: the run's seed is printed, and `SEALED_SESSIONS_CRASH_SEED=<seed>` replays the
//! same operations and kill delays (the exact kill point still depends on scheduling).
#![cfg(all(feature = "sqlite", unix))]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

const ITERATIONS: u64 = 30;
const DEFAULT_SEED: u64 = 0x5eed_0006;
const DAY: Duration = Duration::from_secs(86_400);
/// Concurrent tasks in the child, so that revocations also share group commits.
const TASKS: u64 = 3;

/// splitmix64: small, seedable, good enough to pick operations and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One line to the parent, written and flushed at once (the parent may kill us right after).
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ids(list: &[SessionId]) -> String {
    list.iter()
        .map(SessionId::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One child task: for a stream of fresh users, registers a few sessions, then revokes one, all
/// but one, or all of them. Runs until the process is killed.
async fn child_task(reg: &SqliteRegistry, iteration: u64, task: u64, mut rng: Rng) {
    for n in 0.. {
        let user = format!("u{iteration}-{task}-{n}");
        let now = SystemTime::now();
        let mut live = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let id = SessionId::generate();
            reg.register(NewSession::new(id, &user, now, now + DAY))
                .await
                .unwrap();
            say(format!("registered {id}"));
            live.push(id);
        }
        match rng.below(3) {
            0 => {
                let id = live[rng.below(live.len() as u64) as usize];
                say(format!("revoking {id}"));
                assert!(reg.revoke(&user, id).await.unwrap());
                say(format!("revoked {id}"));
            }
            1 => {
                let keep = live.swap_remove(rng.below(live.len() as u64) as usize);
                say(format!("revoking {}", ids(&live)));
                let count = reg.revoke_user(&user, Some(keep)).await.unwrap();
                assert_eq!(count, live.len() as u64);
                say(format!("revoked {}", ids(&live)));
            }
            _ => {
                say(format!("revoking {}", ids(&live)));
                let count = reg.revoke_user(&user, None).await.unwrap();
                assert_eq!(count, live.len() as u64);
                say(format!("revoked {}", ids(&live)));
            }
        }
    }
}

/// The child: runs only when re-invoked by `revocations_survive_sigkill`.
#[test]
fn crash_child() {
    let (Ok(path), Ok(iteration), Ok(seed)) = (
        std::env::var("SEALED_SESSIONS_CRASH_DB"),
        std::env::var("SEALED_SESSIONS_CRASH_ITERATION"),
        std::env::var("SEALED_SESSIONS_CRASH_CHILD_SEED"),
    ) else {
        return;
    };
    let (iteration, seed): (u64, u64) = (iteration.parse().unwrap(), seed.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let reg = SqliteRegistry::builder(&path)
        .poll_interval(Duration::ZERO)
        .cleanup_interval(Duration::ZERO)
        .open()
        .unwrap();
    say("ready".into());
    rt.block_on(async {
        let reg = &reg;
        let tasks = (0..TASKS).map(|task| {
            let rng = Rng(seed ^ task.wrapping_mul(0x1000_0001));
            child_task(reg, iteration, task, rng)
        });
        futures_join_all(tasks).await;
    });
}

/// Polls the futures together on this task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future<Output = ()>>(tasks: impl Iterator<Item = F>) {
    let mut tasks: Vec<_> = tasks.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        tasks.retain_mut(|t| t.as_mut().poll(cx).is_pending());
        if tasks.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// What the children reported, over all iterations.
#[derive(Default)]
struct Reported {
    registered: Vec<SessionId>,
    revoking: HashSet<SessionId>,
    revoked: Vec<SessionId>,
}

impl Reported {
    /// Takes the complete lines of one child's output; a line cut by the kill is ignored.
    fn take(&mut self, output: &str) {
        for line in output.lines() {
            let mut words = line.split(' ');
            let kind = words.next();
            let parsed: Result<Vec<SessionId>, _> = words.map(str::parse).collect();
            let Ok(parsed) = parsed else { continue };
            match kind {
                Some("registered") => self.registered.extend(parsed),
                Some("revoking") => self.revoking.extend(parsed),
                Some("revoked") => self.revoked.extend(parsed),
                _ => {}
            }
        }
    }
}

/// Runs one child and SIGKILLs it after `delay` (counted from its "ready" line when
/// `after_ready`, else from the spawn). Returns everything it printed.
fn run_and_kill(
    path: &Path,
    iteration: u64,
    seed: u64,
    delay: Duration,
    after_ready: bool,
) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("SEALED_SESSIONS_CRASH_DB", path)
        .env("SEALED_SESSIONS_CRASH_ITERATION", iteration.to_string())
        .env("SEALED_SESSIONS_CRASH_CHILD_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.ends_with(" ready\n") || line == "ready\n" {
                let _ = ready_tx.send(());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    if after_ready {
        // Generous: only a broken child takes this long to open the registry.
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child never opened the registry");
    }
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let output = reader.join().unwrap();
    assert!(
        !status.success(),
        "the child ended by itself before the kill: {output}"
    );
    output
}

#[test]
fn revocations_survive_sigkill() {
    let seed = std::env::var("SEALED_SESSIONS_CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("SEALED_SESSIONS_CRASH_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
    eprintln!("crash test seed {seed} (replay with SEALED_SESSIONS_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut reported = Reported::default();
    let mut killed_before_ready = 0;

    for iteration in 0..ITERATIONS {
        // Every fifth kill lands early, possibly while the child opens or migrates the file.
        let early = iteration % 5 == 0;
        let delay = Duration::from_millis(if early { rng.below(80) } else { rng.below(250) });
        let output = run_and_kill(&path, iteration, rng.next(), delay, !early);
        if !output.contains("ready\n") {
            killed_before_ready += 1;
        }
        reported.take(&output);

        if !path.exists() {
            continue; // killed before the file was created
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok", "iteration {iteration}, seed {seed}");

        // Opens (and migrates, if the kill came before the schema was committed).
        let reg = SqliteRegistry::builder(&path)
            .poll_interval(Duration::ZERO)
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap();
        let owners = owners(&conn);
        drop(conn);
        // A row that is gone is refused by validate as well (allow-list); any name will do.
        let user = |id: &SessionId| owners.get(id).cloned().unwrap_or_default();
        let now = SystemTime::now();
        rt.block_on(async {
            for id in &reported.revoked {
                assert!(
                    !reg.validate(*id, &user(id), now).await.unwrap(),
                    "revocation of {id} lost (iteration {iteration}, seed {seed})"
                );
            }
            for id in &reported.registered {
                if !reported.revoking.contains(id) {
                    assert!(
                        reg.validate(*id, &user(id), now).await.unwrap(),
                        "registration of {id} lost (iteration {iteration}, seed {seed})"
                    );
                }
            }
        });
    }
    eprintln!(
        "{ITERATIONS} kills ({killed_before_ready} before the registry was open): \
         {} revocations and {} registrations checked after every kill",
        reported.revoked.len(),
        reported.registered.len()
    );
    assert!(
        reported.revoked.len() > ITERATIONS as usize,
        "the children got to revoke"
    );
}

/// Who each stored session belongs to (the child makes the names up).
fn owners(conn: &rusqlite::Connection) -> HashMap<SessionId, String> {
    let mut stmt = conn.prepare("SELECT id, user_id FROM sessions").unwrap();
    let rows = stmt
        .query_map([], |row| {
            let id: [u8; 16] = row.get(0)?;
            Ok((SessionId::from_bytes(id), row.get(1)?))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}
