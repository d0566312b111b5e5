//! `PostgresRegistry::stats` and `PostgresRegistry::check`: an operator's figures and health
//! check, read on the registry's reader connection.

use std::time::{Duration, SystemTime};

use tokio_postgres::Client;

use super::job::Job;
use super::schema::{storable, table_exists, SCHEMA_VERSION};
use super::shared::Shared;
use super::PostgresRegistry;
use crate::registry::operator::{RegistryCheck, RegistryStats};
use crate::registry::RegistryError;

impl PostgresRegistry {
    /// Figures about the registry at `now`: active sessions and users, recent revocations, the
    /// oldest active session, row counts and the size of the tables with their indexes.
    pub async fn stats(&self, now: SystemTime) -> Result<RegistryStats, RegistryError> {
        self.send(move |reply| Job::Stats { now, reply }).await
    }

    /// Checks the schema: its version, its tables and its triggers.
    pub async fn check(&self) -> Result<RegistryCheck, RegistryError> {
        self.send(|reply| Job::Check { reply }).await
    }
}

pub(crate) async fn stats(
    client: &Client,
    shared: &Shared,
    now: SystemTime,
) -> Result<RegistryStats, RegistryError> {
    let s = &shared.schema;
    let now = storable(now);
    let ago = |d: Duration| now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH);
    let row = client
        .query_one(
            &format!(
                "SELECT \
                 (SELECT count(*) FROM {s}.sessions WHERE revoked_at IS NULL AND expires_at > $1), \
                 (SELECT count(DISTINCT user_id) FROM {s}.sessions \
                  WHERE revoked_at IS NULL AND expires_at > $1), \
                 (SELECT count(*) FROM {s}.sessions WHERE revoked_at > $2), \
                 (SELECT count(*) FROM {s}.sessions WHERE revoked_at > $3), \
                 (SELECT min(created_at) FROM {s}.sessions \
                  WHERE revoked_at IS NULL AND expires_at > $1), \
                 (SELECT count(*) FROM {s}.sessions), \
                 (SELECT count(*) FROM {s}.revocations), \
                 pg_total_relation_size('{s}.sessions') + pg_total_relation_size('{s}.revocations')"
            ),
            &[
                &now,
                &ago(Duration::from_secs(3600)),
                &ago(Duration::from_secs(86_400)),
            ],
        )
        .await
        .map_err(shared.err())?;
    let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(RegistryStats {
        active_sessions: n(0),
        users: n(1),
        revoked_last_hour: n(2),
        revoked_last_day: n(3),
        oldest_active: row.get(4),
        session_rows: n(5),
        revocation_rows: n(6),
        bytes: n(7),
    })
}

pub(crate) async fn check(
    client: &Client,
    shared: &Shared,
) -> Result<RegistryCheck, RegistryError> {
    let s = &shared.schema;
    let err = shared.err();
    let version: Option<String> = client
        .query_opt(
            &format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"),
            &[],
        )
        .await
        .map_err(&err)?
        .map(|row| row.get(0));
    let schema_version = version.and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut problems = Vec::new();
    if schema_version != SCHEMA_VERSION {
        problems.push(format!(
            "the schema version is {schema_version}; this library's is {SCHEMA_VERSION}"
        ));
    }
    for table in ["meta", "sessions", "revocations", "write_lock"] {
        if !table_exists(client, s, table).await.map_err(&err)? {
            problems.push(format!("the table `{s}.{table}` is missing"));
        }
    }
    for (table, trigger) in [
        ("revocations", "revocations_ordered"),
        ("revocations", "revocations_notify"),
        ("sessions", "sessions_deleted"),
        ("sessions", "sessions_truncated"),
    ] {
        let enabled: Option<String> = client
            .query_opt(
                "SELECT t.tgenabled::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3",
                &[&shared.schema, &table, &trigger],
            )
            .await
            .map_err(&err)?
            .map(|row| row.get(0));
        match enabled.as_deref() {
            None => problems.push(format!(
                "the trigger `{trigger}` on `{s}.{table}` is missing"
            )),
            Some("D") => problems.push(format!(
                "the trigger `{trigger}` on `{s}.{table}` is disabled"
            )),
            Some(_) => {}
        }
    }
    // An index a failed `CREATE INDEX CONCURRENTLY` left behind exists but is never used: the
    // queries it serves then read the whole table, some under the writers' lock.
    for index in [
        "sessions_pkey",
        "sessions_user_active",
        "sessions_user_revoked",
        "sessions_expires_at",
        "revocations_pkey",
        "revocations_expires_at",
    ] {
        let valid: Option<bool> = client
            .query_opt(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                &[&format!("{s}.{index}")],
            )
            .await
            .map_err(&err)?
            .map(|row| row.get(0));
        match valid {
            None => problems.push(format!("the index `{s}.{index}` is missing")),
            Some(false) => problems.push(format!(
                "the index `{s}.{index}` is invalid (a failed or cancelled build): rebuild it \
                 with `REINDEX INDEX CONCURRENTLY {s}.{index}`"
            )),
            Some(true) => {}
        }
    }
    Ok(RegistryCheck {
        schema_version,
        problems,
    })
}
