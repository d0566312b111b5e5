//! The read path: the reader connection, its prepared statements, and the reads it serves
//! (a cache miss's validation, a user's list). Reopened on the next read when it breaks, or
//! after a read that got no answer. Its own file because reads share nothing with the writer
//! task but [`Shared`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio_postgres::{Client, Statement};

use super::schema::{micros, storable};
use super::shared::Shared;
use crate::id::SessionId;
use crate::registry::{RegistryError, SessionInfo};

/// The reader connection and its prepared statements, reopened when it breaks.
pub(super) struct Reader {
    conn: tokio::sync::Mutex<Option<Arc<ReadConn>>>,
}

pub(super) struct ReadConn {
    pub(super) client: Client,
    validate: Statement,
    list: Statement,
}

impl Reader {
    pub(super) async fn connect(shared: &Shared) -> Result<Self, RegistryError> {
        let conn = ReadConn::open(shared).await?;
        Ok(Reader {
            conn: tokio::sync::Mutex::new(Some(Arc::new(conn))),
        })
    }

    /// Drops the connection after a read that got no answer: it may be silently dead (a
    /// dropped NAT entry, a stalled peer); the next read opens a new one.
    pub(super) async fn reset_after(&self, answer: &Result<impl Sized, RegistryError>) {
        if matches!(answer, Err(RegistryError::Unreachable { .. })) {
            *self.conn.lock().await = None;
        }
    }

    pub(super) async fn conn(&self, shared: &Shared) -> Result<Arc<ReadConn>, RegistryError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        *conn = None;
        let fresh = Arc::new(ReadConn::open(shared).await?);
        *conn = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    pub(super) async fn validate(
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

    pub(super) async fn list(
        &self,
        shared: &Shared,
        user_id: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, RegistryError> {
        let conn = self.conn(shared).await?;
        let rows = conn
            .client
            .query(&conn.list, &[&user_id, &storable(now)])
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
