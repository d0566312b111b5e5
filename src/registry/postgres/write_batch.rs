//! The writer task: its loop, and the group commit of everything queued (up to [`MAX_BATCH`]
//! operations in one transaction, or each alone when the batch fails for a reason of the
//! database's), after which the cache is updated and only then are the callers told. The same
//! loop ticks the periodic work of `maintenance.rs`.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::mpsc;

use super::job::Reply;
use super::schema::micros;
use super::shared::Shared;
use super::statements::Statements;
use super::write_ops::{apply, pipelined};
use super::writer::Writer;
use crate::registry::ops::{after_commit, Outcome, WriteOp};
use crate::registry::touches::TOUCH_FLUSH;
use crate::registry::RegistryError;

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 512;

impl Writer {
    pub(super) async fn run(
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
                    shared.metrics.batch(batch.len());
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
        let (result, in_doubt) = self.attempt(shared, &ops).await;
        let results = match result {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // Only an error of one operation's own (a duplicate id, a value the server refused)
            // is worth trying each alone, and only once the batch is known to be rolled back
            // (a COMMIT whose answer never came may have committed it); a lock timeout or an
            // unreachable server would only make every caller wait once per operation.
            Err(e @ (RegistryError::DuplicateId(_) | RegistryError::Backend(_)))
                if ops.len() > 1 && !in_doubt =>
            {
                if matches!(e, RegistryError::Backend(_)) {
                    self.prepare_again();
                }
                let mut results = Vec::with_capacity(ops.len());
                for op in &ops {
                    let (alone, _) = self.attempt(shared, &[op]).await;
                    results.push(alone.and_then(|mut o| o.pop().ok_or_else(|| copy(&e))));
                }
                results
            }
            Err(e) => {
                if matches!(e, RegistryError::Unreachable { .. }) {
                    // A connection that timed out may be silently dead (a dropped NAT entry, a
                    // stalled peer): the next batch opens a new one.
                    self.reconnect();
                } else {
                    self.prepare_again();
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

    /// [`transaction`](Self::transaction) within the operation timeout; whether its end went
    /// unseen, in which case the connection has been dropped (see `Writer::in_doubt`).
    async fn attempt(
        &mut self,
        shared: &Shared,
        ops: &[&WriteOp],
    ) -> (Result<Vec<Outcome>, RegistryError>, bool) {
        let result = shared.bounded(self.transaction(shared, ops)).await;
        let in_doubt = self.drop_if_in_doubt(shared);
        (result, in_doubt)
    }

    /// Runs `ops` in one transaction under the writers' lock, pipelined: the `BEGIN` with the
    /// lock and every operation that is one prepared statement go out in the batch's order
    /// before any answer is awaited (see `statements.rs`), and the server runs a connection's
    /// messages in the order they come, so the lock is taken first and, once it is granted,
    /// the batch's statements run without waiting for this side. Any other operation waits for
    /// everything before it and runs alone, so the batch's order is the order its operations
    /// run in, whatever they are.
    ///
    /// The `COMMIT` goes out only once every answer is in and none failed (else a `ROLLBACK`):
    /// a batch given up on before then (the operation timeout) must not commit afterwards,
    /// since its callers are told it failed. Until that last answer is seen, the connection is
    /// in doubt, and a batch that ends in doubt closes it (`Writer::in_doubt`).
    async fn transaction(
        &mut self,
        shared: &Shared,
        ops: &[&WriteOp],
    ) -> Result<Vec<Outcome>, RegistryError> {
        let (client, statements, in_doubt) = self.prepared(shared).await?;
        *in_doubt = true;
        let (result, ended) = run(client, statements, shared, ops).await;
        *in_doubt = !ended;
        result
    }
}

/// The body of [`Writer::transaction`]: its result, and whether the transaction's end (the
/// answer to its `COMMIT` or `ROLLBACK`) was seen.
async fn run(
    client: &tokio_postgres::Client,
    statements: &Statements,
    shared: &Shared,
    ops: &[&WriteOp],
) -> (Result<Vec<Outcome>, RegistryError>, bool) {
    let err = shared.err();
    let mut begin = pin!(client.batch_execute(&statements.begin));
    let mut began = start(&mut begin).await;
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut failed = None;
    let mut rest = ops;
    while let Some(first) = rest.first() {
        let piped = rest.iter().take_while(|op| pipelined(op, shared)).count();
        if piped == 0 {
            // Answers are awaited in the order they come: tokio-postgres holds back every
            // answer behind one whose receiver is full (two chunks), so the lock's answer is
            // taken before any later statement's.
            if began.is_none() {
                began = Some(begin.as_mut().await);
            }
            match apply(client, shared, statements, first).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            rest = &rest[1..];
            continue;
        }
        let mut pending: Vec<_> = rest[..piped]
            .iter()
            .map(|op| Box::pin(apply(client, shared, statements, op)))
            .collect();
        let mut answered = Vec::with_capacity(piped);
        for op in &mut pending {
            answered.push(start(op).await);
        }
        if began.is_none() {
            began = Some(begin.as_mut().await);
        }
        for (op, answer) in pending.iter_mut().zip(answered) {
            let result = match answer {
                Some(result) => result,
                None => op.await,
            };
            match result {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if failed.is_some() {
            break;
        }
        rest = &rest[piped..];
    }
    // The lock's answer came first: if it failed, so did everything after it, and its error is
    // the one that says why.
    let began = match began {
        Some(result) => result,
        None => begin.as_mut().await,
    };
    let failed = match (began, failed) {
        (Err(e), _) => Some(err(e)),
        (Ok(()), failed) => failed,
    };
    match failed {
        None => match client.batch_execute("COMMIT").await {
            Ok(()) => (Ok(outcomes), true),
            // Committed or not: only the server knows (a connection lost on the way back, a
            // standby that never confirmed).
            Err(e) => (Err(err(e)), false),
        },
        Some(e) => {
            let ended = client.batch_execute("ROLLBACK").await.is_ok();
            (Err(e), ended)
        }
    }
}

/// Polls `future` once, which sends a statement's message (tokio-postgres sends it when the
/// future is first polled); its output if it is already done.
async fn start<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *future).poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
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
