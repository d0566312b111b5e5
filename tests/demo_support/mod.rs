//! Runs the real demo binary (`examples/demo`) on a free loopback port, with its own database
//! and key file in a temp dir, and talks to it like a browser with one cookie jar would.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::support::{build_request, Reply};

pub const COOKIE_NAME: &str = "demo_session";

/// `target/<profile>/examples/<name>`, built (or brought up to date) first: `cargo test --test X`
/// builds no examples, and a stale binary would test old code.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", name]);
        // The features this test was built with, so that test binaries of one run agree on
        // what the one binary at this path is (and the PostgreSQL tests can use it).
        if cfg!(feature = "postgres") {
            cmd.args(["--features", "postgres"]);
        }
        // `/metrics` (`tests/demo_metrics.rs`).
        if cfg!(feature = "metrics") {
            cmd.args(["--features", "metrics"]);
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    path
}

/// A running demo; killed on drop.
pub struct Demo {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Demo {
    pub fn start() -> Demo {
        Self::start_with(&[])
    }

    /// Starts the demo with extra command-line flags.
    pub fn start_with(flags: &[&str]) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        Self::launch(dir, flags)
    }

    /// Starts the demo on the database and key file in `dir` (a restart keeps both).
    pub fn start_in(dir: tempfile::TempDir) -> Demo {
        Self::launch(dir, &[])
    }

    fn launch(dir: tempfile::TempDir, flags: &[&str]) -> Demo {
        let db = dir.path().join("sessions.db");
        let key = dir.path().join("session.key");
        Self::launch_on(dir, db.as_os_str(), &key, flags)
    }

    /// Starts the demo on the registry `db` (a path or a URL) with the key file `key`; `dir`
    /// is kept for as long as the demo runs.
    pub fn start_on(dir: tempfile::TempDir, db: &str, key: &Path) -> Demo {
        Self::launch_on(dir, db.as_ref(), key, &[])
    }

    fn launch_on(dir: tempfile::TempDir, db: &std::ffi::OsStr, key: &Path, flags: &[&str]) -> Demo {
        let mut child = Command::new(example_binary("demo"))
            .args(flags)
            .args(["--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .arg("--key-file")
            .arg(key)
            .env_remove("SESSION_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the demo prints its address").unwrap();
        let url = first
            .rsplit_once("http://")
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .1;
        let addr = url.trim().parse().unwrap();
        // Keep draining stdout so the demo never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Demo { child, addr, dir }
    }

    /// Starts the demo with extra flags and a clock the test moves with
    /// [`set_clock_offset`](Self::set_clock_offset) (the demo's test-only `--clock-offset-file`).
    pub fn start_with_clock(flags: &[&str]) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let offset = dir.path().join("clock-offset");
        let offset = offset.to_str().unwrap().to_owned();
        let mut all = vec!["--clock-offset-file", offset.as_str()];
        all.extend_from_slice(flags);
        Self::launch(dir, &all)
    }

    /// Moves the clock of a demo started with [`start_with_clock`](Self::start_with_clock) to
    /// the system clock plus `secs`, from its next request on.
    pub fn set_clock_offset(&self, secs: u64) {
        let path = self.dir.path().join("clock-offset");
        // Written whole, then renamed: the demo never reads a half-written number.
        let tmp = self.dir.path().join("clock-offset.new");
        std::fs::write(&tmp, secs.to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("sessions.db")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the demo and hands back its directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser: a cookie jar holding the demo's cookie.
pub struct Client {
    pub addr: SocketAddr,
    pub cookie: Option<String>,
    pub user_agent: String,
    /// The address it connects from (the system's choice if `None`).
    pub from: Option<IpAddr>,
}

impl Client {
    pub fn new(addr: SocketAddr, user_agent: &str) -> Client {
        Client {
            addr,
            cookie: None,
            user_agent: user_agent.into(),
            from: None,
        }
    }

    /// A browser that connects from `from`, such as [`loopback`]`(n)`: the demo takes the
    /// connection's peer address as the client's.
    pub fn from(addr: SocketAddr, user_agent: &str, from: IpAddr) -> Client {
        Client {
            from: Some(from),
            ..Client::new(addr, user_agent)
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.request("POST", path, Some(form)).await
    }

    /// Sends with the jar's cookie and keeps what the response sets (an expired one removes it).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let cookie = self.cookie.clone();
        let cookies: Vec<&[u8]> = cookie.iter().map(|c| c.as_bytes()).collect();
        let ua = [("user-agent", self.user_agent.as_str())];
        let reply = send_from(self.from, self.addr, method, path, &cookies, &ua, form).await;
        if let Some(c) = reply.cookie(COOKIE_NAME) {
            let removed = c.value().is_empty()
                || c.max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
            self.cookie = (!removed).then(|| format!("{}={}", c.name(), c.value()));
        }
        reply
    }

    /// The CSRF token from the page at `path` (its first form's hidden field).
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        csrf_in(&page.body).expect("a csrf_token field")
    }

    /// Signs in, checking the 303 to `/`.
    pub async fn login(&mut self, user: &str, password: &str) {
        let csrf = self.csrf("/").await;
        let r = self
            .post(
                "/login",
                &[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.headers["location"], "/");
    }

    /// The user `/api/me` reports, or `None` on its 401.
    pub async fn me(&mut self) -> Option<serde_json::Value> {
        let r = self.get("/api/me").await;
        match r.status {
            StatusCode::OK => Some(serde_json::from_str(&r.body).unwrap()),
            StatusCode::UNAUTHORIZED => None,
            other => panic!("/api/me answered {other}: {}", r.body),
        }
    }
}

/// `127.0.0.n`. Linux routes all of 127.0.0.0/8 to the loopback interface, so a client can
/// connect from any of them and the server sees a different peer for each.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Sends one request on a new connection from `from` (the system's choice if `None`); see
/// [`build_request`].
pub async fn send_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookies: &[&[u8]],
    extra: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Reply {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .unwrap();
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = build_request(method, path, cookies, extra, form);
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The value of the header `name`, which must be there.
pub fn header<'r>(reply: &'r Reply, name: &str) -> &'r str {
    reply
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header ({})", reply.status))
        .to_str()
        .unwrap()
}

/// The whole number of seconds a refusal asks the client to wait.
pub fn retry_after(reply: &Reply) -> u64 {
    let value = header(reply, "retry-after");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?}"))
}

/// Posts the sign-in form, whatever the answer.
pub async fn post_login(client: &mut Client, user: &str, password: &str, csrf: &str) -> Reply {
    client
        .post(
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf_token", csrf),
            ],
        )
        .await
}

pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf_token" value=""#)? + r#"name="csrf_token" value=""#.len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_owned())
}

/// The `data-session-id`s listed on a devices page, in page order.
pub fn session_ids(html: &str) -> Vec<String> {
    html.split(r#"data-session-id=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

/// Runs the `revoke_all` example against `db` (a path or a URL); returns its stdout.
pub fn revoke_all(db: impl AsRef<std::ffi::OsStr>, user: &str) -> String {
    let out = Command::new(example_binary("revoke_all"))
        .arg("--db")
        .arg(db)
        .arg(user)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
