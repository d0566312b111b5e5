//! Headless Chromium under chromedriver for end-to-end tests: finding the two programs, running
//! chromedriver on a free loopback port (shut down on drop, browsers and all), and one WebDriver
//! session per throwaway browser profile.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder};
// `client-legacy` is on because fantoccini itself needs it; plain http is all chromedriver speaks.
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::support::send;

/// Set to `1` (`.ci/run` does) to make a missing browser a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "SEALED_SESSIONS_REQUIRE_BROWSER";

/// How long chromedriver may take to answer `/status`, and a browser to start.
pub const START_WITHIN: Duration = Duration::from_secs(20);

pub fn browser_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Where the end-to-end tests leave screenshots: `target/e2e-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps");
    let dir = target.join("e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The two programs the tests drive.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Tools {
    /// Debian's paths first, then `PATH`; `Err` says what is missing.
    pub fn find() -> Result<Tools, String> {
        let chromium = find_program("/usr/bin/chromium", "chromium");
        let chromedriver = find_program("/usr/bin/chromedriver", "chromedriver");
        let missing: Vec<&str> = [
            chromium.is_none().then_some("chromium"),
            chromedriver.is_none().then_some("chromedriver"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Ok(Tools {
                chromium,
                chromedriver,
            }),
            _ => Err(format!(
                "{} not found in /usr/bin or on PATH (Debian: apt-get install chromium chromium-driver)",
                missing.join(" and ")
            )),
        }
    }
}

fn find_program(usual: &str, name: &str) -> Option<PathBuf> {
    let usual = Path::new(usual);
    if usual.is_file() {
        return Some(usual.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running chromedriver; on drop it is asked to shut down (which quits any browser still
/// open), then killed if it has not exited.
pub struct ChromeDriver {
    child: Child,
    addr: SocketAddr,
    chromium: PathBuf,
    log_dir: tempfile::TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver on a free port and waits until it reports ready.
    pub async fn start(tools: &Tools) -> ChromeDriver {
        let log_dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(log_dir.path().join("chromedriver.log")).unwrap();
        let port = free_port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tools.chromedriver.display()));
        // The guard exists before the wait, so a failed start still kills the process.
        let mut driver = ChromeDriver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            chromium: tools.chromium.clone(),
            log_dir,
        };
        driver.wait_ready().await;
        driver
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What chromedriver has printed so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "chromedriver exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let reply = send(self.addr, "GET", "/status", &[], &[], None).await;
                let status: Value = serde_json::from_str(&reply.body).unwrap_or_default();
                if status["value"]["ready"] == true {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within {START_WITHIN:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless browser with its own empty profile (so its own cookie jar).
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let client = self.browser_in(profile.path()).await;
        Browser {
            client,
            profile: Some(profile),
        }
    }

    /// A headless browser on the profile directory `profile`, which outlives it: a second
    /// browser on the same directory is the same browser restarted (its persistent cookies
    /// kept, its session cookies gone).
    pub async fn browser_in(&self, profile: &Path) -> Client {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            // Without these Chromium waits on the network, which a closed CI machine never answers.
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--password-store=basic".into(),
            "--window-size=1280,860".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
            "timeouts": { "implicit": 0, "pageLoad": 20_000, "script": 10_000 },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("json! of an object literal")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = self.url();
        let connect = builder.connect(&url);
        match tokio::time::timeout(START_WITHIN, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("cannot start a browser session: {e}\n{}", self.log()),
            Err(_) => panic!("no browser session within {START_WITHIN:?}\n{}", self.log()),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // `/shutdown` quits every browser chromedriver started; a plain kill would orphan them.
        if let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session in its own profile directory.
pub struct Browser {
    pub client: Client,
    profile: Option<tempfile::TempDir>,
}

impl Browser {
    /// Ends the session, which quits this Chromium; the profile directory goes after it.
    pub async fn close(self) {
        let Browser { client, profile } = self;
        quit(client).await;
        drop(profile);
    }
}

/// Ends a browser's WebDriver session, which quits that Chromium (writing its profile out).
pub async fn quit(client: Client) {
    match tokio::time::timeout(Duration::from_secs(10), client.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("closing a browser session failed: {e}"),
        Err(_) => eprintln!("closing a browser session timed out"),
    }
}

/// Polls `check` until it yields `Some`, failing after `within` with what it last saw.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, CmdError>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return value,
            Ok(None) => "not yet".to_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what} (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `fetch(path)` from the page the browser shows, with its cookies: (status, body).
pub async fn fetch(client: &Client, path: &str) -> (u16, String) {
    const JS: &str = r#"
        const [path, done] = arguments;
        fetch(path, { credentials: "same-origin" })
            .then(async r => done([r.status, await r.text()]))
            .catch(e => done([0, String(e)]));
    "#;
    let result = client.execute_async(JS, vec![json!(path)]).await.unwrap();
    let status = result[0].as_u64().and_then(|s| u16::try_from(s).ok());
    let status = status.unwrap_or_else(|| panic!("fetch({path}) gave {result}"));
    (status, result[1].as_str().unwrap_or_default().to_owned())
}

/// Saves a PNG of the browser's viewport, checking it is one.
pub async fn save_screenshot(client: &Client, path: &Path) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::write(path, png).unwrap();
}
