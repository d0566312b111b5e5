//! Bounded multi-process load on loopback (issue 6): many browsers against the real demo binary
//! while a second process (`examples/revoke_all`) keeps signing users out of the same database.
//!
//! 32 tasks, each one browser (its own cookie jar and keep-alive connection), half signed in as
//! alice and half as bob, run for [`LOAD_FOR`] a random mix of reads (`/api/me` 50%, `/` 30%,
//! `/sessions` 17.8%), "sign out my other devices" (0.2%) and logout (2%, followed by one replay
//! of the old cookie), signing in again whenever they find themselves signed out. Meanwhile the
//! `revoke_all` binary runs over and over (every [`REVOKE_EVERY`], alternating users), each run a
//! separate OS process on the same database.
//!
//! The invariant, checked afterwards from timestamps taken in this process: no request that
//! **started** after a revocation had **completed** (plus, for the other process, the registry's
//! propagation bound) was served as signed in for a session that revocation covered. A
//! revocation covers the sessions of its user whose login had completed before the revocation
//! started (a login racing with it may or may not be covered, so it is not counted):
//! - `revoke_all` (other process): completed when the process exited; bound = the registry's
//!   poll interval as the demo configures it (the default,
//!   `SqliteRegistryBuilder::DEFAULT_POLL_INTERVAL`, 20 ms) + a 100 ms safety margin for
//!   scheduling on a loaded 2-core machine;
//! - "revoke others" and logout (the demo's own process): completed when the response arrived;
//!   bound = 0 (the registry evicts its cache before the call returns).
//!
//! Also asserted: no 5xx, no transport error. Requests/s and latency are printed
//! (`cargo test --release --test load -- --nocapture`).
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
#[cfg(feature = "postgres")]
mod pg_support;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demo_support::{csrf_in, revoke_all, Demo, COOKIE_NAME};
use http::header::SET_COOKIE;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sealed_sessions::registry::SqliteRegistryBuilder;
use support::build_request;
use tokio::net::TcpStream;

const CLIENTS: usize = 32;
const LOAD_FOR: Duration = Duration::from_secs(4);
const USERS: [(&str, &str); 2] = [("alice", "correct-horse"), ("bob", "battery-staple")];
/// Pause between two runs of the `revoke_all` process.
const REVOKE_EVERY: Duration = Duration::from_millis(300);
/// Added to the propagation bound for revocations made by the other process.
const MARGIN: Duration = Duration::from_millis(100);

/// Who revoked, and what.
#[derive(Debug, Clone)]
enum Scope {
    /// `revoke_all` in another process: every session of the user.
    External,
    /// "Sign out my other devices": every session of the user but this one.
    Others { except: String },
    /// Logout: this session.
    One { id: String },
}

#[derive(Debug, Clone)]
struct Revocation {
    user: &'static str,
    scope: Scope,
    started: Instant,
    completed: Instant,
}

/// A request answered as signed in with this session.
#[derive(Debug)]
struct SignedIn {
    id: String,
    user: &'static str,
    started: Instant,
    what: &'static str,
}

#[derive(Default)]
struct Log {
    /// Session id -> (user, when its login response arrived).
    sessions: HashMap<String, (&'static str, Instant)>,
    revocations: Vec<Revocation>,
    signed_in: Vec<SignedIn>,
    latencies: Vec<Duration>,
    /// GETs only (the Argon2 of a login is in its POST).
    read_latencies: Vec<Duration>,
    login_latencies: Vec<Duration>,
    statuses: BTreeMap<u16, u64>,
    /// Each 5xx answer: the request and what the page said.
    server_errors: Vec<String>,
    transport_errors: Vec<String>,
    /// Answers that do not fit the demo's contract (e.g. `/api/me` naming another session).
    surprises: Vec<String>,
    /// Form posts refused with 403 because the session was revoked between page and post.
    stale_forms: u64,
    logins: u64,
}

struct Reply {
    status: StatusCode,
    location: String,
    body: String,
}

/// One browser: a keep-alive HTTP/1.1 connection and a one-cookie jar.
struct Browser {
    addr: SocketAddr,
    conn: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
    log: Arc<Mutex<Log>>,
}

impl Browser {
    async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Sends one request with the jar's cookie (or `cookie_override`), records its latency and
    /// status, and keeps the cookie the response sets. `None` on a transport error (recorded).
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        cookie_override: Option<&str>,
    ) -> Option<(Instant, Reply)> {
        let started = Instant::now();
        let result = self.exchange(method, path, form, cookie_override).await;
        let took = started.elapsed();
        let mut log = self.log.lock().unwrap();
        match result {
            Ok(reply) => {
                log.latencies.push(took);
                if method == "GET" {
                    log.read_latencies.push(took);
                }
                *log.statuses.entry(reply.status.as_u16()).or_default() += 1;
                if reply.status.is_server_error() {
                    // What the page said, for the assertion's message.
                    let said = reply.body.split("<p>").nth(1).unwrap_or(&reply.body);
                    let said: String = said.chars().take(120).collect();
                    log.server_errors
                        .push(format!("{method} {path}: {} {said}", reply.status));
                }
                Some((started, reply))
            }
            Err(e) => {
                log.transport_errors.push(format!("{method} {path}: {e}"));
                self.conn = None;
                None
            }
        }
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        cookie_override: Option<&str>,
    ) -> Result<Reply, String> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = Some(Self::connect(self.addr).await?);
        }
        let sender = self.conn.as_mut().unwrap();
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let cookie = match cookie_override {
            Some(c) => Some(c.to_owned()),
            None => self.cookie.clone(),
        };
        let cookies: Vec<&[u8]> = cookie.iter().map(|c| c.as_bytes()).collect();
        let req = build_request(method, path, &cookies, &[("user-agent", "load-test")], form);
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if cookie_override.is_none() {
            for line in res.headers().get_all(SET_COOKIE) {
                let Ok(c) = cookie::Cookie::parse(line.to_str().unwrap_or("").to_owned()) else {
                    continue;
                };
                if c.name() != COOKIE_NAME {
                    continue;
                }
                let removed = c.value().is_empty()
                    || c.max_age()
                        .is_some_and(|age| age.is_zero() || age.is_negative());
                self.cookie = (!removed).then(|| format!("{}={}", c.name(), c.value()));
            }
        }
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    fn surprise(&self, what: String) {
        self.log.lock().unwrap().surprises.push(what);
    }

    fn signed_in(&self, id: &str, user: &'static str, started: Instant, what: &'static str) {
        self.log.lock().unwrap().signed_in.push(SignedIn {
            id: id.to_owned(),
            user,
            started,
            what,
        });
    }

    /// `/api/me`: `Ok(Some(id))` signed in, `Ok(None)` signed out, `Err(())` anything else.
    async fn me(&mut self, user: &'static str, cookie: Option<&str>) -> Result<Option<String>, ()> {
        let (started, r) = self.send("GET", "/api/me", None, cookie).await.ok_or(())?;
        match r.status {
            StatusCode::OK => {
                let v: serde_json::Value = serde_json::from_str(&r.body).map_err(|_| ())?;
                let id = v["session_id"].as_str().ok_or(())?.to_owned();
                if v["user"] != user {
                    self.surprise(format!("/api/me for {user} answered {}", r.body));
                }
                self.signed_in(&id, user, started, "/api/me");
                Ok(Some(id))
            }
            StatusCode::UNAUTHORIZED => Ok(None),
            _ => Err(()),
        }
    }

    /// Signs in and learns the session id; `None` if anything failed (already recorded).
    async fn login(&mut self, user: &'static str, password: &str) -> Option<String> {
        let (_, page) = self.send("GET", "/", None, None).await?;
        let csrf = csrf_in(&page.body)?;
        let form = [
            ("username", user),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ];
        let (started, r) = self.send("POST", "/login", Some(&form), None).await?;
        let done = Instant::now();
        if r.status != StatusCode::SEE_OTHER || r.location != "/" {
            if r.status.is_success() || r.status.is_redirection() {
                self.surprise(format!("login answered {} to {}", r.status, r.location));
            }
            return None;
        }
        {
            let mut log = self.log.lock().unwrap();
            log.logins += 1;
            log.login_latencies.push(done - started);
        }
        let id = match self.me(user, None).await {
            Ok(Some(id)) => id,
            // Revoked by the other process between login and this read: fine, sign in again.
            _ => return None,
        };
        self.log
            .lock()
            .unwrap()
            .sessions
            .insert(id.clone(), (user, done));
        Some(id)
    }
}

/// A small xorshift generator: the test needs no crate for its coin flips.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn browse(addr: SocketAddr, n: usize, log: Arc<Mutex<Log>>, until: Instant) {
    let (user, password) = USERS[n % USERS.len()];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut b = Browser {
        addr,
        conn: None,
        cookie: None,
        log,
    };
    let mut session: Option<String> = None;
    while Instant::now() < until {
        let Some(id) = session.clone() else {
            b.cookie = None;
            session = b.login(user, password).await;
            continue;
        };
        // Per mille. Every revocation of a user signs ~16 browsers out, and each signs in
        // again (Argon2): revocations are kept rare so that logins stay a small share.
        let roll = rng.below(1000);
        if roll < 500 {
            match b.me(user, None).await {
                Ok(Some(seen)) if seen == id => {}
                Ok(Some(seen)) => {
                    b.surprise(format!("/api/me named {seen}, the jar holds {id}"));
                    session = None;
                }
                Ok(None) => session = None,
                Err(()) => session = None,
            }
        } else if roll < 800 {
            let Some((started, r)) = b.send("GET", "/", None, None).await else {
                continue;
            };
            if r.status != StatusCode::OK {
                session = None;
            } else if r.body.contains(&format!("<h1>Signed in as {user}</h1>")) {
                b.signed_in(&id, user, started, "/");
            } else {
                session = None;
            }
        } else if roll < 978 {
            let Some((started, r)) = b.send("GET", "/sessions", None, None).await else {
                continue;
            };
            if r.status == StatusCode::OK && r.body.contains("<h1>Your devices</h1>") {
                b.signed_in(&id, user, started, "/sessions");
            } else {
                session = None;
            }
        } else {
            // A form: "sign out my other devices" or logout, with the token from the home page.
            let Some((_, page)) = b.send("GET", "/", None, None).await else {
                continue;
            };
            let Some(csrf) = csrf_in(&page.body)
                .filter(|_| page.body.contains(&format!("<h1>Signed in as {user}</h1>")))
            else {
                session = None;
                continue;
            };
            let form = [("csrf_token", csrf.as_str())];
            if roll < 980 {
                let path = "/sessions/revoke-others";
                let Some((started, r)) = b.send("POST", path, Some(&form), None).await else {
                    continue;
                };
                let completed = Instant::now();
                if r.status == StatusCode::SEE_OTHER && r.location == "/sessions" {
                    b.signed_in(&id, user, started, "revoke-others");
                    b.log.lock().unwrap().revocations.push(Revocation {
                        user,
                        scope: Scope::Others { except: id.clone() },
                        started,
                        completed,
                    });
                } else {
                    if r.status == StatusCode::FORBIDDEN {
                        b.log.lock().unwrap().stale_forms += 1;
                    }
                    session = None;
                }
            } else {
                let old = b.cookie.clone();
                let Some((started, r)) = b.send("POST", "/logout", Some(&form), None).await else {
                    continue;
                };
                let completed = Instant::now();
                session = None;
                if r.status == StatusCode::SEE_OTHER && r.location == "/" {
                    b.log.lock().unwrap().revocations.push(Revocation {
                        user,
                        scope: Scope::One { id: id.clone() },
                        started,
                        completed,
                    });
                    // A copy of the cookie kept elsewhere must be refused now.
                    if let Some(old) = old {
                        let _ = b.me(user, Some(&old)).await;
                    }
                } else if r.status == StatusCode::FORBIDDEN {
                    b.log.lock().unwrap().stale_forms += 1;
                }
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One load at a time: each keeps the machine's cores busy with Argon2 sign-ins, and two at
/// once on a 2-core runner pushed sign-ins past the demo's 2-second wait for a hashing slot
/// (a designed 503, "Too many sign-ins"), which says nothing about sessions.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn many_browsers_and_a_revoking_process() {
    let _alone = one_at_a_time();
    let demo = Demo::start();
    // The demo opens its registry with the defaults; its own revocations reach its own cache
    // before they return.
    let bound = SqliteRegistryBuilder::DEFAULT_POLL_INTERVAL + MARGIN;
    load(
        &[demo.addr],
        demo.db().into_os_string(),
        bound,
        Duration::ZERO,
        "one demo on SQLite",
    );
}

/// The same load spread over two demo processes on one PostgreSQL registry, as two hosts behind
/// a load balancer (each browser keeps to one host, half of each user's on either), with
/// `revoke_all` as a third process. A revocation made on one host reaches the other by
/// notification; the guarantee is the staleness bound.
#[cfg(feature = "postgres")]
#[test]
fn two_demos_on_postgresql_and_a_revoking_process() {
    let Some(url) = pg_support::url("load_two_demos") else {
        return;
    };
    let _alone = one_at_a_time();
    let schema = pg_support::Schema::new(&url, "load_two_demos");
    let db = format!("{url}?schema={}", schema.name);
    let first_dir = tempfile::tempdir().unwrap();
    let key = first_dir.path().join("session.key");
    let a = Demo::start_on(first_dir, &db, &key);
    let b = Demo::start_on(tempfile::tempdir().unwrap(), &db, &key);
    let bound =
        sealed_sessions::registry::PostgresRegistryBuilder::DEFAULT_STALENESS_BOUND + MARGIN;
    load(
        &[a.addr, b.addr],
        db.into(),
        bound,
        bound,
        "two demos on PostgreSQL",
    );
}

/// Runs the load against `hosts` while `revoke_all` runs on `db`, then checks the invariant:
/// `external` is the bound for the other process's revocations, `internal` for the demos' own.
fn load(
    hosts: &[SocketAddr],
    db: std::ffi::OsString,
    bound: Duration,
    internal: Duration,
    what: &str,
) {
    // Build (if needed) before the clock starts.
    let _ = demo_support::example_binary("revoke_all");

    let log = Arc::new(Mutex::new(Log::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let begun = Instant::now();
    let until = begun + LOAD_FOR;
    let external_runs = rt.block_on(async {
        let browsers: Vec<_> = (0..CLIENTS)
            // Browsers of one user alternate between the hosts (n / 2: users alternate by n).
            .map(|n| tokio::spawn(browse(hosts[(n / 2) % hosts.len()], n, log.clone(), until)))
            .collect();
        let revoker = {
            let log = log.clone();
            tokio::spawn(async move {
                let mut runs = Vec::new();
                let mut i = 0;
                // Let every browser sign in once first.
                tokio::time::sleep(REVOKE_EVERY * 2).await;
                while Instant::now() < until {
                    let user = USERS[i % USERS.len()].0;
                    i += 1;
                    let db = db.clone();
                    let started = Instant::now();
                    let out = tokio::task::spawn_blocking(move || revoke_all(&db, user))
                        .await
                        .expect("revoke_all ran");
                    let completed = Instant::now();
                    runs.push((user, out.trim().to_owned(), completed - started));
                    log.lock().unwrap().revocations.push(Revocation {
                        user,
                        scope: Scope::External,
                        started,
                        completed,
                    });
                    tokio::time::sleep(REVOKE_EVERY).await;
                }
                runs
            })
        };
        for b in browsers {
            b.await.expect("a browser task panicked");
        }
        revoker.await.expect("the revoker task panicked")
    });
    let elapsed = begun.elapsed();
    drop(rt);

    let mut log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();

    // The invariant. For each session, the earliest instant after which it must be refused.
    // With what set it, for the report of a violation.
    let mut deadline: HashMap<&str, (Instant, String)> = HashMap::new();
    for (id, (user, logged_in)) in &log.sessions {
        for r in &log.revocations {
            let covers = r.user == *user
                && *logged_in < r.started
                && match &r.scope {
                    Scope::External => true,
                    Scope::Others { except } => except != id,
                    Scope::One { id: one } => one == id,
                };
            if covers {
                let by = match r.scope {
                    Scope::External => r.completed + bound,
                    _ => r.completed + internal,
                };
                let why = format!(
                    "{:?} revocation of {}, sent at {}, answered at {} (the session signed in at {})",
                    r.scope,
                    r.user,
                    ms(r.started - begun),
                    ms(r.completed - begun),
                    ms(*logged_in - begun)
                );
                let d = deadline.entry(id.as_str()).or_insert((by, why.clone()));
                if by < d.0 {
                    *d = (by, why);
                }
            }
        }
    }
    let mut violations = Vec::new();
    let (mut checked, mut late_but_allowed) = (0u64, Duration::ZERO);
    for s in &log.signed_in {
        checked += 1;
        let Some((user, _)) = log.sessions.get(&s.id) else {
            // Only `/api/me` right after login can name a session not yet in `sessions`
            // (when the login raced a revocation and was not kept); such a session is
            // covered by no revocation here.
            continue;
        };
        assert_eq!(*user, s.user);
        if let Some((d, why)) = deadline.get(s.id.as_str()) {
            if s.started >= *d {
                violations.push(format!(
                    "{} as {} session {} started {} after it had to be refused (at {}), by the {why}",
                    s.what,
                    s.user,
                    s.id,
                    ms(s.started - *d),
                    ms(s.started - begun),
                ));
            }
        }
    }
    // How late, after `revoke_all` had exited, a covered session was still served (within the
    // bound): the observed cross-process propagation.
    for s in &log.signed_in {
        let Some((user, logged_in)) = log.sessions.get(&s.id) else {
            continue;
        };
        for r in &log.revocations {
            if matches!(r.scope, Scope::External)
                && r.user == *user
                && *logged_in < r.started
                && s.started > r.completed
            {
                late_but_allowed = late_but_allowed.max(s.started - r.completed);
            }
        }
    }

    log.latencies.sort();
    log.read_latencies.sort();
    log.login_latencies.sort();
    let requests = log.latencies.len() as u64;
    let server_errors: u64 = log
        .statuses
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    let count = |f: fn(&Scope) -> bool| log.revocations.iter().filter(|r| f(&r.scope)).count();
    let external_ms: Vec<Duration> = external_runs.iter().map(|r| r.2).collect();
    let revoked_by_external: u64 = external_runs
        .iter()
        .filter_map(|r| r.1.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    println!(
        "load ({what}): {CLIENTS} browsers for {:.1} s, demo + revoke_all processes on loopback",
        elapsed.as_secs_f64()
    );
    println!(
        "  requests: {requests} ({:.0}/s), latency p50 {} p99 {} max {}",
        requests as f64 / elapsed.as_secs_f64(),
        ms(percentile(&log.latencies, 0.50)),
        ms(percentile(&log.latencies, 0.99)),
        ms(percentile(&log.latencies, 1.0)),
    );
    println!(
        "  GETs: {}, latency p50 {} p99 {}",
        log.read_latencies.len(),
        ms(percentile(&log.read_latencies, 0.50)),
        ms(percentile(&log.read_latencies, 0.99)),
    );
    println!(
        "  logins: {} ({:.1}% of requests; p50 {} p99 {})",
        log.logins,
        100.0 * log.logins as f64 / requests.max(1) as f64,
        ms(percentile(&log.login_latencies, 0.50)),
        ms(percentile(&log.login_latencies, 0.99)),
    );
    println!("  statuses: {:?}", log.statuses);
    println!(
        "  revocations: {} revoke_all processes ({} sessions; each run {}..{}), {} revoke-others, {} logouts",
        count(|s| matches!(s, Scope::External)),
        revoked_by_external,
        ms(external_ms.iter().copied().min().unwrap_or_default()),
        ms(external_ms.iter().copied().max().unwrap_or_default()),
        count(|s| matches!(s, Scope::Others { .. })),
        count(|s| matches!(s, Scope::One { .. })),
    );
    println!(
        "  signed-in answers checked: {checked}; sessions with a revocation deadline: {}; \
         violations: {}; latest signed-in answer after a revoke_all exited: {} (bound {})",
        deadline.len(),
        violations.len(),
        ms(late_but_allowed),
        ms(bound),
    );
    println!(
        "  5xx: {server_errors}; transport errors: {}; forms refused as stale (403): {}; surprises: {}",
        log.transport_errors.len(),
        log.stale_forms,
        log.surprises.len()
    );

    assert!(
        violations.is_empty(),
        "revoked sessions served: {violations:#?}"
    );
    assert_eq!(
        server_errors, 0,
        "5xx answers: {:?}\n{:#?}",
        log.statuses, log.server_errors
    );
    assert!(
        log.transport_errors.is_empty(),
        "transport errors: {:#?}",
        log.transport_errors
    );
    assert!(log.surprises.is_empty(), "{:#?}", log.surprises);
    // The run must have tested something: revocations that covered sessions, and answers after.
    assert!(revoked_by_external > 0, "revoke_all never found a session");
    assert!(
        !deadline.is_empty(),
        "no session was covered by a revocation"
    );
}
