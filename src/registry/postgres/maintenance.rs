//! The writer connection's periodic work: flushing the queued last-seen updates in one
//! `UPDATE … FROM unnest(…)`, and the cleanup of expired sessions, run every `cleanup_interval`
//! by one host at a time. The writer task's loop (`write_batch.rs`) ticks both.

use std::collections::HashMap;
use std::time::SystemTime;

use tokio_postgres::error::SqlState;

use super::schema::{cleanup_lock_sql, storable, write_lock_sql};
use super::shared::Shared;
use super::write_ops::delete_expired;
use super::writer::{write_transaction, Writer};
use crate::id::SessionId;
use crate::registry::RegistryError;

impl Writer {
    pub(super) async fn flush_touches(&mut self, shared: &Shared) {
        let touches = shared.touches.take();
        shared.metrics.pending_touches(touches.len());
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
            .map(|(id, at)| (id.as_bytes().to_vec(), storable(at)))
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
    pub(super) async fn cleanup(&mut self, shared: &Shared) {
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
                let deleted = delete_expired(tx.client(), shared, now).await?;
                tx.commit().await.map_err(&err)?;
                Ok(deleted)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(server = %shared.server, error = %e, "the registry's cleanup failed");
        }
    }
}
