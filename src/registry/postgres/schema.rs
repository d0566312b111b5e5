//! The PostgreSQL schema, its migrations, and how errors map to [`RegistryError`].
//!
//! Everything lives in one schema of its own (default `sealed_sessions`, see
//! [`schema`](super::PostgresRegistryBuilder::schema)); `{s}` below stands for its name.
//! Version 4, created or migrated (from version 1, 2 or 3) by [`migrate`] without any advisory
//! lock: see there. Shops that run their own migrations can apply the same SQL
//! (`PostgresRegistry::schema_sql` prints it for a schema name) and open with
//! [`migrate(false)`](super::PostgresRegistryBuilder::migrate).
//!
//! ```sql
//! CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
//! -- ('schema_version', '4'), ('incarnation', a random uuid: a replaced database has another)
//! CREATE TABLE {s}.sessions (id bytea PRIMARY KEY CHECK (length(id) = 16),
//!     user_id text NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
//!     last_seen_at timestamptz NOT NULL, revoked_at timestamptz, user_agent text, ip inet)
//!     WITH (fillfactor = 90);
//! CREATE INDEX ON {s}.sessions (user_id, created_at DESC) WHERE revoked_at IS NULL;
//! CREATE INDEX ON {s}.sessions (user_id) WHERE revoked_at IS NOT NULL;  -- version 4
//! CREATE INDEX ON {s}.sessions (expires_at);
//! CREATE TABLE {s}.revocations (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
//!     id bytea NOT NULL, expires_at timestamptz NOT NULL);
//! CREATE TABLE {s}.write_lock ();  -- version 3: no rows, only its lock
//! ```
//!
//! **The writers' lock** is `LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE`, held until commit.
//! Sequence numbers are handed out in insert order but transactions commit in any order, so
//! without it a host that has read up to seq 6542 can miss 6541 committed just after (measured
//! here: it happens with two writers). Under the lock, the rows of one transaction get their
//! numbers only once every earlier writer has committed, so commit order is sequence order and
//! "everything past my watermark" is complete. Taking it needs UPDATE (or DELETE, TRUNCATE) on
//! `write_lock`, which the owner has and the application role is granted (docs/registry.md,
//! "Who can do what"); an outsider with nothing but CONNECT is refused. (Versions 1 and 2 used
//! `pg_advisory_xact_lock(hashtext('{s}'), 1397948417)`, which any role that can connect could
//! take, and so stop every write.)
//!
//! **Lock order, to rule out deadlocks:** the writers' lock first, then row locks. The registry's
//! write transactions take it as their first statement; hand-written SQL takes it through the
//! triggers below, before the statement locks any row. A hand-written transaction that locks a
//! row of `sessions` *before* a statement that takes the writers' lock (an earlier `UPDATE` of
//! another column, a `SELECT … FOR UPDATE`) reverses the order and may make a registry write
//! wait and fail as busy: revoke in one statement, or take the lock first with
//! `LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE`. A TRUNCATE is the exception among single
//! statements: it locks `sessions` (ACCESS EXCLUSIVE) before its BEFORE trigger runs, so a
//! hand-written one must take the writers' lock first in the same transaction, or it and a
//! registry writer can deadlock (docs/registry.md). The cleanup takes its own lock
//! (`LOCK TABLE {s}.revocations IN SHARE UPDATE EXCLUSIVE MODE NOWAIT`, one host at a time)
//! before the writers' lock; no writer waits for it (it conflicts with neither ROW EXCLUSIVE nor
//! EXCLUSIVE on another table), so the two never wait for each other in a circle.
//!
//! The triggers:
//!
//! - **`revocations_ordered`** (BEFORE INSERT, per statement; and `sessions_delete_ordered`,
//!   `sessions_truncate_ordered` BEFORE DELETE or TRUNCATE of `sessions`, which log
//!   revocations) runs `order_revocations()`, which takes the writers' lock. As a trigger, it
//!   orders every writer, hand-written SQL included. It locks `write_lock` and not
//!   `revocations` itself: an INSERT holds ROW EXCLUSIVE on its table before its triggers run,
//!   and two inserts each upgrading that to EXCLUSIVE would deadlock.
//! - **`revocations_notify`** (AFTER INSERT, per statement, with a transition table) sends
//!   `seq:hexid,seq:hexid,...` on the channel `{s}_revocations`; past 150 entries (NOTIFY allows
//!   8,000 bytes) only `max:seq`, which means "read the log". Any role that can connect can
//!   send on that channel too: hosts take payloads as hints (`listener.rs`).
//! - **`sessions_revoked`** (version 2; AFTER UPDATE OF `revoked_at`, `expires_at`, `id` or
//!   `user_id`, per row, when a live row becomes revoked, expires earlier, or changes id or
//!   user) logs the row's old id and expiry as a revocation, so that a hand-written `UPDATE …
//!   SET revoked_at = now()` (or `expires_at = now()`, or both) reaches every host as the
//!   registry's own revocations do (version 1 left it unannounced: hosts vouched for the
//!   session from memory until it expired). The registry's
//!   own transactions log their revocations in one statement and mark themselves with the
//!   transaction-local setting `sealed_sessions.self_logged`, which the trigger's `WHEN` skips;
//!   **`sessions_update_ordered`** (BEFORE UPDATE OF those columns, per statement) takes the
//!   writers' lock first, as for DELETE. A hand-written bulk update sends one notification per
//!   row; hosts handle that, if less efficiently than the registry's batches.
//! - **`sessions_deleted`** (AFTER DELETE, per statement) logs every deleted row that is live
//!   by the server's clock (`now()`) as a revocation, and **`sessions_truncated`** (AFTER
//!   TRUNCATE) logs an empty id, which means "forget everything": rows removed by hand leave
//!   every host's cache as revoked ones do. `revoke_all` logs one such row per batch
//!   (`write_ops.rs`). So does a cleanup by a host whose clock runs ahead
//!   of the server's: what it deletes early is logged (see `delete_expired` in `write_ops.rs`).

use std::time::{Duration, SystemTime};

use tokio_postgres::error::SqlState;

use crate::registry::RegistryError;

/// The longest a migration's statements may run (the start-up that migrates waits as long):
/// building version 4's index takes ~0.9 s a million sessions on a small machine.
pub(crate) const MIGRATION_LIMIT: Duration = Duration::from_secs(600);

/// The newest schema version this library creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// The transaction-local setting with which the registry's own writers say that they log their
/// revocations themselves (see `sessions_revoked` in the module docs).
const SELF_LOGGED: &str = "sealed_sessions.self_logged";

/// The writers' lock on `schema`: the first statement of every write transaction (see the
/// module documentation).
pub(crate) fn write_lock_sql(schema: &str) -> String {
    format!("LOCK TABLE {schema}.write_lock IN EXCLUSIVE MODE")
}

/// What every write transaction of the registry runs first, in one message: the writers' lock,
/// and that this transaction logs its revocations itself, so that the `sessions_revoked`
/// trigger does not log them twice.
pub(crate) fn write_transaction_sql(schema: &str) -> String {
    format!(
        "{}; SELECT set_config('{SELF_LOGGED}', 'on', true)",
        write_lock_sql(schema)
    )
}

/// The cleanup's lock on `schema`: one host at a time, the others skip their turn. SHARE UPDATE
/// EXCLUSIVE conflicts with itself (and with VACUUM and ANALYZE, which only make a turn skip)
/// but not with the ROW EXCLUSIVE of writers or the ACCESS SHARE of readers.
pub(crate) fn cleanup_lock_sql(schema: &str) -> String {
    format!("LOCK TABLE {schema}.revocations IN SHARE UPDATE EXCLUSIVE MODE NOWAIT")
}

/// How many times a host that meets another creating the schema looks again.
const CREATE_ATTEMPTS: usize = 3;

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
-- version 2: hand-written updates of revoked_at (and expiry, id, user) are logged.
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
        3 => format!(
            r#"
-- version 3: the writers' lock is a lock on a table of the schema, which only roles granted
-- UPDATE on it can take (an advisory lock could be taken by any role that can connect).
CREATE TABLE {s}.write_lock ();
COMMENT ON TABLE {s}.write_lock IS
    'Holds no rows: every write transaction takes LOCK TABLE write_lock IN EXCLUSIVE MODE first.';
CREATE OR REPLACE FUNCTION {s}.order_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE {s}.write_lock IN EXCLUSIVE MODE;
    RETURN NULL;
END $$;
UPDATE {s}.meta SET value = '3' WHERE key = 'schema_version';
"#
        ),
        4 => format!(
            r#"
-- version 4: an index of a user's revoked sessions. "Sign out everywhere" reports the user's
-- sessions that other hosts revoked already, and no index covered revoked rows: that read was
-- a scan of the whole table under the writers' lock (8 ms at 100,000 rows, for every call).
-- Partial, as the index of active sessions is, so that queries of active sessions do not read
-- a user's revoked history. IF NOT EXISTS: an operator may build it beforehand with CREATE
-- INDEX CONCURRENTLY, so that the migration does not hold up writes while it builds; one that
-- such a build left invalid (it failed or was cancelled) is built again here; one still
-- being built is left to finish.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index
               WHERE indexrelid = to_regclass('{s}.sessions_user_revoked') AND NOT indisvalid)
       AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index
               WHERE index_relid = to_regclass('{s}.sessions_user_revoked'))
    THEN
        DROP INDEX {s}.sessions_user_revoked;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS sessions_user_revoked ON {s}.sessions (user_id)
    WHERE revoked_at IS NOT NULL;
UPDATE {s}.meta SET value = '4' WHERE key = 'schema_version';
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
        r#"-- version 1
CREATE SCHEMA IF NOT EXISTS {s};
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

-- Version 3 replaces this function: see there.
CREATE FUNCTION {s}.order_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{s}'), 1397948417);
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

/// Creates the schema if it is not there, migrates it if it is older (with `create`), and checks
/// it; without any advisory lock (any role that can connect could hold one).
///
/// The common case, a schema at the current version, reads one row and takes no lock. A fresh
/// schema is created in one transaction; a host that meets another creating it at the same
/// time fails on the catalog's unique names, and looks again. An older schema is migrated in
/// one transaction that first locks `meta` (which needs the owner's privileges) and reads the
/// version again under the lock, so that of hosts starting together one migrates and the
/// others find it done.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
    create: bool,
    server: &str,
) -> Result<(), RegistryError> {
    let err = |e| map_err(server, e);
    let mut attempt = 0;
    let found = loop {
        attempt += 1;
        if let Some(found) = version(client, schema).await.map_err(err)? {
            break found;
        }
        if !create {
            return Err(RegistryError::MissingTable {
                path: server.into(),
                table: "meta",
            });
        }
        let tx = client.transaction().await.map_err(err)?;
        let created = match tx.batch_execute(&schema_sql(schema)).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        match created {
            Ok(()) => break SCHEMA_VERSION,
            Err(e) if attempt < CREATE_ATTEMPTS && created_meanwhile(&e) => continue,
            Err(e) => return Err(err(e)),
        }
    };
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        if create {
            let tx = client.transaction().await.map_err(err)?;
            tx.batch_execute(&format!("LOCK TABLE {schema}.meta IN EXCLUSIVE MODE"))
                .await
                .map_err(|e| migration_refused(server, found, e))?;
            let found = version(&tx, schema).await.map_err(err)?.unwrap_or(found);
            // A migration may build an index (version 4: ~0.9 s a million sessions), longer
            // than the operation timeout that bounds everything else; waiting for a lock stays
            // bounded by it.
            tx.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}",
                MIGRATION_LIMIT.as_millis()
            ))
            .await
            .map_err(err)?;
            for version in found.max(1) + 1..=SCHEMA_VERSION {
                tx.batch_execute(&migration_sql(schema, version))
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
        } else {
            // Every older version lacks what writers need now (version 3's `write_lock`;
            // version 4's index of revoked sessions, without which every "sign out everywhere"
            // reads the whole table under the writers' lock), so the registry does not run on
            // it: say so, rather than a missing table or a slow write path.
            return Err(RegistryError::SchemaTooOld {
                found,
                required: SCHEMA_VERSION,
            });
        }
    }
    for table in ["sessions", "revocations", "write_lock"] {
        if !table_exists(client, schema, table).await.map_err(err)? {
            return Err(RegistryError::MissingTable {
                path: server.into(),
                table,
            });
        }
    }
    Ok(())
}

/// The schema's version, or `None` if it has no `meta` table (yet).
async fn version(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    if !table_exists(client, schema, "meta").await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!("SELECT value FROM {schema}.meta WHERE key = 'schema_version'"),
            &[],
        )
        .await?;
    // A version that does not parse is nothing this library wrote: newer than it knows.
    Ok(Some(row.map_or(i64::MAX, |row| {
        row.get::<_, String>(0).parse().unwrap_or(i64::MAX)
    })))
}

/// Whether creating the schema failed because another host created it (or its `meta` table)
/// first: the catalog's unique names make the later of two creators fail.
fn created_meanwhile(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::UNIQUE_VIOLATION,
            SqlState::DUPLICATE_SCHEMA,
            SqlState::DUPLICATE_TABLE,
            SqlState::DUPLICATE_OBJECT,
            SqlState::DUPLICATE_FUNCTION,
        ]
        .contains(code)
    })
}

/// The error for a migration the server refused to lock for: migrations need the owner.
fn migration_refused(server: &str, found: i64, e: tokio_postgres::Error) -> RegistryError {
    if e.code() != Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        return map_err(server, e);
    }
    RegistryError::Backend(
        format!(
            "{server}: the registry's schema is at version {found} and this library needs \
             {SCHEMA_VERSION}; migrating it needs the schema's owner (permission denied to this \
             role): run `sealed-sessions migrate` or open once as the owner"
        )
        .into(),
    )
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

/// `t` within what the server and the driver can hold: from 1970 to 200,000 years after it.
/// tokio-postgres converts a time to microseconds with an unchecked multiplication, which panics
/// (debug) or wraps (release) about 584,000 years out; PostgreSQL's own range ends in 294276.
/// A bound before 1970 or far in the future means the same to the registry as these limits.
pub(super) fn storable(t: SystemTime) -> SystemTime {
    const LATEST: Duration = Duration::from_secs(200_000 * 31_556_952);
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + since.min(LATEST),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// What the server stores of a time: microseconds.
pub(super) fn micros(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64),
        Err(_) => t,
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
