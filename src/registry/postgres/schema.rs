//! The PostgreSQL schema, its migrations, and how errors map to [`RegistryError`].
//!
//! Everything lives in one schema of its own (default `sealed_sessions`, see
//! [`schema`](super::PostgresRegistryBuilder::schema)); `{s}` below stands for its name. Version 2,
//! applied (from nothing, or from version 1) by [`migrate`] in one transaction under an advisory
//! lock, so that hosts starting together cannot both apply it. Shops that run their own migrations can apply the same SQL
//! (`PostgresRegistry::schema_sql` prints it for a schema name) and open with
//! [`migrate(false)`](super::PostgresRegistryBuilder::migrate).
//!
//! ```sql
//! CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
//! -- ('schema_version', '1'), ('incarnation', a random uuid: a replaced database has another)
//! CREATE TABLE {s}.sessions (id bytea PRIMARY KEY CHECK (length(id) = 16),
//!     user_id text NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
//!     last_seen_at timestamptz NOT NULL, revoked_at timestamptz, user_agent text, ip inet)
//!     WITH (fillfactor = 90);
//! CREATE INDEX ON {s}.sessions (user_id, created_at DESC) WHERE revoked_at IS NULL;
//! CREATE INDEX ON {s}.sessions (expires_at);
//! CREATE TABLE {s}.revocations (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
//!     id bytea NOT NULL, expires_at timestamptz NOT NULL);
//! ```
//!
//! and these triggers:
//!
//! - **`revocations_ordered`** (BEFORE INSERT, per statement; and BEFORE DELETE or TRUNCATE of
//!   `sessions`, which log revocations, so that they take it before their row locks as the
//!   registry's writers do) takes a transaction-scoped advisory lock. Sequence numbers are handed out in insert order but transactions commit in any order,
//!   so without it a host that has read up to seq 6542 can miss 6541 committed just after
//!   (measured here: it happens with two writers). Under the lock, the rows of one transaction
//!   get their numbers only once every earlier writer has committed, so commit order is
//!   sequence order and "everything past my watermark" is complete. As a trigger, it orders
//!   every writer, hand-written SQL included.
//! - **`revocations_notify`** (AFTER INSERT, per statement, with a transition table) sends
//!   `seq:hexid,seq:hexid,...` on the channel `{s}_revocations`; past 150 entries (NOTIFY allows
//!   8,000 bytes) only `max:seq`, which means "read the log".
//!
//! - **`sessions_revoked`** (version 2; AFTER UPDATE OF `revoked_at`, `expires_at`, `id` or
//!   `user_id`, per row, when a live row becomes revoked, expires earlier, or changes id or
//!   user) logs the row's old id and expiry as a revocation, so that a hand-written `UPDATE …
//!   SET revoked_at = now()` (or `expires_at = now()`, or both) reaches every host as the
//!   registry's own revocations do (version 1 left it unannounced: hosts vouched for the
//!   session from memory until it expired). The registry's
//!   own transactions log their revocations in one statement and mark themselves with the
//!   transaction-local setting `sealed_sessions.self_logged`, which the trigger's `WHEN` skips;
//!   **`sessions_update_ordered`** (BEFORE UPDATE OF `revoked_at`, per statement) takes the
//!   writers' lock first, as for DELETE. A hand-written bulk update sends one notification per
//!   row; hosts handle that, if less efficiently than the registry's batches. A hand-written
//!   transaction that locks a row of `sessions` *before* such an update (an earlier `UPDATE` of
//!   another column, a `SELECT … FOR UPDATE`) takes the writers' lock after a row lock, the
//!   registry's order reversed, and may make a registry write wait and fail as busy: revoke in
//!   one statement, or take the lock first with `SELECT pg_advisory_xact_lock(hashtext('{s}'),
//!   1397948417)`.
//! - **`sessions_deleted`** (AFTER DELETE, per statement) logs every deleted live row as a
//!   revocation, and **`sessions_truncated`** (AFTER TRUNCATE) logs an empty id, which means
//!   "forget everything": rows removed by hand leave every host's cache as revoked ones do.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::registry::RegistryError;

/// The newest schema version this library creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The transaction-local setting with which the registry's own writers say that they log their
/// revocations themselves (see `sessions_revoked` in the module docs).
pub(crate) const SELF_LOGGED: &str = "sealed_sessions.self_logged";

/// The second half of the advisory lock keys (the first is a hash of the schema name): the
/// writers' lock, which orders every write transaction (see the module documentation).
pub(crate) const WRITE_LOCK: i32 = 0x5353_0001;
/// The cleanup task's lock: one host at a time.
pub(crate) const CLEANUP_LOCK: i32 = 0x5353_0002;
/// Migrations take this one.
const MIGRATE_LOCK: i32 = 0x5353_0003;

/// Whether `name` is a schema name this library accepts: a lowercase SQL identifier (so it needs
/// no quoting anywhere, the channel name included) of at most 50 bytes.
pub(crate) fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 50
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The channel on which `schema`'s revocations are announced.
pub(crate) fn channel(schema: &str) -> String {
    format!("{schema}_revocations")
}

/// The SQL of the current schema version in `schema` (a [`valid_schema_name`]): version 1, then
/// each migration.
pub(crate) fn schema_sql(schema: &str) -> String {
    let mut sql = version_1_sql(schema);
    for version in 2..=SCHEMA_VERSION {
        sql.push_str(&migration_sql(schema, version));
    }
    sql
}

/// The SQL that takes `schema` from `version - 1` to `version`.
fn migration_sql(schema: &str, version: i64) -> String {
    let s = schema;
    match version {
        2 => format!(
            r#"
-- Logged with the row's old id and expiry: what the hosts' caches hold. "Revoke and expire
-- now" in one UPDATE is a revocation too, and so is an expiry moved earlier.
CREATE FUNCTION {s}.log_revoked_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {s}.revocations (id, expires_at) VALUES (old.id, old.expires_at);
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_update_ordered BEFORE UPDATE OF revoked_at, expires_at, id, user_id
    ON {s}.sessions FOR EACH STATEMENT EXECUTE FUNCTION {s}.order_revocations();
CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at, expires_at, id, user_id
    ON {s}.sessions FOR EACH ROW
    WHEN (old.revoked_at IS NULL AND old.expires_at > now()
        AND (new.revoked_at IS NOT NULL OR new.expires_at < old.expires_at
            OR new.id <> old.id OR new.user_id <> old.user_id)
        AND current_setting('{SELF_LOGGED}', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {s}.log_revoked_session();
UPDATE {s}.meta SET value = '2' WHERE key = 'schema_version';
"#
        ),
        _ => unreachable!("no migration to schema version {version}"),
    }
}

/// The SQL of schema version 1.
fn version_1_sql(schema: &str) -> String {
    let s = schema;
    let channel = channel(schema);
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO {s}.meta (key, value) VALUES ('schema_version', '1'),
    ('incarnation', gen_random_uuid()::text);
CREATE TABLE {s}.sessions (
    id bytea PRIMARY KEY CHECK (length(id) = 16),
    user_id text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    revoked_at timestamptz,
    user_agent text,
    ip inet
) WITH (fillfactor = 90);
CREATE INDEX sessions_user_active ON {s}.sessions (user_id, created_at DESC)
    WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_at ON {s}.sessions (expires_at);
CREATE TABLE {s}.revocations (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revocations_expires_at ON {s}.revocations (expires_at);

CREATE FUNCTION {s}.order_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{s}'), {WRITE_LOCK});
    RETURN NULL;
END $$;
CREATE TRIGGER revocations_ordered BEFORE INSERT ON {s}.revocations
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.order_revocations();
-- A DELETE or TRUNCATE of sessions logs revocations (below): it takes the writers' lock before
-- it locks any row, as the registry's own writers do, so that it cannot deadlock with them.
CREATE TRIGGER sessions_delete_ordered BEFORE DELETE ON {s}.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.order_revocations();
CREATE TRIGGER sessions_truncate_ordered BEFORE TRUNCATE ON {s}.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.order_revocations();

CREATE FUNCTION {s}.notify_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    -- Counted before anything is built: a statement that logs a million rows must not build a
    -- million-entry string to find out that it is too long. 150 entries of at most 52 bytes
    -- stay under NOTIFY's 8,000.
    IF (SELECT count(*) FROM new_rows) > 150 THEN
        SELECT 'max:' || max(seq)::text INTO payload FROM new_rows;
    ELSE
        SELECT string_agg(seq::text || ':' || encode(id, 'hex'), ',' ORDER BY seq)
            INTO payload FROM new_rows;
    END IF;
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('{channel}', payload);
    RETURN NULL;
END $$;
CREATE TRIGGER revocations_notify AFTER INSERT ON {s}.revocations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_revocations();

CREATE FUNCTION {s}.log_deleted_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {s}.revocations (id, expires_at)
        SELECT id, expires_at FROM old_rows
        WHERE revoked_at IS NULL AND expires_at > now();
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_deleted AFTER DELETE ON {s}.sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.log_deleted_sessions();

CREATE FUNCTION {s}.log_truncated_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {s}.revocations (id, expires_at) VALUES ('\x'::bytea, 'infinity');
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON {s}.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.log_truncated_sessions();
"#
    )
}

/// Creates the schema if it is not there, or checks its version; in one transaction under an
/// advisory lock. With `create` false, only checks.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
    create: bool,
    server: &str,
) -> Result<(), RegistryError> {
    let err = |e| map_err(server, e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1), $2)",
        &[&schema, &MIGRATE_LOCK],
    )
    .await
    .map_err(err)?;
    if !table_exists(&tx, schema, "meta").await.map_err(err)? {
        if !create {
            return Err(RegistryError::MissingTable {
                path: server.into(),
                table: "meta",
            });
        }
        tx.batch_execute(&schema_sql(schema)).await.map_err(err)?;
    }
    let version: String = tx
        .query_one(
            &format!("SELECT value FROM {schema}.meta WHERE key = 'schema_version'"),
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    let found: i64 = version.parse().unwrap_or(i64::MAX);
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        if create {
            for version in found.max(1) + 1..=SCHEMA_VERSION {
                tx.batch_execute(&migration_sql(schema, version))
                    .await
                    .map_err(err)?;
            }
        } else {
            tracing::warn!(
                found,
                current = SCHEMA_VERSION,
                "the registry's schema is older than this library's: run the migrations \
                 (PostgresRegistry::schema_sql, or `sealed-sessions migrate`)"
            );
        }
    }
    for table in ["sessions", "revocations"] {
        if !table_exists(&tx, schema, table).await.map_err(err)? {
            return Err(RegistryError::MissingTable {
                path: server.into(),
                table,
            });
        }
    }
    tx.commit().await.map_err(err)
}

/// Whether `schema.table` exists.
pub(crate) async fn table_exists(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<bool, tokio_postgres::Error> {
    let name = format!("{schema}.{table}");
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await?;
    Ok(row.get(0))
}

/// Maps a driver error to the registry's error; `server` names the server (never a password).
pub(crate) fn map_err(server: &str, e: tokio_postgres::Error) -> RegistryError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            RegistryError::Backend(format!("{server}: {e}").into())
        }
        Some(code) if *code == SqlState::DISK_FULL => RegistryError::Full,
        Some(code) if *code == SqlState::READ_ONLY_SQL_TRANSACTION => {
            RegistryError::ReadOnly(server.into())
        }
        Some(code)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::QUERY_CANCELED =>
        {
            RegistryError::Busy
        }
        // The server's own message and code: the driver's Display says only "db error".
        Some(code) => RegistryError::Backend(
            match e.as_db_error() {
                Some(db) => format!("{server}: {} (SQLSTATE {})", db.message(), code.code()),
                None => format!("{server}: {e}"),
            }
            .into(),
        ),
        None => RegistryError::Unreachable {
            server: server.to_owned(),
            source: Box::new(e),
        },
    }
}

/// The error for a call that did not finish within `limit`.
pub(crate) fn timed_out(server: &str, limit: Duration) -> RegistryError {
    RegistryError::Unreachable {
        server: server.to_owned(),
        source: format!("no answer within {limit:?}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_lowercase_identifiers() {
        for ok in ["sealed_sessions", "_s", "app2_sessions"] {
            assert!(valid_schema_name(ok), "{ok}");
        }
        for bad in [
            "",
            "2x",
            "Sessions",
            "a-b",
            "a;drop",
            "a b",
            "é",
            &"x".repeat(51),
        ] {
            assert!(!valid_schema_name(bad), "{bad}");
        }
    }
}
