//! The SQL of each write operation, run inside the writers' transaction (on its connection,
//! `tx`, which is in that transaction): registering (with the cap on sessions per user),
//! rotating, revoking (logged in the same statement) and deleting expired sessions. Its own
//! file because the batching (`write_batch.rs`) and the cleanup
//! (`maintenance.rs`) both call it, and it knows neither.

use std::time::SystemTime;

use super::schema::{map_err, storable};
use super::shared::Shared;
use super::statements::Statements;
use crate::id::SessionId;
use crate::registry::ops::{Outcome, WriteOp};
use crate::registry::{cap_user_agent, RegistryError};

pub(super) async fn delete_expired(
    tx: &tokio_postgres::Client,
    shared: &Shared,
    now: SystemTime,
) -> Result<u64, RegistryError> {
    let s = &shared.schema;
    let err = shared.err();
    let deleted = tx
        .execute(
            &format!("DELETE FROM {s}.sessions WHERE expires_at <= $1"),
            &[&storable(now)],
        )
        .await
        .map_err(&err)?;
    // A session that `now` calls expired but the server's clock calls live (this host's clock
    // runs ahead) was logged by `sessions_deleted`, so every host evicts it as after any
    // deletion. Entries of expired sessions can go: every cache refuses an expired session
    // anyway. Expired by both clocks, though: an entry the server's clock calls live may be
    // one a host cut off now still has to read (the deletion just logged among them). Nor the
    // newest: a log that ends before a host's watermark means "restored" to it.
    tx.execute(
        &format!(
            "DELETE FROM {s}.revocations WHERE expires_at <= least($1, now()) \
             AND seq < (SELECT max(seq) FROM {s}.revocations)"
        ),
        &[&storable(now)],
    )
    .await
    .map_err(&err)?;
    Ok(deleted)
}

/// An `UPDATE {s}.sessions SET revoked_at ... RETURNING id, expires_at` wrapped so that the
/// rows it revoked are logged in the same statement; returns their ids.
async fn revoke_rows(
    tx: &tokio_postgres::Client,
    shared: &Shared,
    update: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<SessionId>, RegistryError> {
    let s = &shared.schema;
    let rows = tx
        .query(
            &format!(
                "WITH revoked AS ({update} RETURNING id, expires_at) \
                 INSERT INTO {s}.revocations (id, expires_at) \
                 SELECT id, expires_at FROM revoked RETURNING id"
            ),
            params,
        )
        .await
        .map_err(shared.err())?;
    Ok(ids(&rows, |_| true))
}

/// Whether `op` runs as one prepared statement, sent before the batch's earlier operations have
/// answered (see `statements.rs`); others wait for those and run alone. With a cap on sessions
/// per user, a registration or rotation is two statements (the cap's second): which session the
/// cap keeps depends on what ran between them, so they run alone too, as on SQLite.
pub(super) fn pipelined(op: &WriteOp, shared: &Shared) -> bool {
    match op {
        WriteOp::Register { .. } | WriteOp::Rotate { .. } => shared.max_sessions_per_user.is_none(),
        WriteOp::Revoke { .. } | WriteOp::RevokeUser { .. } => true,
        _ => false,
    }
}

pub(super) async fn apply(
    tx: &tokio_postgres::Client,
    shared: &Shared,
    statements: &Statements,
    op: &WriteOp,
) -> Result<Outcome, RegistryError> {
    match op {
        WriteOp::Register { session, .. } => {
            let inserted = tx
                .execute(
                    &statements.register,
                    &[
                        &session.id.as_bytes().as_slice(),
                        &session.user_id,
                        &storable(session.created_at),
                        &storable(session.expires_at),
                        &storable(session.created_at),
                        &session.user_agent.as_deref().map(cap_user_agent),
                        &session.ip,
                    ],
                )
                .await;
            inserted.map_err(|e| insert_error(shared, session, e))?;
            let capped = cap_sessions(tx, shared, session).await?;
            Ok(Outcome::Registered { capped })
        }
        WriteOp::Rotate {
            user_id,
            old,
            session,
            ..
        } => {
            // One statement: the old id revoked (and logged) and the new one inserted only if
            // the old one was still active; the same sign-in under a new id keeps its creation
            // time (see the SQLite registry).
            // `query`, not `query_one`: once the server has run a statement of a pipelined
            // batch, nothing on this side may fail it (the batch's COMMIT may be on its way).
            let rows = tx
                .query(
                    &statements.rotate,
                    &[
                        &old.as_bytes().as_slice(),
                        user_id,
                        &storable(session.created_at),
                        &session.id.as_bytes().as_slice(),
                        &storable(session.expires_at),
                        &session.user_agent.as_deref().map(cap_user_agent),
                        &session.ip,
                    ],
                )
                .await
                .map_err(|e| insert_error(shared, session, e))?;
            if rows.first().is_none_or(|row| row.get::<_, i64>(0) == 0) {
                return Ok(Outcome::Rotated(None));
            }
            let capped = cap_sessions(tx, shared, session).await?;
            Ok(Outcome::Rotated(Some(capped)))
        }
        WriteOp::Revoke { user_id, id } => {
            let rows = tx
                .query(&statements.revoke, &[&id.as_bytes().as_slice(), user_id])
                .await
                .map_err(shared.err())?;
            Ok(Outcome::Revoked(ids(&rows, |_| true)))
        }
        WriteOp::RevokeUser {
            user_id,
            except,
            signed_in_before,
        } => {
            let except = except.map(|id| id.as_bytes().to_vec());
            let rows = tx
                .query(
                    &statements.revoke_user,
                    &[user_id, &except, &signed_in_before.map(storable)],
                )
                .await
                .map_err(shared.err())?;
            // The user's sessions that another host revoked already are not this statement's,
            // and their notification may not have arrived: evict them too, so that when this
            // returns no session it covers is vouched for here (evicting early is safe).
            shared.cache.evict(ids(&rows, |row| !row.get::<_, bool>(1)));
            Ok(Outcome::Revoked(ids(&rows, |row| row.get::<_, bool>(1))))
        }
        WriteOp::RevokeAll {
            signed_in_before,
            limit,
            after,
        } => {
            // One statement: the batch's revocations, and one log entry for all of them (an
            // empty id, which every host's listener takes as "forget every cached session",
            // kept until the last of them expires), so one notification, not one per session.
            // The cursor is the last picked row's place in the heap: a TID range scan reads on
            // from there (by id, each batch would fetch its rows from all over the heap). The
            // update finds the picked rows by id, not by that place: a row another transaction
            // updated meanwhile (an application's own `UPDATE` of its columns, which takes no
            // writers' lock) has moved, and PostgreSQL's re-check follows it by key but would
            // silently drop it by place. A batch that revoked fewer than it picked makes the
            // caller pass again from the start.
            let s = &shared.schema;
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let cursor = match after {
                Some(ctid) => String::from_utf8_lossy(ctid).into_owned(),
                None => "(0,0)".to_owned(),
            };
            let row = tx
                .query_one(
                    &format!(
                        "WITH picked AS (SELECT id, ctid FROM {s}.sessions \
                         WHERE ctid > $3::text::tid AND revoked_at IS NULL \
                         AND expires_at > now() \
                         AND ($1::timestamptz IS NULL OR created_at < $1) LIMIT $2), \
                         revoked AS (UPDATE {s}.sessions SET revoked_at = now() \
                         WHERE id IN (SELECT id FROM picked) AND revoked_at IS NULL \
                         RETURNING expires_at), \
                         logged AS (INSERT INTO {s}.revocations (id, expires_at) \
                         SELECT ''::bytea, max(expires_at) FROM revoked HAVING count(*) > 0) \
                         SELECT (SELECT count(*) FROM revoked), \
                         (SELECT max(ctid)::text FROM picked), (SELECT count(*) FROM picked)"
                    ),
                    &[&signed_in_before.map(storable), &limit, &cursor],
                )
                .await
                .map_err(shared.err())?;
            let last: Option<String> = row.get(1);
            Ok(Outcome::RevokedAll {
                revoked: row.get::<_, i64>(0).unsigned_abs(),
                picked: row.get::<_, i64>(2).unsigned_abs(),
                last: last.map(String::into_bytes),
            })
        }
        WriteOp::ForgetUser { user_id } => {
            // One statement; the `sessions_deleted` trigger logs the live rows as revoked (one
            // INSERT, one notification), as for any deletion. The user's rows are indexed in two
            // halves (active, revoked); the condition on `revoked_at`, always true, is what lets
            // the planner read both (a bitmap OR) instead of the whole table under the lock.
            let s = &shared.schema;
            let rows = tx
                .query(
                    &format!(
                        "DELETE FROM {s}.sessions WHERE user_id = $1 \
                         AND (revoked_at IS NULL OR revoked_at IS NOT NULL) RETURNING id"
                    ),
                    &[user_id],
                )
                .await
                .map_err(shared.err())?;
            Ok(Outcome::Forgotten(ids(&rows, |_| true)))
        }
        WriteOp::DeleteExpired { now } => {
            delete_expired(tx, shared, *now).await.map(Outcome::Deleted)
        }
    }
}

/// The session ids in the first column of the `rows` that `keep` keeps.
fn ids(
    rows: &[tokio_postgres::Row],
    keep: impl Fn(&tokio_postgres::Row) -> bool,
) -> Vec<SessionId> {
    rows.iter()
        .filter(|row| keep(row))
        .filter_map(|row| {
            Some(SessionId::from_bytes(
                row.get::<_, Vec<u8>>(0).try_into().ok()?,
            ))
        })
        .collect()
}

/// A failed insert of `session`'s row: a duplicate id, or the server's error.
fn insert_error(
    shared: &Shared,
    session: &crate::registry::NewSession,
    e: tokio_postgres::Error,
) -> RegistryError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        RegistryError::DuplicateId(session.id)
    } else {
        map_err(&shared.server, e)
    }
}

/// With a cap on sessions per user, revokes the user's oldest active sessions beyond it (never
/// the one just registered).
async fn cap_sessions(
    tx: &tokio_postgres::Client,
    shared: &Shared,
    session: &crate::registry::NewSession,
) -> Result<Vec<SessionId>, RegistryError> {
    let Some(cap) = shared.max_sessions_per_user else {
        return Ok(Vec::new());
    };
    let s = &shared.schema;
    let update = format!(
        "UPDATE {s}.sessions SET revoked_at = now() WHERE id IN (SELECT id FROM {s}.sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 \
         ORDER BY id = $2 DESC, created_at DESC, id OFFSET $4)"
    );
    let cap = i64::try_from(cap.get()).unwrap_or(i64::MAX);
    let id = session.id.as_bytes().as_slice();
    revoke_rows(
        tx,
        shared,
        &update,
        &[&session.user_id, &id, &storable(session.created_at), &cap],
    )
    .await
}
