//! A PostgreSQL server for tests, when there is one: `SEALED_SESSIONS_POSTGRES_URL` names it
//! (`.ci/run` starts one and sets it). Without it, tests that need it say SKIPPED and why in the
//! normal `cargo test` output, and pass, unless
//! `SEALED_SESSIONS_REQUIRE_POSTGRES=1` (set by CI), which makes a missing server a failure.
//! Every test works in a schema of its own, dropped afterwards, so tests run in parallel.
#![allow(dead_code)] // each test file uses a different part

#[path = "../skip/mod.rs"]
pub mod skip;
pub mod tls;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use sealed_sessions::registry::{PostgresRegistry, PostgresRegistryBuilder};

pub const URL_VAR: &str = "SEALED_SESSIONS_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "SEALED_SESSIONS_REQUIRE_POSTGRES";

/// The server's URL, or `None` after saying why the test does not run.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_VAR).is_err(),
                "{REQUIRE_VAR} is set but {URL_VAR} is not: {test} must run against PostgreSQL"
            );
            skip::skipped(&format!(
                "{test} needs a PostgreSQL server; set {URL_VAR}=postgres://... \
                 (bash .ci/run starts one)"
            ));
            None
        }
    }
}

/// A schema of this test's own, dropped (with everything in it) when this is dropped.
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    pub fn new(url: &str, test: &str) -> Self {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).unwrap();
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("t_{}_{suffix}", &test[..test.len().min(30)]);
        Schema {
            url: url.to_owned(),
            name,
        }
    }

    /// A builder for a registry in this schema, with short intervals fit for tests.
    pub fn builder(&self) -> PostgresRegistryBuilder {
        PostgresRegistry::builder(&self.url)
            .schema(&self.name)
            .cleanup_interval(Duration::ZERO)
            .connect_timeout(Duration::from_secs(5))
    }

    pub fn open(&self) -> PostgresRegistry {
        self.builder().open().unwrap()
    }

    /// Revokes `id` as another host would, but without the notification (the trigger is off
    /// for this one transaction): a revocation the hosts can learn of only from the log.
    pub fn revoke_unannounced(&self, id: sealed_sessions::SessionId) {
        let s = &self.name;
        let hex: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        self.execute(&format!(
            "BEGIN;
             ALTER TABLE {s}.revocations DISABLE TRIGGER revocations_notify;
             UPDATE {s}.sessions SET revoked_at = now() WHERE id = '\\x{hex}';
             INSERT INTO {s}.revocations (id, expires_at)
                 VALUES ('\\x{hex}', now() + interval '1 hour');
             ALTER TABLE {s}.revocations ENABLE TRIGGER revocations_notify;
             COMMIT;"
        ));
    }

    /// Runs `sql` on a connection of its own (on a thread of its own, so that it works from
    /// inside a test's runtime too).
    pub fn execute(&self, sql: &str) {
        run_blocking(&self.url, sql);
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let url = self.url.clone();
        // Best effort: a test that failed may have left the server unreachable.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// A plain client for SQL a test runs itself.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A TCP proxy: `paused` stalls every connection; `blackhole` stalls forever every connection
/// accepted before it was raised (generation), while new connections pass.
pub struct Proxy {
    pub port: u16,
    pub paused: Arc<AtomicBool>,
    /// Connections of a generation below this are stalled forever.
    blackhole_below: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let blackhole_below = Arc::new(AtomicU64::new(0));
        let generation = Arc::new(AtomicU64::new(1));
        let (p, b, g) = (paused.clone(), blackhole_below.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let gen = g.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, p.clone(), b.clone(), gen, false));
                tokio::spawn(pump(sr, cw, p.clone(), b.clone(), gen, true));
            }
        });
        Proxy {
            port,
            paused,
            blackhole_below,
            generation,
        }
    }

    /// Every connection open now is stalled forever (no RST); new ones work.
    pub fn blackhole_existing(&self) {
        let next = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.blackhole_below.store(next, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<AtomicBool>,
    blackhole_below: Arc<AtomicU64>,
    gen: u64,
    _to_client: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while paused.load(Ordering::SeqCst) || gen < blackhole_below.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A proxy to the server `url` names, and the URL that goes through it.
pub async fn proxied(url: &str) -> (Proxy, String) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("TCP server needed"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let through = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        config.get_user().unwrap_or("postgres"),
        proxy.port,
        config.get_dbname().unwrap_or("postgres")
    );
    (proxy, through)
}

/// `url` with its user replaced by `user` (no password: the test server trusts every role).
pub fn url_as(url: &str, user: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("TCP server needed"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// A role of this test's own, with LOGIN and nothing else until granted; dropped (with every
/// privilege granted to it) when this is dropped. Roles are cluster-wide, so the name is random.
pub struct Role {
    pub name: String,
    /// The URL that connects as this role.
    pub url: String,
    admin: String,
}

impl Role {
    pub fn new(url: &str, what: &str) -> Self {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).unwrap();
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("r_{}_{suffix}", &what[..what.len().min(20)]);
        let role = Role {
            url: url_as(url, &name),
            name,
            admin: url.to_owned(),
        };
        run_blocking(url, &format!("CREATE ROLE {} LOGIN", role.name));
        role
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let sql = format!("DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}", self.name);
        let url = self.admin.clone();
        // Best effort, as for a schema.
        let _ = std::thread::spawn(move || run_blocking(&url, &sql)).join();
    }
}

/// Runs `sql` as the admin of `url` on a thread and runtime of its own (so that it works from
/// inside a test's runtime too).
pub fn run_blocking(url: &str, sql: &str) {
    let sql = sql.to_owned();
    blocking(url, |client| async move {
        client.batch_execute(&sql).await.unwrap()
    });
}

/// `f` with a client of `url`'s admin, on a thread and runtime of their own (so that it works
/// from inside a test's runtime too); its result.
pub fn blocking<T, F>(url: &str, f: impl FnOnce(tokio_postgres::Client) -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { f(connect(&url).await).await })
    })
    .join()
    .unwrap()
}

/// Ends every server connection running a statement on `schema` (the registries' writers,
/// readers and listeners), but the caller's own; how many.
pub async fn terminate_connections_of(admin: &tokio_postgres::Client, schema: &str) -> u64 {
    admin
        .execute(
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE '%{schema}.%' AND pid <> pg_backend_pid()"
            ),
            &[],
        )
        .await
        .unwrap()
}

/// A client whose notifications (from `LISTEN`) arrive on the returned channel.
pub async fn listening(
    url: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (client, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    (client, rx)
}

/// Whether the server's role may create roles.
pub async fn can_create_roles(url: &str) -> bool {
    let c = connect(url).await;
    c.query_one(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The server's URL if its role may create roles (tests of roles need it), or `None` after
/// saying why the test does not run.
pub async fn url_for_roles(test: &str) -> Option<String> {
    let url = url(test)?;
    if !can_create_roles(&url).await {
        assert!(
            std::env::var(REQUIRE_VAR).is_err(),
            "{test} needs a role that may create roles"
        );
        skip::skipped(&format!("{test}: the server's role may not create roles"));
        return None;
    }
    Some(url)
}

/// The registry schema's version as `meta` records it.
pub async fn schema_version(client: &tokio_postgres::Client, schema: &str) -> String {
    client
        .query_one(
            &format!("SELECT value FROM {schema}.meta WHERE key = 'schema_version'"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
