//! The thread behind [`PostgresRegistry`](super::PostgresRegistry): a current-thread tokio runtime
//! that owns the registry's connections and serves the handle's jobs.
//!
//! - **Writes** go to one writer task (`write_batch.rs`) that group-commits everything queued
//!   (up to `MAX_BATCH`) in one transaction. The transaction first takes the writers' lock
//!   (`writer.rs`, `schema.rs`), so every write of every host is serialised: the revocation
//!   log's order is commit order, and a rotation and a "sign out everywhere" on two hosts cannot
//!   both miss each other under READ COMMITTED. After the commit the cache is updated, and only
//!   then are the callers told. If a batch fails for a reason of the database's (a duplicate id,
//!   say), each of its operations is retried alone, so that one failing write fails alone. Each
//!   operation's SQL is in `write_ops.rs`.
//! - **Reads** (cache misses, listings) run on one reader connection (`reader.rs`), pipelined:
//!   each is a task.
//! - **Last-seen updates** are flushed every second in one `UPDATE … FROM unnest(…)`
//!   (`maintenance.rs`).
//! - **Cleanup** runs every `cleanup_interval` on one host at a time (a table lock taken with
//!   NOWAIT: the others skip their turn; `maintenance.rs`).
//! - **The listener** (`listener.rs`) has a connection of its own.
//!
//! Connections that break are reopened on the next use; until then, operations fail with
//! [`RegistryError::Unreachable`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::builder::{server_name, PostgresRegistryBuilder};
use super::job::Job;
use super::listener;
use super::operator;
use super::reader::Reader;
use super::schema::{migrate, timed_out, MIGRATION_LIMIT};
use super::shared::{shared_state, Shared};
use super::writer::Writer;
use crate::registry::RegistryError;

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
    let shared = Arc::new(shared_state(&config, server, pg)?);
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
        // Bounded by the migration's own limit: it may build an index (see `schema.rs`).
        let limit = MIGRATION_LIMIT + Duration::from_secs(1);
        tokio::time::timeout(
            limit,
            migrate(&mut writer, &shared.schema, create, &shared.server),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out(&shared.server, limit)))?;
        let writer = Writer::new(writer);
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
