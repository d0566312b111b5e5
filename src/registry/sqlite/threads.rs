//! The threads behind [`SqliteRegistry`](super::SqliteRegistry): one writer that group-commits,
//! a small pool of readers, and the poller that picks up other processes' revocations.
//!
//! Why dedicated threads rather than `tokio::task::spawn_blocking`: each thread keeps its own
//! connection and prepared statements (no per-call open or prepare), the registry works under any
//! executor, and the number of connections is fixed. Callers await a `tokio::sync::oneshot`
//! reply, which does not need a tokio runtime.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::schema::{forget_damage, from_ms, map_err, to_ms};
use super::shared::{id_of, Shared};
use crate::id::SessionId;
use crate::registry::freshness::Freshness;
use crate::registry::ops::{after_commit, Outcome, WriteOp};
use crate::registry::touches::TOUCH_FLUSH;
use crate::registry::{cap_user_agent, NewSession, RegistryError};

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 512;

impl Shared {
    fn err(&self) -> impl Fn(rusqlite::Error) -> RegistryError + '_ {
        move |e| map_err(&self.path, &e)
    }
}

type Reply = oneshot::Sender<Result<Outcome, RegistryError>>;

/// A message to the writer thread.
#[derive(Debug)]
pub(crate) enum WriteMsg {
    Op(WriteOp, Reply),
    /// From the poller: the files were replaced; reopen now rather than at the next write.
    Wake,
    Stop,
}

/// A read, given the reader's connection or why there is none.
pub(crate) type ReadJob = Box<dyn FnOnce(Result<&Connection, RegistryError>) + Send>;

/// A message to a reader thread.
pub(crate) enum ReadMsg {
    Job(ReadJob),
    Stop,
}

/// The writer: waits for work, takes everything queued (up to [`MAX_BATCH`]), commits it in one
/// transaction, updates the cache, and only then replies. Also flushes last-seen updates and runs
/// the periodic cleanup.
pub(crate) fn writer_loop(
    conn: Connection,
    shared: Arc<Shared>,
    rx: Receiver<WriteMsg>,
    cleanup_interval: Option<Duration>,
) {
    let mut conn = Some(conn);
    let mut next_flush = Instant::now() + TOUCH_FLUSH;
    let mut next_cleanup = cleanup_interval.map(|every| Instant::now() + every);
    loop {
        let deadline = next_cleanup.map_or(next_flush, |c| c.min(next_flush));
        let mut batch: Vec<(WriteOp, Option<Reply>)> = Vec::new();
        let mut stop = false;
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(WriteMsg::Op(op, reply)) => batch.push((op, Some(reply))),
            Ok(WriteMsg::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Ok(WriteMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
        }
        while !stop && !batch.is_empty() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(WriteMsg::Op(op, reply)) => batch.push((op, Some(reply))),
                Ok(WriteMsg::Wake) => {}
                Ok(WriteMsg::Stop) | Err(TryRecvError::Disconnected) => stop = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        if let (Some(due), Some(every)) = (next_cleanup, cleanup_interval) {
            if now >= due {
                let now = SystemTime::now();
                batch.push((WriteOp::DeleteExpired { now }, None));
                next_cleanup = Some(Instant::now() + every);
            }
        }
        let touches = if stop || now >= next_flush {
            next_flush = now + TOUCH_FLUSH;
            let touches = shared.touches.take();
            shared.metrics.pending_touches(touches.len());
            touches
        } else {
            HashMap::new()
        };
        // Checked at every wake-up (at least every TOUCH_FLUSH), not only when there is work.
        match shared.writer_connection(&mut conn) {
            Ok(conn) if !batch.is_empty() || !touches.is_empty() => {
                shared.metrics.batch(batch.len());
                commit_batch(conn, &shared, batch, touches);
            }
            Ok(_) => {}
            Err(e) => {
                // Queued last-seen updates are dropped: they are best effort.
                for (_, reply) in batch {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(same_error(&e)));
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}

fn commit_batch(
    conn: &mut Connection,
    shared: &Shared,
    batch: Vec<(WriteOp, Option<Reply>)>,
    touches: HashMap<SessionId, SystemTime>,
) {
    let mut results = Vec::with_capacity(batch.len());
    let committed = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (op, _) in &batch {
            // A savepoint per operation: one failing write (a duplicate id) fails alone.
            let sp = tx.savepoint()?;
            let result = apply(&sp, op, shared);
            if result.is_ok() {
                sp.commit()?;
            }
            results.push(result);
        }
        write_touches(&tx, touches)?;
        tx.commit()
    })();
    let failure = committed.err().map(|e| map_err(&shared.path, &e));
    if let Some(e) = failure
        .as_ref()
        .or(results.iter().find_map(|r| r.as_ref().err()))
    {
        forget_damage(conn, e);
    }
    for ((op, reply), result) in batch.into_iter().zip(
        results
            .into_iter()
            .map(Some)
            .chain(std::iter::repeat_with(|| None)),
    ) {
        let result = match (&failure, result) {
            (Some(e), _) => Err(same_error(e)),
            (None, Some(result)) => result,
            (None, None) => Err(RegistryError::Backend("the write was not applied".into())),
        };
        if let Ok(outcome) = &result {
            after_commit(&shared.cache, &op, outcome, |t| from_ms(to_ms(t)));
        }
        if let Some(reply) = reply {
            // The caller may have given up waiting; the write stands either way.
            let _ = reply.send(result);
        }
    }
}

/// A copy of an error for every operation of a failed group commit.
fn same_error(e: &RegistryError) -> RegistryError {
    match e {
        RegistryError::NotADatabase(p) => RegistryError::NotADatabase(p.clone()),
        RegistryError::Corrupt(p) => RegistryError::Corrupt(p.clone()),
        RegistryError::ReadOnly(p) => RegistryError::ReadOnly(p.clone()),
        RegistryError::CannotOpen { path, source } => RegistryError::CannotOpen {
            path: path.clone(),
            source: source.to_string().into(),
        },
        RegistryError::MissingDirectory(p) => RegistryError::MissingDirectory(p.clone()),
        RegistryError::Replaced(p) => RegistryError::Replaced(p.clone()),
        RegistryError::Busy => RegistryError::Busy,
        RegistryError::Full => RegistryError::Full,
        other => RegistryError::Backend(other.to_string().into()),
    }
}

fn apply(tx: &Connection, op: &WriteOp, shared: &Shared) -> Result<Outcome, RegistryError> {
    let err = shared.err();
    match op {
        WriteOp::Register { session, .. } => {
            insert(tx, shared, session, to_ms(session.created_at))?;
            let capped = cap_sessions(tx, shared, session)?;
            Ok(Outcome::Registered { capped })
        }
        WriteOp::Rotate {
            user_id,
            old,
            session,
            ..
        } => {
            // The check and the revocation are one statement, and the insert follows in the
            // same transaction: a revocation committed before this sees the old id revoked,
            // one committed after revokes the new id too.
            let now = to_ms(session.created_at);
            let old_row: Option<(i64, i64)> = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 \
                     AND revoked_at IS NULL AND expires_at > ?3 RETURNING expires_at, created_at",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![old.as_bytes(), user_id, now], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
                })
                .map_err(&err)?;
            let Some((expires, created)) = old_row else {
                return Ok(Outcome::Rotated(None));
            };
            log_revocation(tx, *old, expires).map_err(&err)?;
            // The same sign-in under a new id: it keeps its creation time (for the devices page,
            // and so that renewing never makes a session the newest for the per-user cap).
            insert(tx, shared, session, created)?;
            let capped = cap_sessions(tx, shared, session)?;
            Ok(Outcome::Rotated(Some(capped)))
        }
        WriteOp::Revoke { user_id, id } => {
            let expires: Option<i64> = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3 WHERE id = ?1 AND revoked_at IS NULL \
                     AND (?2 IS NULL OR user_id = ?2) RETURNING expires_at",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(
                        params![id.as_bytes(), user_id, to_ms(SystemTime::now())],
                        |row| row.get(0),
                    )
                    .optional()
                })
                .map_err(&err)?;
            let Some(expires) = expires else {
                return Ok(Outcome::Revoked(Vec::new()));
            };
            log_revocation(tx, *id, expires).map_err(&err)?;
            Ok(Outcome::Revoked(vec![*id]))
        }
        WriteOp::RevokeUser {
            user_id,
            except,
            signed_in_before,
        } => {
            let except = except.as_ref().map(|id| id.as_bytes().to_vec());
            let now = to_ms(SystemTime::now());
            let revoked = revoke_rows(
                tx,
                shared,
                "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 \
                 AND revoked_at IS NULL AND (?2 IS NULL OR id <> ?2) \
                 AND (?4 IS NULL OR created_at < ?4) RETURNING id, expires_at",
                params![user_id, except, now, signed_in_before.map(to_ms)],
            )?;
            // The user's sessions that another process revoked already are not in RETURNING,
            // and the poller may not have brought their news yet: evict them too, so that when
            // this returns no session it covers is vouched for here (evicting early is safe).
            let elsewhere = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NOT NULL \
                         AND expires_at > ?3 AND (?2 IS NULL OR id <> ?2)",
                    )
                    .map_err(&err)?;
                let rows = stmt
                    .query_map(params![user_id, except, now], |row| {
                        Ok(id_of(row.get_ref(0)?.as_blob().ok()))
                    })
                    .map_err(&err)?;
                let mut ids = Vec::new();
                for row in rows {
                    ids.extend(row.map_err(&err)?);
                }
                ids
            };
            shared.cache.evict(elsewhere);
            Ok(Outcome::Revoked(revoked))
        }
        WriteOp::RevokeAll {
            signed_in_before,
            limit,
            after,
        } => {
            let now = to_ms(SystemTime::now());
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            // The cursor is the last id revoked (the table's key); an empty blob sorts first.
            let after = after.as_deref().unwrap_or_default();
            let (mut revoked, mut last) = (0u64, None);
            {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE sessions SET revoked_at = ?1 WHERE id IN (SELECT id FROM sessions \
                         WHERE id > ?4 AND revoked_at IS NULL AND expires_at > ?1 \
                         AND (?2 IS NULL OR created_at < ?2) ORDER BY id LIMIT ?3) RETURNING id",
                    )
                    .map_err(&err)?;
                let params = params![now, signed_in_before.map(to_ms), limit, after];
                let mut rows = stmt.query(params).map_err(&err)?;
                while let Some(row) = rows.next().map_err(&err)? {
                    revoked += 1;
                    let id = row.get_ref(0).map_err(&err)?.as_blob().ok();
                    last = last.max(id.map(<[u8]>::to_vec));
                }
            }
            if revoked > 0 {
                // One entry for the batch, not one per session: an empty id, which every
                // process's poller takes as "forget every cached session". Kept until the last
                // session that may be cached expires.
                tx.prepare_cached(
                    "INSERT INTO revocations (id, expires_at) \
                     SELECT x'', coalesce(max(expires_at), ?1) FROM sessions",
                )
                .and_then(|mut stmt| stmt.execute([now]))
                .map_err(&err)?;
            }
            // One writer: every row it picked is still active when it revokes it.
            Ok(Outcome::RevokedAll {
                revoked,
                picked: revoked,
                last,
            })
        }
        WriteOp::ForgetUser { user_id } => {
            // One statement; the `sessions_deleted` trigger logs the live rows as revoked, as
            // for any deletion, so that every process evicts them.
            let mut stmt = tx
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 RETURNING id")
                .map_err(&err)?;
            let rows = stmt
                .query_map([user_id], |row| Ok(id_of(row.get_ref(0)?.as_blob().ok())))
                .map_err(&err)?;
            let mut ids = Vec::new();
            for row in rows {
                ids.extend(row.map_err(&err)?);
            }
            Ok(Outcome::Forgotten(ids))
        }
        WriteOp::DeleteExpired { now } => {
            let now = to_ms(*now);
            let deleted = tx
                .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .and_then(|mut stmt| stmt.execute([now]))
                .map_err(&err)?;
            // A session that `now` calls expired but the system clock calls live (a `now` ahead
            // of it) was logged by `sessions_deleted`, so every process evicts it as after any
            // deletion. Entries of expired sessions can go: every cache refuses an expired
            // session anyway. Expired by both clocks, though, so that those just logged stay.
            tx.prepare_cached(
                "DELETE FROM revocations WHERE expires_at <= \
                 min(?1, CAST(strftime('%s', 'now') AS INTEGER) * 1000)",
            )
            .and_then(|mut stmt| stmt.execute([now]))
            .map_err(&err)?;
            Ok(Outcome::Deleted(deleted as u64))
        }
    }
}

/// Inserts a new session's row, created at `created` (ms), last seen at its `created_at`.
fn insert(
    tx: &Connection,
    shared: &Shared,
    session: &NewSession,
    created: i64,
) -> Result<(), RegistryError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, \
             user_agent, ip) VALUES (?1, ?2, ?7, ?4, ?3, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                session.id.as_bytes(),
                session.user_id,
                to_ms(session.created_at),
                to_ms(session.expires_at),
                session.user_agent.as_deref().map(cap_user_agent),
                session.ip.map(|ip| ip.to_string()),
                created,
            ])
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            Err(RegistryError::DuplicateId(session.id))
        }
        Err(e) => Err(map_err(&shared.path, &e)),
    }
}

/// With a cap on sessions per user, revokes the user's oldest active sessions beyond it (never
/// the one just registered) and returns their ids.
fn cap_sessions(
    tx: &Connection,
    shared: &Shared,
    session: &NewSession,
) -> Result<Vec<SessionId>, RegistryError> {
    let Some(cap) = shared.max_sessions_per_user else {
        return Ok(Vec::new());
    };
    revoke_rows(
        tx,
        shared,
        "UPDATE sessions SET revoked_at = ?3 WHERE id IN (SELECT id FROM sessions \
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?3 \
         ORDER BY id = ?2 DESC, created_at DESC, id LIMIT -1 OFFSET ?4) \
         RETURNING id, expires_at",
        params![
            session.user_id,
            session.id.as_bytes(),
            to_ms(session.created_at),
            i64::try_from(cap.get()).unwrap_or(i64::MAX)
        ],
    )
}

/// Runs `update`, an `UPDATE sessions SET revoked_at ... RETURNING id, expires_at`, logs every
/// row it revoked, and returns their ids.
fn revoke_rows(
    tx: &Connection,
    shared: &Shared,
    update: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<SessionId>, RegistryError> {
    let err = shared.err();
    let revoked: Vec<(SessionId, i64)> = {
        let mut stmt = tx.prepare_cached(update).map_err(&err)?;
        let rows = stmt
            .query_map(params, |row| {
                Ok((id_of(row.get_ref(0)?.as_blob().ok()), row.get(1)?))
            })
            .map_err(&err)?;
        let mut revoked = Vec::new();
        for row in rows {
            if let (Some(id), expires) = row.map_err(&err)? {
                revoked.push((id, expires));
            }
        }
        revoked
    };
    for &(id, expires) in &revoked {
        log_revocation(tx, id, expires).map_err(&err)?;
    }
    Ok(revoked.into_iter().map(|(id, _)| id).collect())
}

fn log_revocation(tx: &Connection, id: SessionId, expires: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO revocations (id, expires_at) VALUES (?1, ?2)")?
        .execute(params![id.as_bytes(), expires])
        .map(drop)
}

fn write_touches(tx: &Connection, touches: HashMap<SessionId, SystemTime>) -> rusqlite::Result<()> {
    if touches.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached("UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1")?;
    for (id, seen) in touches {
        stmt.execute(params![id.as_bytes(), to_ms(seen)])?;
    }
    Ok(())
}

/// A reader: runs read jobs on its own connection until told to stop.
pub(crate) fn reader_loop(
    conn: Connection,
    shared: Arc<Shared>,
    rx: Arc<Mutex<Receiver<ReadMsg>>>,
) {
    let mut conn = Some(conn);
    let mut generation = shared.generation.load(std::sync::atomic::Ordering::SeqCst);
    loop {
        let msg = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        match msg {
            Ok(ReadMsg::Job(job)) => job(shared.reader_connection(&mut conn, &mut generation)),
            Ok(ReadMsg::Stop) | Err(_) => return,
        }
    }
}

/// The poller: every `interval`, picks up revocations committed by other connections, and checks
/// that the path still names the registry's files (waking the writer to reopen them if not).
pub(crate) fn poller_loop(
    shared: Arc<Shared>,
    stop: Receiver<()>,
    interval: Duration,
    writer: Sender<WriteMsg>,
) {
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        if shared.file_replaced() {
            let _ = writer.send(WriteMsg::Wake);
            continue;
        }
        // A failed poll (the file is briefly locked) is retried at the next tick. Until one
        // succeeds, the confirmation ages, and past the staleness bound cached answers give way
        // to reads of the table, which fail closed if it cannot be read.
        match shared.sync_revocations() {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(path = %shared.path.display(), "the registry's revocation log is readable again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                let bound = shared.freshness.as_ref().map(Freshness::bound);
                tracing::warn!(
                    path = %shared.path.display(),
                    error = %e,
                    staleness_bound = ?bound,
                    "cannot read the registry's revocation log; cached sessions are trusted until the staleness bound, then checked in the table"
                );
            }
            Err(_) => {}
        }
    }
}
