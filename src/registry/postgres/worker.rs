//! The thread behind [`PostgresRegistry`](super::PostgresRegistry): a current-thread tokio runtime
//! that owns the registry's connections and serves the handle's jobs.
//!
//! - **Writes** go to one writer task that group-commits everything queued (up to
//!   [`MAX_BATCH`]) in one transaction. The transaction first takes the writers' lock
//!   (`schema.rs`), so every write of every host is serialised: the revocation log's order is
//!   commit order, and a rotation and a "sign out everywhere" on two hosts cannot both miss each
//!   other under READ COMMITTED. After the commit the cache is updated, and only then are the
//!   callers told. If a batch fails for a reason of the database's (a duplicate id, say), each
//!   of its operations is retried alone, so that one failing write fails alone.
//! - **Reads** (cache misses, listings) run on one reader connection, pipelined: each is a task.
//! - **Last-seen updates** are flushed every second in one `UPDATE … FROM unnest(…)`.
//! - **Cleanup** runs every `cleanup_interval` on one host at a time (a table lock taken with
//!   NOWAIT: the others skip their turn).
//! - **The listener** (`listener.rs`) has a connection of its own.
//!
//! Connections that break are reopened on the next use; until then, operations fail with
//! [`RegistryError::Unreachable`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::builder::{server_name, PostgresRegistryBuilder};
use super::job::{Job, Reply};
use super::listener;
use super::operator;
use super::schema::{cleanup_lock_sql, map_err, migrate, write_lock_sql, SELF_LOGGED};
use super::shared::{shared_state, Shared};
use crate::id::SessionId;
use crate::registry::ops::{after_commit, Outcome, WriteOp};
use crate::registry::touches::TOUCH_FLUSH;
use crate::registry::{cap_user_agent, RegistryError, SessionInfo};

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 512;

/// What a started registry's handle holds: the shared state, the job queue and the thread.
pub(crate) type Started = (Arc<Shared>, mpsc::UnboundedSender<Job>, JoinHandle<()>);

/// Starts the registry's thread and waits until it is connected, migrated and caught up.
pub(crate) fn spawn(config: PostgresRegistryBuilder) -> Result<Started, RegistryError> {
    let server = server_name(&config.url);
    // Its errors never quote the URL, which may hold a password.
    let mut pg = crate::registry::location::conninfo::config(&config.url)?;
    pg.application_name("sealed-sessions")
        .connect_timeout(config.connect_timeout)
        // A peer gone silent is noticed by the kernel too, not only by the timeouts.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .tcp_user_timeout(config.operation_timeout);
    let shared = Arc::new(shared_state(&config, server, pg));
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let (ready, ready_rx) = std::sync::mpsc::channel();
    let migrate_schema = config.migrate;
    let for_thread = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("sealed-sessions-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(RegistryError::Backend(Box::new(e))));
                    return;
                }
            };
            runtime.block_on(run(for_thread, jobs_rx, ready, migrate_schema));
        })
        .map_err(|e| RegistryError::Backend(Box::new(e)))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((shared, jobs, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(RegistryError::Backend(
                "the registry's thread ended while starting".into(),
            ))
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), RegistryError>>,
    create: bool,
) {
    let started = async {
        let mut writer = shared.connect().await?;
        shared
            .bounded(migrate(&mut writer, &shared.schema, create, &shared.server))
            .await?;
        let writer = Writer {
            client: Some(writer),
        };
        let reader = Reader::connect(&shared).await?;
        let (first, first_rx) = oneshot::channel();
        let (stop_listener, stop_rx) = oneshot::channel::<()>();
        let listening = tokio::spawn(listener::run(Arc::clone(&shared), first, stop_rx));
        match first_rx.await {
            Ok(Ok(())) => Ok((writer, reader, listening, stop_listener)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RegistryError::Backend(
                "the listener ended while starting".into(),
            )),
        }
    };
    let (writer, reader, listening, stop_listener) = match started.await {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));

    let (writes, writes_rx) = mpsc::unbounded_channel();
    let writing = tokio::spawn(writer.run(Arc::clone(&shared), writes_rx));
    let reader = Arc::new(reader);
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Write(op, reply) => {
                if let Err(mpsc::error::SendError((_, reply))) = writes.send((op, reply)) {
                    let _ = reply.send(Err(RegistryError::Stopped));
                }
            }
            Job::Validate {
                id,
                user_id,
                now,
                epoch,
                reply,
            } => {
                let (reader, shared) = (Arc::clone(&reader), Arc::clone(&shared));
                tokio::spawn(async move {
                    let answer = shared
                        .bounded(reader.validate(&shared, id, &user_id, now, epoch))
                        .await;
                    reader.reset_after(&answer).await;
                    let _ = reply.send(answer);
                });
            }
            Job::List {
                user_id,
                now,
                reply,
            } => {
                let (reader, shared) = (Arc::clone(&reader), Arc::clone(&shared));
                tokio::spawn(async move {
                    let answer = shared.bounded(reader.list(&shared, &user_id, now)).await;
                    reader.reset_after(&answer).await;
                    let _ = reply.send(answer);
                });
            }
            Job::Stats { now, reply } => {
                let (reader, shared) = (Arc::clone(&reader), Arc::clone(&shared));
                tokio::spawn(async move {
                    let answer = shared
                        .bounded(async {
                            let conn = reader.conn(&shared).await?;
                            operator::stats(&conn.client, &shared, now).await
                        })
                        .await;
                    let _ = reply.send(answer);
                });
            }
            Job::Check { reply } => {
                let (reader, shared) = (Arc::clone(&reader), Arc::clone(&shared));
                tokio::spawn(async move {
                    let answer = shared
                        .bounded(async {
                            let conn = reader.conn(&shared).await?;
                            operator::check(&conn.client, &shared).await
                        })
                        .await;
                    let _ = reply.send(answer);
                });
            }
            Job::Stop => break,
        }
    }
    // The writer finishes what is queued and writes the last touches.
    drop(writes);
    let _ = writing.await;
    let _ = stop_listener.send(());
    let _ = listening.await;
}

/// The reader connection and its prepared statements, reopened when it breaks.
struct Reader {
    conn: tokio::sync::Mutex<Option<Arc<ReadConn>>>,
}

struct ReadConn {
    client: Client,
    validate: Statement,
    list: Statement,
}

impl Reader {
    async fn connect(shared: &Shared) -> Result<Self, RegistryError> {
        let conn = ReadConn::open(shared).await?;
        Ok(Reader {
            conn: tokio::sync::Mutex::new(Some(Arc::new(conn))),
        })
    }

    /// Drops the connection after a read that got no answer: it may be silently dead (a
    /// dropped NAT entry, a stalled peer); the next read opens a new one.
    async fn reset_after(&self, answer: &Result<impl Sized, RegistryError>) {
        if matches!(answer, Err(RegistryError::Unreachable { .. })) {
            *self.conn.lock().await = None;
        }
    }

    async fn conn(&self, shared: &Shared) -> Result<Arc<ReadConn>, RegistryError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        *conn = None;
        let fresh = Arc::new(ReadConn::open(shared).await?);
        *conn = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    async fn validate(
        &self,
        shared: &Shared,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
        epoch: u64,
    ) -> Result<bool, RegistryError> {
        let conn = self.conn(shared).await?;
        let row = conn
            .client
            .query_opt(&conn.validate, &[&id.as_bytes().as_slice()])
            .await
            .map_err(shared.err())?;
        let Some(row) = row else {
            shared.cache.refuse(id, now);
            return Ok(false);
        };
        let (owner, expires, revoked, last_seen): (String, SystemTime, bool, SystemTime) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if revoked {
            shared.cache.refuse(id, now);
            return Ok(false);
        }
        // Expired at the caller's `now` is not remembered: see the SQLite registry.
        if now >= expires {
            return Ok(false);
        }
        // Another user's id is refused without remembering: the refusal would hold for the
        // owner too.
        let valid = owner == user_id;
        if valid {
            shared
                .cache
                .insert_if_current(epoch, id, &owner, expires, last_seen, now);
        }
        Ok(valid)
    }

    async fn list(
        &self,
        shared: &Shared,
        user_id: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, RegistryError> {
        let conn = self.conn(shared).await?;
        let rows = conn
            .client
            .query(&conn.list, &[&user_id, &now])
            .await
            .map_err(shared.err())?;
        let mut list: Vec<SessionInfo> = rows
            .iter()
            .filter_map(|row| {
                let id: Vec<u8> = row.get(0);
                Some(SessionInfo {
                    id: SessionId::from_bytes(id.try_into().ok()?),
                    created_at: row.get(1),
                    last_seen_at: row.get(2),
                    expires_at: row.get(3),
                    user_agent: row.get(4),
                    ip: row.get::<_, Option<IpAddr>>(5),
                })
            })
            .collect();
        shared.touches.merge_into(&mut list, micros);
        Ok(list)
    }
}

impl ReadConn {
    async fn open(shared: &Shared) -> Result<Self, RegistryError> {
        let client = shared.connect().await?;
        let s = &shared.schema;
        let prepared = async {
            let validate = client
                .prepare(&format!(
                    "SELECT user_id, expires_at, revoked_at IS NOT NULL, last_seen_at \
                     FROM {s}.sessions WHERE id = $1"
                ))
                .await?;
            let list = client
                .prepare(&format!(
                    "SELECT id, created_at, last_seen_at, expires_at, user_agent, ip \
                     FROM {s}.sessions WHERE user_id = $1 AND revoked_at IS NULL \
                     AND expires_at > $2 ORDER BY created_at DESC, id"
                ))
                .await?;
            Ok((validate, list))
        };
        let (validate, list) = shared
            .bounded(async { prepared.await.map_err(shared.err()) })
            .await?;
        Ok(ReadConn {
            client,
            validate,
            list,
        })
    }
}

/// What the server stores of a time: microseconds.
fn micros(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64),
        Err(_) => t,
    }
}

/// The writer connection; reopened before a batch when it broke.
struct Writer {
    client: Option<Client>,
}

impl Writer {
    async fn client(&mut self, shared: &Shared) -> Result<&mut Client, RegistryError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.client = Some(shared.connect().await?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| RegistryError::Backend("no writer connection".into()))
    }

    async fn run(
        mut self,
        shared: Arc<Shared>,
        mut rx: mpsc::UnboundedReceiver<(WriteOp, Reply<Outcome>)>,
    ) {
        let mut flush = tokio::time::interval(TOUCH_FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cleanup_every = Some(shared.cleanup_interval).filter(|d| !d.is_zero());
        let mut cleanup = tokio::time::interval(cleanup_every.unwrap_or(Duration::from_secs(3600)));
        cleanup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        cleanup.tick().await; // the first tick is immediate: clean up one interval from now
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    self.commit(&shared, batch).await;
                }
                _ = flush.tick() => self.flush_touches(&shared).await,
                _ = cleanup.tick(), if cleanup_every.is_some() => self.cleanup(&shared).await,
            }
        }
        self.flush_touches(&shared).await;
    }

    /// Commits `batch` in one transaction, or each operation alone if that fails for a
    /// reason of the database's; updates the cache, then replies.
    async fn commit(&mut self, shared: &Shared, batch: Vec<(WriteOp, Reply<Outcome>)>) {
        let ops: Vec<&WriteOp> = batch.iter().map(|(op, _)| op).collect();
        let results = match shared.bounded(self.transaction(shared, &ops)).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // Only an error of one operation's own (a duplicate id, a value the server refused)
            // is worth trying each alone; a lock timeout or an unreachable server would only
            // make every caller wait once per operation.
            Err(e @ (RegistryError::DuplicateId(_) | RegistryError::Backend(_)))
                if ops.len() > 1 =>
            {
                let mut results = Vec::with_capacity(ops.len());
                for op in &ops {
                    let alone = shared.bounded(self.transaction(shared, &[op])).await;
                    results.push(alone.and_then(|mut o| o.pop().ok_or_else(|| copy(&e))));
                }
                results
            }
            Err(e) => {
                if matches!(e, RegistryError::Unreachable { .. }) {
                    // A connection that timed out may be silently dead (a dropped NAT entry, a
                    // stalled peer): the next batch opens a new one.
                    self.client = None;
                }
                ops.iter().map(|_| Err(copy(&e))).collect()
            }
        };
        for ((op, reply), result) in batch.into_iter().zip(results) {
            if let Ok(outcome) = &result {
                after_commit(&shared.cache, &op, outcome, micros);
            }
            // The caller may have given up waiting; the write stands either way.
            let _ = reply.send(result);
        }
    }

    async fn transaction(
        &mut self,
        shared: &Shared,
        ops: &[&WriteOp],
    ) -> Result<Vec<Outcome>, RegistryError> {
        let err = shared.err();
        let client = self.client(shared).await?;
        let tx = write_transaction(client, shared).await?;
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            outcomes.push(apply(&tx, shared, op).await?);
        }
        tx.commit().await.map_err(&err)?;
        Ok(outcomes)
    }

    async fn flush_touches(&mut self, shared: &Shared) {
        let touches = shared.touches.take();
        if touches.is_empty() {
            return;
        }
        // Best effort, like the touches themselves: a failed flush drops them.
        let _ = shared.bounded(self.write_touches(shared, touches)).await;
    }

    async fn write_touches(
        &mut self,
        shared: &Shared,
        touches: HashMap<SessionId, SystemTime>,
    ) -> Result<(), RegistryError> {
        let (ids, seen): (Vec<Vec<u8>>, Vec<SystemTime>) = touches
            .into_iter()
            .map(|(id, at)| (id.as_bytes().to_vec(), at))
            .unzip();
        let s = &shared.schema;
        let err = shared.err();
        let client = self.client(shared).await?;
        // Under the writers' lock, as every write: its row locks must not cross theirs.
        let tx = write_transaction(client, shared).await?;
        tx.execute(
            &format!(
                "UPDATE {s}.sessions AS s SET last_seen_at = greatest(s.last_seen_at, t.seen) \
                 FROM unnest($1::bytea[], $2::timestamptz[]) AS t(id, seen) WHERE s.id = t.id"
            ),
            &[&ids, &seen],
        )
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)
    }

    /// Deletes expired sessions unless another host is at it (then this turn is skipped).
    async fn cleanup(&mut self, shared: &Shared) {
        let now = SystemTime::now();
        let result = shared
            .bounded(async {
                let err = shared.err();
                let client = self.client(shared).await?;
                let tx = client.transaction().await.map_err(&err)?;
                match tx.batch_execute(&cleanup_lock_sql(&shared.schema)).await {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(0),
                    Err(e) => return Err(err(e)),
                }
                // Then the writers' lock, as every write: the cleanup lock conflicts with no
                // writer's, so the two cannot wait for each other in a circle.
                tx.batch_execute(&write_lock_sql(&shared.schema))
                    .await
                    .map_err(&err)?;
                let deleted = delete_expired(&tx, shared, now).await?;
                tx.commit().await.map_err(&err)?;
                Ok(deleted)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(server = %shared.server, error = %e, "the registry's cleanup failed");
        }
    }
}

/// A transaction holding the writers' lock (see `schema.rs`), as every write of the registry
/// takes it first.
async fn write_transaction<'c>(
    client: &'c mut Client,
    shared: &Shared,
) -> Result<tokio_postgres::Transaction<'c>, RegistryError> {
    let err = shared.err();
    let tx = client.transaction().await.map_err(&err)?;
    // One round trip: the lock, and that this transaction logs its revocations itself, so that
    // the `sessions_revoked` trigger does not log them twice.
    tx.batch_execute(&format!(
        "{}; SELECT set_config('{SELF_LOGGED}', 'on', true)",
        write_lock_sql(&shared.schema)
    ))
    .await
    .map_err(&err)?;
    Ok(tx)
}

async fn delete_expired(
    tx: &tokio_postgres::Transaction<'_>,
    shared: &Shared,
    now: SystemTime,
) -> Result<u64, RegistryError> {
    let s = &shared.schema;
    let err = shared.err();
    let deleted = tx
        .execute(
            &format!("DELETE FROM {s}.sessions WHERE expires_at <= $1"),
            &[&now],
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
        &[&now],
    )
    .await
    .map_err(&err)?;
    Ok(deleted)
}

/// An `UPDATE {s}.sessions SET revoked_at ... RETURNING id, expires_at` wrapped so that the
/// rows it revoked are logged in the same statement; returns their ids.
async fn revoke_rows(
    tx: &tokio_postgres::Transaction<'_>,
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
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(SessionId::from_bytes(
                row.get::<_, Vec<u8>>(0).try_into().ok()?,
            ))
        })
        .collect())
}

async fn apply(
    tx: &tokio_postgres::Transaction<'_>,
    shared: &Shared,
    op: &WriteOp,
) -> Result<Outcome, RegistryError> {
    let s = &shared.schema;
    match op {
        WriteOp::Register { session, .. } => {
            insert(tx, shared, session, session.created_at).await?;
            let capped = cap_sessions(tx, shared, session).await?;
            Ok(Outcome::Registered { capped })
        }
        WriteOp::Rotate {
            user_id,
            old,
            session,
            ..
        } => {
            let old_bytes = old.as_bytes().as_slice();
            let now = session.created_at;
            let old_row = tx
                .query_opt(
                    &format!(
                        "WITH revoked AS (UPDATE {s}.sessions SET revoked_at = now() \
                         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL \
                         AND expires_at > $3 RETURNING id, expires_at, created_at), \
                         logged AS (INSERT INTO {s}.revocations (id, expires_at) \
                         SELECT id, expires_at FROM revoked) \
                         SELECT created_at FROM revoked"
                    ),
                    &[&old_bytes, user_id, &now],
                )
                .await
                .map_err(shared.err())?;
            let Some(old_row) = old_row else {
                return Ok(Outcome::Rotated(None));
            };
            // The same sign-in under a new id keeps its creation time: see the SQLite registry.
            insert(tx, shared, session, old_row.get(0)).await?;
            let capped = cap_sessions(tx, shared, session).await?;
            Ok(Outcome::Rotated(Some(capped)))
        }
        WriteOp::Revoke { user_id, id } => {
            let update = format!(
                "UPDATE {s}.sessions SET revoked_at = now() WHERE id = $1 \
                 AND revoked_at IS NULL AND ($2::text IS NULL OR user_id = $2)"
            );
            let id = id.as_bytes().as_slice();
            revoke_rows(tx, shared, &update, &[&id, user_id])
                .await
                .map(Outcome::Revoked)
        }
        WriteOp::RevokeUser { user_id, except } => {
            let update = format!(
                "UPDATE {s}.sessions SET revoked_at = now() WHERE user_id = $1 \
                 AND revoked_at IS NULL AND ($2::bytea IS NULL OR id <> $2)"
            );
            let except = except.map(|id| id.as_bytes().to_vec());
            let revoked = revoke_rows(tx, shared, &update, &[user_id, &except]).await?;
            // The user's sessions that another host revoked already are not in RETURNING, and
            // their notification may not have arrived: evict them too, so that when this
            // returns no session it covers is vouched for here (evicting early is safe).
            let elsewhere = tx
                .query(
                    &format!(
                        "SELECT id FROM {s}.sessions WHERE user_id = $1 \
                         AND revoked_at IS NOT NULL AND expires_at > now() \
                         AND ($2::bytea IS NULL OR id <> $2)"
                    ),
                    &[user_id, &except],
                )
                .await
                .map_err(shared.err())?;
            shared.cache.evict(elsewhere.iter().filter_map(|row| {
                Some(SessionId::from_bytes(
                    row.get::<_, Vec<u8>>(0).try_into().ok()?,
                ))
            }));
            Ok(Outcome::Revoked(revoked))
        }
        WriteOp::DeleteExpired { now } => {
            delete_expired(tx, shared, *now).await.map(Outcome::Deleted)
        }
    }
}

/// Inserts a new session's row, created at `created`, last seen at its `created_at`.
async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    shared: &Shared,
    session: &crate::registry::NewSession,
    created: SystemTime,
) -> Result<(), RegistryError> {
    let s = &shared.schema;
    let inserted = tx
        .execute(
            &format!(
                "INSERT INTO {s}.sessions (id, user_id, created_at, expires_at, last_seen_at, \
                 user_agent, ip) VALUES ($1, $2, $7, $4, $3, $5, $6)"
            ),
            &[
                &session.id.as_bytes().as_slice(),
                &session.user_id,
                &session.created_at,
                &session.expires_at,
                &session.user_agent.as_deref().map(cap_user_agent),
                &session.ip,
                &created,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(RegistryError::DuplicateId(session.id))
        }
        Err(e) => Err(map_err(&shared.server, e)),
    }
}

/// With a cap on sessions per user, revokes the user's oldest active sessions beyond it (never
/// the one just registered).
async fn cap_sessions(
    tx: &tokio_postgres::Transaction<'_>,
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
        &[&session.user_id, &id, &session.created_at, &cap],
    )
    .await
}

/// A copy of an error, for every operation of a failed batch.
fn copy(e: &RegistryError) -> RegistryError {
    match e {
        RegistryError::Unreachable { server, source } => RegistryError::Unreachable {
            server: server.clone(),
            source: source.to_string().into(),
        },
        RegistryError::Busy => RegistryError::Busy,
        RegistryError::Full => RegistryError::Full,
        RegistryError::Stopped => RegistryError::Stopped,
        RegistryError::DuplicateId(id) => RegistryError::DuplicateId(*id),
        // The inner error's own words, not its Display (which would repeat the prefix).
        RegistryError::Backend(source) => RegistryError::Backend(source.to_string().into()),
        other => RegistryError::Backend(other.to_string().into()),
    }
}
