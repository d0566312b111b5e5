//! End-to-end throughput on loopback, bounded in time and requests, all cases in one run:
//!
//! ```text
//! cargo run --release --example loadgen -- --seconds 5
//! ```
//!
//! Cases, each the same read-only request of a signed-in session with ~200 bytes of data
//! (`GET /read` with its cookie; the handler reads one value), printed relative to the floor:
//! - `floor`: hyper + a layer that only inserts one `Arc` into the request's extensions (the
//!   least any middleware that hands a handler a value costs; `benches/common/floor.rs`);
//! - `bare`: hyper with the handler alone (the cookie is sent and ignored), for reference;
//! - `stateless`: hyper + `SessionLayer`, no registry;
//! - `registry-sqlite`: hyper + `SessionLayer` + `SqliteRegistry` (validated from its cache);
//! - `registry-postgres`: the same with `PostgresRegistry` (validated from its cache);
//! - `private-cookie-jar`: an axum handler with axum-extra's `PrivateCookieJar`;
//! - `tower-sessions-memory`, `-sqlite`, `-postgres`: hyper + tower-sessions 0.14 and its stores;
//! - `stateless-write`, `private-cookie-jar-write`, `tower-sessions-memory-write`: the write
//!   path, each request changing the session (`GET /write` adds one to a value): the same
//!   servers; the client keeps sending the cookie it signed in with, so every response
//!   re-seals (or stores) the same session, and sets a cookie;
//! - `actix-bare` and `actix-session-cookie`: actix-web alone and with actix-session's cookie
//!   store, a ratio of their own (a different server underneath).
//!
//! The first four run in this binary (`loadgen --serve MODE`); the others are served by
//! `benches/peers`'s `peer_server` (sqlx cannot share a build with rusqlite, and the heavy
//! peers stay out of this crate's dev-dependencies), built on first use with
//! `cargo build --release --manifest-path benches/peers/Cargo.toml`. The PostgreSQL cases need
//! `SEALED_SESSIONS_POSTGRES_URL` (skipped with a printed reason without it) and work in fresh
//! schemas, dropped when their server stops. `--cases a,b,...` runs only those.
//!
//! `--callgrind` also counts instructions per request under callgrind (`valgrind` must be
//! installed) for the cases `examples/hotpath.rs` and `peer_hotpath` have: the floor, the
//! sealed-sessions cases, `PrivateCookieJar` and tower-sessions' MemoryStore, in process.
//!
//! Method, for a 2-core machine: every server is a child process started under `taskset -c 0`
//! with a one-thread (current-thread) tokio runtime; the client pins itself to CPU 1 and runs
//! `--connections` keep-alive HTTP/1.1 connections on its own current-thread runtime, one
//! request in flight per connection (no pipelining, as browsers do). Each case is warmed up for
//! half a second, then loaded for `--seconds` or `--max-requests`, whichever comes first.
//! Besides requests/s and latency percentiles, the server's CPU time per request (from
//! `/proc/PID/stat`) and how busy the server was are printed, with what the scheduler says of
//! the server's threads (`/proc/PID/task/*/schedstat` and `status`): the CPU its threads other
//! than the main one used per request (a registry's feed and writer threads, tokio's blocking
//! pool), and its context switches per 1,000 requests. With `--rounds N` every case runs
//! N times, interleaved, and the best round counts (noise from other processes only slows a
//! round down).
//!
//! The client matters. `--client raw` (the default) writes the same pre-built request bytes on
//! each connection and parses responses with `httparse`: its work per request is little more
//! than two system calls, so the one server core runs out first and requests/s compare the
//! servers. `--client hyper` uses hyper's client, which costs about as much per request as the
//! server; the client's core then runs out first, and requests/s hide the servers' differences
//! (server CPU per request still shows them). Every response is checked either way: status 200
//! and no `Set-Cookie` on a read.
//!
//! `--work N` makes every handler, with or without sessions, also render N JSON records (about
//! 60 bytes each) as its response body, as an API endpoint would: the same per-request work
//! for every case, to see the sessions' cost beside a handler that does something (the default,
//! 0, answers `ok`).
//!
//! `loadgen --serve MODE [--work N]` is the server side of the cases this binary serves.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use tower::Layer;

use server::floor::FloorLayer;
use server::{ours, serve, stdin_closed, WORK};

#[path = "../benches/common/server.rs"]
mod server;

/// Every case, in the order of the table; see the module documentation.
const CASES: [&str; 14] = [
    "floor",
    "bare",
    "stateless",
    "registry-sqlite",
    "registry-postgres",
    "private-cookie-jar",
    "tower-sessions-memory",
    "tower-sessions-sqlite",
    "tower-sessions-postgres",
    "stateless-write",
    "private-cookie-jar-write",
    "tower-sessions-memory-write",
    "actix-bare",
    "actix-session-cookie",
];

/// The server a case loads: `CASE-write` loads `CASE`'s.
fn server_of(case: &str) -> &str {
    case.strip_suffix("-write").unwrap_or(case)
}

/// What a case requests: `/write` (the handler changes the session, so every response sets a
/// cookie, which the client does not send back: every request re-seals the same session) for
/// `CASE-write`, else `/read`.
fn path_of(case: &str) -> &'static str {
    if case.ends_with("-write") {
        "/write"
    } else {
        "/read"
    }
}

/// The cases `peer_server` serves (the others run in this binary).
fn served_by_peer(case: &str) -> bool {
    !matches!(
        server_of(case),
        "floor" | "bare" | "stateless" | "registry-sqlite"
    )
}

/// The cases without sessions: they send a cookie of the same size, which nothing reads.
fn sessionless(case: &str) -> bool {
    matches!(case, "floor" | "bare" | "actix-bare")
}

/// What a case's requests/s and CPU are compared with.
fn baseline(case: &str) -> &'static str {
    if case.starts_with("actix") {
        "actix-bare"
    } else {
        "floor"
    }
}

const POSTGRES_URL_VAR: &str = "SEALED_SESSIONS_POSTGRES_URL";

struct Options {
    seconds: f64,
    connections: usize,
    max_requests: i64,
    rounds: usize,
    peer: Option<String>,
    /// `--client raw` (default) or `--client hyper`; see the module documentation.
    raw_client: bool,
    /// JSON records each handler renders (`--work`); see the module documentation.
    work: usize,
    /// `--cases a,b`: only these.
    only: Option<Vec<String>>,
    /// `--callgrind`: instructions per request too.
    callgrind: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let work = value("--work").map_or(0, |s| s.parse().expect("--work N"));
    if let Some(mode) = value("--serve") {
        WORK.store(work, std::sync::atomic::Ordering::Relaxed);
        return serve_main(&mode);
    }
    let opts = Options {
        seconds: value("--seconds").map_or(5.0, |s| s.parse().expect("--seconds")),
        connections: value("--connections").map_or(16, |s| s.parse().expect("--connections")),
        max_requests: value("--max-requests").map_or(5_000_000, |s| s.parse().expect("number")),
        rounds: value("--rounds").map_or(1, |s| s.parse().expect("--rounds")),
        peer: value("--peer"),
        raw_client: match value("--client").as_deref() {
            None | Some("raw") => true,
            Some("hyper") => false,
            Some(other) => panic!("--client raw|hyper, not {other}"),
        },
        work,
        only: value("--cases").map(|s| s.split(',').map(str::to_owned).collect()),
        callgrind: args.iter().any(|a| a == "--callgrind"),
    };
    client_main(&opts);
}

// ---------------------------------------------------------------------------------------------
// Server side

fn serve_main(mode: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        println!("{}", listener.local_addr().unwrap());
        let keys = KeyRing::new(Key::generate());
        // The parent closes our standard input to stop us; the timer bounds a server whose
        // parent is gone without closing it.
        let stop = async {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = stdin_closed() => {}
            }
        };
        match mode {
            "floor" => {
                let svc = FloorLayer.layer(tower::service_fn(ours));
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "bare" => {
                let svc = tower::service_fn(ours);
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "stateless" => {
                let config = SessionConfig::builder(keys).build().unwrap();
                let svc = SessionLayer::new(config).layer(tower::service_fn(ours));
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "registry-sqlite" => {
                let registry = Arc::new(SqliteRegistry::open(dir.path().join("r.db")).unwrap());
                let config = SessionConfig::builder(keys)
                    .registry(registry)
                    .build()
                    .unwrap();
                let svc = SessionLayer::new(config).layer(tower::service_fn(ours));
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            other => panic!("unknown mode {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Client side

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing its standard input asks the server to stop (a PostgreSQL one drops its
        // schema first); our own child, killed by its handle if it does not within 10 s.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("a server did not stop when asked: killed");
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn pinned(program: &str) -> Command {
    let mut cmd = if cpus() >= 2 {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", program]);
        c
    } else {
        Command::new(program)
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// The CPUs of the machine, read before the client pins itself to one.
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn start(case: &str, peer: &str, work: usize) -> Server {
    let case = server_of(case);
    let me = std::env::current_exe().unwrap();
    let mut cmd = if served_by_peer(case) {
        let mut c = pinned(peer);
        c.arg(case);
        c
    } else {
        let mut c = pinned(me.to_str().unwrap());
        c.args(["--serve", case]);
        c
    };
    cmd.args(["--work", &work.to_string()]);
    let mut child = cmd.spawn().expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().parse().expect("the server prints its address");
    Server { child, addr }
}

/// User + system CPU time of a process, from /proc (Linux only; `None` elsewhere).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// What the scheduler says of a process's threads (Linux: `/proc/PID/task/*/schedstat` and
/// `status`): nanoseconds run by the main thread and by the others, and context switches of
/// all of them (every wakeup of a thread that slept is one).
#[derive(Debug, Clone, Copy, Default)]
struct Threads {
    main_ns: u64,
    other_ns: u64,
    switches: u64,
    other_switches: u64,
}

fn threads(pid: u32) -> Option<Threads> {
    let mut t = Threads::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let ran: u64 = std::fs::read_to_string(dir.join("schedstat"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        t.switches += switches;
        if dir.file_name()?.to_str()? == pid.to_string() {
            t.main_ns += ran;
        } else {
            t.other_ns += ran;
            t.other_switches += switches;
        }
    }
    Some(t)
}

impl Threads {
    fn since(self, before: Threads) -> Threads {
        Threads {
            main_ns: self.main_ns.saturating_sub(before.main_ns),
            other_ns: self.other_ns.saturating_sub(before.other_ns),
            switches: self.switches.saturating_sub(before.switches),
            other_switches: self.other_switches.saturating_sub(before.other_switches),
        }
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The pid of the server itself (under `taskset`, the child execs it, so it is the same pid).
fn server_pid(s: &Server) -> u32 {
    s.child.id()
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    cookie: Option<&HeaderValue>,
) -> Response<Bytes> {
    let mut req = Request::get(path)
        .header(HOST, "127.0.0.1")
        .header(USER_AGENT, "loadgen/1")
        .body(Empty::new())
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    sender.ready().await.expect("connection ready");
    let res = sender.send_request(req).await.expect("response");
    let (parts, body) = res.into_parts();
    Response::from_parts(parts, body.collect().await.expect("body").to_bytes())
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// Signs in and returns the session cookie (`name=value`).
async fn sign_in(addr: SocketAddr, case: &str) -> Option<HeaderValue> {
    let mut sender = connect(addr).await;
    if sessionless(case) {
        // The same bytes on the wire as the session cases: a ~330-byte cookie, ignored.
        return Some(HeaderValue::from_static(
            "session=AQFt0XGtQnB8nIdbGb0fDTLmgW3wBrMm5JHUnDvnP7bN7IJKeTkXcLZzmZkU9mEP4cLd2Q8X9fWvLbFYn4rJpF0oDsxVxjVdNNo2KmvsS0xPp4XJiRzVQyh3uCqG1L6F2uVbYmQj8eT3bW5kzJ3xWnQp7cR9dA0sH4gKuM1yZ6fL2jV8tN5oB7iE3wX0aD9cG4hS1rU6vY2pT8mK5nQ3jF7bL0xW9zE4cR1dA6sH2gU8iO5yT3pV7mN0kJ4bX9fZ2qC6wE1rS5dG8hT3yU7iO0pA4sD9fG2hJ6kL1zX5cV8bN3mQ7wE0rT4yU9iO2pA6sD1fG5h",
        ));
    }
    let res = send(&mut sender, "/login", None).await;
    assert_eq!(res.status(), StatusCode::OK, "{case}: login failed");
    let line = res.headers().get(SET_COOKIE)?.to_str().ok()?;
    HeaderValue::from_str(line.split(';').next()?).ok()
}

struct Run {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<u32>,
    server_cpu: Option<Duration>,
    threads: Option<Threads>,
}

/// One keep-alive connection of the load, through either client.
enum Client {
    Hyper {
        sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        cookie: HeaderValue,
    },
    /// Writes `request`, the same bytes every time; `buf` holds what was read past a response.
    Raw {
        stream: tokio::net::TcpStream,
        request: Arc<[u8]>,
        buf: Vec<u8>,
    },
}

/// What a response must be: 200, and no `Set-Cookie` unless the request writes.
#[derive(Clone, Copy)]
struct Expect {
    path: &'static str,
}

impl Expect {
    fn reads(self) -> bool {
        self.path == "/read"
    }
}

impl Client {
    /// Sends `GET path` and waits for its response, checking it (see [`Expect`]).
    async fn request_once(&mut self, expect: Expect) {
        match self {
            Client::Hyper { sender, cookie } => {
                let res = send(sender, expect.path, Some(cookie)).await;
                assert_eq!(res.status(), StatusCode::OK);
                assert!(
                    !expect.reads() || res.headers().get(SET_COOKIE).is_none(),
                    "a read set a cookie"
                );
            }
            Client::Raw {
                stream,
                request,
                buf,
            } => {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                stream.write_all(request).await.expect("write");
                let len = loop {
                    if let Some(len) = complete_response(buf, expect) {
                        break len;
                    }
                    let n = stream.read_buf(buf).await.expect("read");
                    assert!(n > 0, "the server closed the connection");
                };
                buf.drain(..len);
            }
        }
    }
}

/// Loads `addr` with `connections` connections until `until` or the request budget runs out.
async fn load(
    addr: SocketAddr,
    cookie: &HeaderValue,
    connections: usize,
    duration: Duration,
    budget: i64,
    raw: bool,
    expect: Expect,
) -> (Vec<u32>, Duration) {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: loadgen/1\r\ncookie: ",
        expect.path
    )
    .into_bytes();
    request.extend_from_slice(cookie.as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    let request: Arc<[u8]> = request.into();
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(if raw {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            Client::Raw {
                stream,
                request: request.clone(),
                buf: Vec::with_capacity(4096),
            }
        } else {
            Client::Hyper {
                sender: connect(addr).await,
                cookie: cookie.clone(),
            }
        });
    }
    let budget = Arc::new(AtomicI64::new(budget));
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let budget = budget.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            while Instant::now() < until && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                let t = Instant::now();
                client.request_once(expect).await;
                let ns = t.elapsed().as_nanos();
                latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.expect("load task"));
    }
    (all, started.elapsed())
}

/// The length of the first response in `buf` once it is complete, after checking it: 200, a
/// `Content-Length` body, and no `Set-Cookie` if it answers a read.
fn complete_response(buf: &[u8], expect: Expect) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut res = httparse::Response::new(&mut headers);
    let head = match res.parse(buf).expect("a valid HTTP response") {
        httparse::Status::Complete(head) => head,
        httparse::Status::Partial => return None,
    };
    assert_eq!(res.code, Some(200));
    let mut body = None;
    for h in res.headers.iter() {
        assert!(
            !expect.reads() || !h.name.eq_ignore_ascii_case("set-cookie"),
            "a read set a cookie"
        );
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok());
        }
    }
    let total = head + body.expect("a Content-Length response");
    (buf.len() >= total).then_some(total)
}

fn run_case(case: &str, peer: &str, opts: &Options) -> Run {
    let server = start(case, peer, opts.work);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cookie = sign_in(server.addr, server_of(case))
            .await
            .expect("a session cookie");
        let expect = Expect {
            path: path_of(case),
        };
        // Warm-up: connections, caches, allocator, CPU frequency.
        load(
            server.addr,
            &cookie,
            opts.connections,
            Duration::from_millis(500),
            i64::MAX,
            opts.raw_client,
            expect,
        )
        .await;
        let cpu_before = cpu_time(server_pid(&server));
        let threads_before = threads(server_pid(&server));
        let (latencies, elapsed) = load(
            server.addr,
            &cookie,
            opts.connections,
            Duration::from_secs_f64(opts.seconds),
            opts.max_requests,
            opts.raw_client,
            expect,
        )
        .await;
        let server_cpu = cpu_time(server_pid(&server))
            .zip(cpu_before)
            .map(|(a, b)| a.saturating_sub(b));
        let threads = threads(server_pid(&server))
            .zip(threads_before)
            .map(|(a, b)| a.since(b));
        Run {
            requests: latencies.len(),
            elapsed,
            latencies,
            server_cpu,
            threads,
        }
    })
}

struct Summary {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: Option<f64>,
    server_busy: Option<f64>,
    /// Of the server's CPU per request, what threads other than the main one used, in us.
    other_us: Option<f64>,
    /// Context switches per 1,000 requests: all threads, and the other threads alone.
    switches: Option<(f64, f64)>,
}

fn summarize(mut run: Run) -> Summary {
    run.latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((run.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(run.latencies[i]) / 1000.0
    };
    let secs = run.elapsed.as_secs_f64();
    Summary {
        rps: run.requests as f64 / secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us: run
            .server_cpu
            .map(|c| c.as_secs_f64() * 1e6 / run.requests as f64),
        server_busy: run.server_cpu.map(|c| c.as_secs_f64() / secs),
        other_us: run
            .threads
            .map(|t| t.other_ns as f64 / 1e3 / run.requests as f64),
        switches: run.threads.map(|t| {
            let per = |n: u64| n as f64 * 1e3 / run.requests as f64;
            (per(t.switches), per(t.other_switches))
        }),
    }
}

/// Where `benches/peers` is built: `SEALED_SESSIONS_PEERS_TARGET_DIR`, else `peers` under
/// `CARGO_TARGET_DIR`, else `benches/peers/target`.
fn peers_target() -> String {
    if let Ok(dir) = std::env::var("SEALED_SESSIONS_PEERS_TARGET_DIR") {
        return dir;
    }
    std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/target").to_owned(),
        |t| format!("{t}/peers"),
    )
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds `bin` of `benches/peers` (release) and returns its path.
fn peer_binary(bin: &str) -> Option<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/Cargo.toml");
    let target = peers_target();
    eprintln!("building {bin} (benches/peers) ...");
    let ok = cargo()
        .args(["build", "--release", "--quiet", "--bin", bin])
        .args(["--manifest-path", manifest, "--target-dir", &target])
        .status()
        .is_ok_and(|s| s.success());
    let path = format!("{target}/release/{bin}");
    (ok && std::path::Path::new(&path).exists()).then_some(path)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn client_main(opts: &Options) {
    cpus();
    let postgres = std::env::var(POSTGRES_URL_VAR).is_ok_and(|u| !u.is_empty());
    let wanted = |c: &str| opts.only.as_ref().is_none_or(|o| o.iter().any(|w| w == c));
    let mut cases: Vec<&str> = CASES.iter().copied().filter(|c| wanted(c)).collect();
    if !postgres && cases.iter().any(|c| c.ends_with("postgres")) {
        eprintln!(
            "skipped: the PostgreSQL cases need a server; set {POSTGRES_URL_VAR}=postgres://..."
        );
        cases.retain(|c| !c.ends_with("postgres"));
    }
    let peer = if cases.iter().any(|c| served_by_peer(c)) {
        let p = opts.peer.clone().or_else(|| peer_binary("peer_server"));
        if p.is_none() {
            eprintln!("the peer server did not build: its cases are skipped");
            cases.retain(|c| !served_by_peer(c));
        }
        p
    } else {
        None
    };
    let instructions = if opts.callgrind {
        callgrind(&cases, postgres)
    } else {
        Vec::new()
    };
    if cpus() >= 2 {
        // The client on CPU 1 (threads made later inherit it), every server on CPU 0.
        let pinned = Command::new("taskset")
            .args(["-cp", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !pinned {
            eprintln!("taskset failed: client and server are not pinned");
        }
    }
    println!(
        "loadgen: {} s per case, {} connections, max {} requests, {} round(s), {} CPUs, {} client, work {}",
        opts.seconds,
        opts.connections,
        opts.max_requests,
        opts.rounds,
        cpus(),
        if opts.raw_client { "raw" } else { "hyper" },
        opts.work
    );
    let load_at_start = load_average();
    println!("load average (1, 5, 15 min) at the start: {load_at_start}");
    let mut best: Vec<Option<Summary>> = cases.iter().map(|_| None).collect();
    for round in 1..=opts.rounds {
        for (i, case) in cases.iter().enumerate() {
            let s = summarize(run_case(case, peer.as_deref().unwrap_or(""), opts));
            println!(
                "round {round} {case:<24} {:>9.0} req/s  p50 {:>7.1} us  p99 {:>7.1} us  server {}",
                s.rps,
                s.p50_us,
                s.p99_us,
                cpu_text(&s)
            );
            if best[i].as_ref().is_none_or(|b| s.rps > b.rps) {
                best[i] = Some(s);
            }
        }
    }
    let load_at_end = load_average();
    let get = |name: &str| {
        cases
            .iter()
            .position(|c| *c == name)
            .and_then(|i| best[i].as_ref())
    };
    println!(
        "\nbest round per case (load average at the start {load_at_start}, at the end {load_at_end}):"
    );
    println!(
        "| case | req/s | req/s vs floor | server CPU us/req | CPU vs floor | p50 us | p99 us | server busy | other threads us/req | switches/1k req (other threads) |{}",
        if instructions.is_empty() { "" } else { " instructions/req |" }
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |{}",
        if instructions.is_empty() {
            ""
        } else {
            " --- |"
        }
    );
    for (i, case) in cases.iter().enumerate() {
        let s = best[i].as_ref().unwrap();
        let base = get(baseline(case));
        let of = if baseline(case) == "floor" {
            String::new()
        } else {
            format!(" (of {})", baseline(case))
        };
        let cg = if instructions.is_empty() {
            String::new()
        } else {
            let n = instructions.iter().find(|(c, _)| c == case);
            format!(" {} |", n.map_or("-".into(), |(_, n)| format!("{n:.0}")))
        };
        println!(
            "| {case} | {:.0} | {}{of} | {} | {}{of} | {:.1} | {:.1} | {} | {} | {} |{cg}",
            s.rps,
            base.map_or("-".into(), |b| format!("{:.2}", s.rps / b.rps)),
            s.cpu_us.map_or("-".into(), |c| format!("{c:.1}")),
            base.and_then(|b| Some(s.cpu_us? / b.cpu_us?))
                .map_or("-".into(), |r| format!("{r:.2}")),
            s.p50_us,
            s.p99_us,
            s.server_busy
                .map_or("-".into(), |b| format!("{:.0}%", b * 100.0)),
            s.other_us.map_or("-".into(), |o| format!("{o:.2}")),
            s.switches
                .map_or("-".into(), |(all, other)| format!("{all:.1} ({other:.1})")),
        );
    }
    println!("\nratios (same run):");
    let ratio = |what: &str, a: &str, b: &str, f: fn(&Summary) -> f64| {
        if let (Some(a), Some(b)) = (get(a), get(b)) {
            println!("  {what}: {:.2}", f(a) / f(b));
        }
    };
    let rps = |s: &Summary| s.rps;
    let cpu = |s: &Summary| s.cpu_us.unwrap_or(f64::NAN);
    ratio("floor req/s / bare hyper", "floor", "bare", rps);
    ratio(
        "registry-postgres req/s / tower-sessions-postgres (issue 13: >= 10)",
        "registry-postgres",
        "tower-sessions-postgres",
        rps,
    );
    ratio(
        "server CPU/req: tower-sessions-postgres / registry-postgres",
        "tower-sessions-postgres",
        "registry-postgres",
        cpu,
    );
    ratio(
        "registry-sqlite req/s / tower-sessions-sqlite",
        "registry-sqlite",
        "tower-sessions-sqlite",
        rps,
    );
    ratio(
        "registry-sqlite req/s / tower-sessions-memory",
        "registry-sqlite",
        "tower-sessions-memory",
        rps,
    );
    ratio(
        "stateless req/s / private-cookie-jar",
        "stateless",
        "private-cookie-jar",
        rps,
    );
    ratio(
        "server CPU/req: registry-sqlite / stateless",
        "registry-sqlite",
        "stateless",
        cpu,
    );
    ratio(
        "server CPU/req: registry-postgres / stateless",
        "registry-postgres",
        "stateless",
        cpu,
    );
    ratio(
        "stateless-write req/s / private-cookie-jar-write",
        "stateless-write",
        "private-cookie-jar-write",
        rps,
    );
    ratio(
        "stateless-write req/s / tower-sessions-memory-write",
        "stateless-write",
        "tower-sessions-memory-write",
        rps,
    );
    ratio(
        "actix-session-cookie req/s / actix-bare",
        "actix-session-cookie",
        "actix-bare",
        rps,
    );
    ratio(
        "stateless req/s / actix-session-cookie (different servers)",
        "stateless",
        "actix-session-cookie",
        rps,
    );
}

/// Instructions per request on the main thread under callgrind, for the cases an in-process
/// loop has: `examples/hotpath.rs` (ours and the floor) and `peer_hotpath` (the peers). Each
/// is (a run of `N` requests minus a run of none) / `N`.
fn callgrind(cases: &[&str], postgres: bool) -> Vec<(String, f64)> {
    const N: u64 = 4000;
    let hotpath_cases = [
        "floor",
        "bare",
        "stateless",
        "registry-sqlite",
        "registry-postgres",
        "stateless-write",
    ];
    let peer_cases = [
        "private-cookie-jar",
        "tower-sessions-memory",
        "private-cookie-jar-write",
        "tower-sessions-memory-write",
    ];
    let me = std::env::current_exe().unwrap();
    let target = me
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent());
    let Some(target) = target.map(|t| t.to_str().unwrap().to_owned()) else {
        return Vec::new();
    };
    eprintln!("building examples/hotpath.rs (release, features postgres) ...");
    let built = cargo()
        .args(["build", "--release", "--quiet", "--example", "hotpath"])
        .args(["--features", "postgres", "--target-dir", &target])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    let hotpath = built.then(|| format!("{target}/release/examples/hotpath"));
    let peer_hotpath = cases
        .iter()
        .any(|c| peer_cases.contains(c))
        .then(|| peer_binary("peer_hotpath"))
        .flatten();
    let dir = tempfile::tempdir().unwrap();
    let count = |program: &str, case: &str, n: u64| -> Option<u64> {
        let out = dir.path().join(format!("{case}-{n}"));
        let ok = Command::new("valgrind")
            .args(["--tool=callgrind", "--separate-threads=yes"])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .args([program, case, &n.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        // With --separate-threads, the main thread's profile is the file ending in -01.
        let main = format!("{}-01", out.display());
        let text = std::fs::read_to_string(main).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let mut found = Vec::new();
    for case in cases {
        let program = if hotpath_cases.contains(case) {
            if *case == "registry-postgres" && !postgres {
                continue;
            }
            hotpath.as_deref()
        } else if peer_cases.contains(case) {
            peer_hotpath.as_deref()
        } else {
            None
        };
        let Some(program) = program else { continue };
        eprintln!("callgrind: {case} ...");
        match (count(program, case, N), count(program, case, 0)) {
            (Some(n), Some(zero)) => {
                found.push((case.to_string(), (n.saturating_sub(zero)) as f64 / N as f64))
            }
            _ => eprintln!("callgrind: {case} did not run (is valgrind installed?)"),
        }
    }
    found
}

fn cpu_text(s: &Summary) -> String {
    match (s.cpu_us, s.server_busy) {
        (Some(c), Some(b)) => format!("{c:.1} us CPU/req, {:.0}% busy", b * 100.0),
        _ => "-".into(),
    }
}
