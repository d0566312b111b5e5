//! `SqliteRegistry::stats` and `SqliteRegistry::check`: an operator's figures and health check.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::schema::{from_ms, map_err, to_ms, SCHEMA_VERSION};
use super::shared::Shared;
use super::SqliteRegistry;
use crate::registry::operator::{RegistryCheck, RegistryStats};
use crate::registry::RegistryError;

impl SqliteRegistry {
    /// Figures about the registry at `now`: active sessions and users, recent revocations, the
    /// oldest active session, row counts and the size of the files.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let registry = sealed_sessions::registry::SqliteRegistry::open(dir.path().join("s.db"))?;
    /// let stats = registry.stats(std::time::SystemTime::now()).await?;
    /// assert_eq!(stats.active_sessions, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn stats(&self, now: SystemTime) -> Result<RegistryStats, RegistryError> {
        self.read(move |conn, shared| stats(conn, shared, now))
            .await
    }

    /// Checks the database: its schema version (one older than this library's is a problem:
    /// a registry opened without migration is used as it is), its tables and trigger, and
    /// SQLite's `PRAGMA integrity_check`.
    pub async fn check(&self) -> Result<RegistryCheck, RegistryError> {
        self.read(check).await
    }
}

fn stats(
    conn: &Connection,
    shared: &Shared,
    now: SystemTime,
) -> Result<RegistryStats, RegistryError> {
    let err = |e: rusqlite::Error| map_err(&shared.path, &e);
    let now_ms = to_ms(now);
    let ago = |d: Duration| to_ms(now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH));
    let count = |sql: &str, param: i64| -> Result<u64, RegistryError> {
        conn.query_row(sql, [param], |row| row.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(err)
    };
    let active = "revoked_at IS NULL AND expires_at > ?1";
    let oldest: Option<i64> = conn
        .query_row(
            &format!("SELECT min(created_at) FROM sessions WHERE {active}"),
            [now_ms],
            |row| row.get(0),
        )
        .map_err(err)?;
    let bytes = ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut name = shared.path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).map_or(0, |m| m.len())
        })
        .sum();
    Ok(RegistryStats {
        active_sessions: count(
            &format!("SELECT count(*) FROM sessions WHERE {active}"),
            now_ms,
        )?,
        users: count(
            &format!("SELECT count(DISTINCT user_id) FROM sessions WHERE {active}"),
            now_ms,
        )?,
        revoked_last_hour: count(
            "SELECT count(*) FROM sessions WHERE revoked_at > ?1",
            ago(Duration::from_secs(3600)),
        )?,
        revoked_last_day: count(
            "SELECT count(*) FROM sessions WHERE revoked_at > ?1",
            ago(Duration::from_secs(86_400)),
        )?,
        oldest_active: oldest.map(from_ms),
        session_rows: count("SELECT count(*) FROM sessions WHERE ?1 = ?1", 0)?,
        revocation_rows: count("SELECT count(*) FROM revocations WHERE ?1 = ?1", 0)?,
        bytes,
    })
}

fn check(conn: &Connection, shared: &Shared) -> Result<RegistryCheck, RegistryError> {
    let err = |e: rusqlite::Error| map_err(&shared.path, &e);
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err)?;
    let mut problems = Vec::new();
    if schema_version < SCHEMA_VERSION {
        problems.push(format!(
            "schema version {schema_version} is older than this library's ({SCHEMA_VERSION}): \
             opening it with migration (the default; `sealed-sessions migrate`) upgrades it"
        ));
    }
    for (kind, name) in [
        ("table", "sessions"),
        ("table", "revocations"),
        ("trigger", "sessions_deleted"),
    ] {
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2)",
                [kind, name],
                |row| row.get(0),
            )
            .map_err(err)?;
        if !exists {
            problems.push(format!("the {kind} `{name}` is missing"));
        }
    }
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(err)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(err)?;
    for row in rows {
        let line = row.map_err(err)?;
        if line != "ok" {
            problems.push(format!("integrity check: {line}"));
        }
    }
    Ok(RegistryCheck {
        schema_version,
        problems,
    })
}
