//! The writer's statements, prepared once per connection: what lets a batch be pipelined.
//!
//! A batch holds the writers' lock from its `LOCK TABLE` to its `COMMIT` (`writer.rs`), and
//! every host's writes wait for it meanwhile. Sent as text, each operation cost two round trips
//! under the lock (tokio-postgres prepares a text statement before it runs it), and the batch's
//! operations ran one after another: a batch of 64 sign-outs everywhere held the lock for some
//! 200 round trips. Prepared once per connection, each operation is one message that
//! tokio-postgres sends when its future is first polled, so the batch sends its `BEGIN` with the
//! lock and every operation in its order before awaiting any answer (`write_batch.rs`), and the
//! server runs them in that order: once the lock is granted, the batch's statements run without
//! a round trip to the host, whatever its size; the `COMMIT` follows their answers.
//!
//! Each operation is one statement so that the order it is sent in is the order it runs in, and
//! no other operation of the batch can run between two of its parts: the rotation revokes the
//! old id and inserts the new one in one statement (a `revoke_user` of the same user sent in the
//! same batch runs wholly before it, and the rotation then finds the old id revoked, or wholly
//! after it, and revokes the new one), and `revoke_user` reports in the same statement the
//! user's sessions that other hosts revoked already (the query reads the snapshot from before its
//! own update). With a cap on sessions per user, a registration or rotation is followed by the
//! cap's own statement, and which session the cap keeps depends on what ran between the two: so
//! with a cap they are not pipelined but run alone, in the batch's order, as on SQLite
//! (`write_ops::pipelined`).

use tokio_postgres::{Client, Statement};

use super::schema::write_transaction_sql;
use super::shared::Shared;
use crate::registry::RegistryError;

/// The writer's prepared statements, for one connection.
pub(super) struct Statements {
    /// The batch's first message, as text: `BEGIN` and what every write transaction runs first
    /// (`schema::write_transaction_sql`).
    pub(super) begin: String,
    /// `$1` id, `$2` user, `$3` created (the row's sign-in time), `$4` expires, `$5` last seen,
    /// `$6` user agent, `$7` address.
    pub(super) register: Statement,
    /// `$1` old id, `$2` user, `$3` now (the new row's last seen), `$4` new id, `$5` expires,
    /// `$6` user agent, `$7` address; one row: how many sessions it inserted (0: the old id
    /// was no longer active, nothing changed).
    pub(super) rotate: Statement,
    /// `$1` id, `$2` user or null; the ids revoked.
    pub(super) revoke: Statement,
    /// `$1` user, `$2` the id to keep or null, `$3` only those signed in before, or null;
    /// rows of (id, revoked by this statement).
    pub(super) revoke_user: Statement,
}

impl Statements {
    pub(super) async fn prepare(client: &Client, shared: &Shared) -> Result<Self, RegistryError> {
        let s = &shared.schema;
        let prepare = |sql: String| async move { client.prepare(&sql).await.map_err(shared.err()) };
        Ok(Statements {
            begin: format!("BEGIN; {}", write_transaction_sql(s)),
            register: prepare(format!(
                "INSERT INTO {s}.sessions (id, user_id, created_at, expires_at, last_seen_at, \
                 user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .await?,
            rotate: prepare(format!(
                "WITH revoked AS (UPDATE {s}.sessions SET revoked_at = now() \
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
                 RETURNING id, expires_at, created_at), \
                 logged AS (INSERT INTO {s}.revocations (id, expires_at) \
                 SELECT id, expires_at FROM revoked), \
                 inserted AS (INSERT INTO {s}.sessions (id, user_id, created_at, expires_at, \
                 last_seen_at, user_agent, ip) \
                 SELECT $4, $2, created_at, $5, $3, $6, $7 FROM revoked RETURNING 1) \
                 SELECT count(*) FROM inserted"
            ))
            .await?,
            revoke: prepare(format!(
                "WITH revoked AS (UPDATE {s}.sessions SET revoked_at = now() WHERE id = $1 \
                 AND revoked_at IS NULL AND ($2::text IS NULL OR user_id = $2) \
                 RETURNING id, expires_at) \
                 INSERT INTO {s}.revocations (id, expires_at) \
                 SELECT id, expires_at FROM revoked RETURNING id"
            ))
            .await?,
            revoke_user: prepare(format!(
                "WITH revoked AS (UPDATE {s}.sessions SET revoked_at = now() WHERE user_id = $1 \
                 AND revoked_at IS NULL AND ($2::bytea IS NULL OR id <> $2) \
                 AND ($3::timestamptz IS NULL OR created_at < $3) \
                 RETURNING id, expires_at), \
                 logged AS (INSERT INTO {s}.revocations (id, expires_at) \
                 SELECT id, expires_at FROM revoked) \
                 SELECT id, true FROM revoked \
                 UNION ALL \
                 SELECT id, false FROM {s}.sessions WHERE user_id = $1 \
                 AND revoked_at IS NOT NULL AND expires_at > now() \
                 AND ($2::bytea IS NULL OR id <> $2) \
                 AND ($3::timestamptz IS NULL OR created_at < $3)"
            ))
            .await?,
        })
    }
}
