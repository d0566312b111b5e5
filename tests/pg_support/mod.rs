//! A PostgreSQL server for tests, when there is one: `SEALED_SESSIONS_POSTGRES_URL` names it
//! (`.ci/run` starts one and sets it). Without it, tests that need it print why and pass, unless
//! `SEALED_SESSIONS_REQUIRE_POSTGRES=1` (set by CI), which makes a missing server a failure.
//! Every test works in a schema of its own, dropped afterwards, so tests run in parallel.
#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

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
            eprintln!(
                "skipped: {test} needs a PostgreSQL server; set {URL_VAR}=postgres://... \
                 (bash .ci/run starts one)"
            );
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

    /// Runs `sql` on a connection of its own (on a thread of its own, so that it works from
    /// inside a test's runtime too).
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = connect(&url).await;
                client.batch_execute(&sql).await.unwrap();
            });
        })
        .join()
        .unwrap();
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
