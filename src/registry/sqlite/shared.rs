//! The state that [`SqliteRegistry`](super::SqliteRegistry) shares with its threads
//! ([`Shared`]), and the connection that follows the revocation log ([`SyncState`]).
//!
//! Its own file, below the threads (`threads.rs`) and the reopening of replaced files
//! (`reopen.rs`): both work on this state, and neither needs the other, so that every import
//! between the three points one way. Following the log lives here because the handle (strict
//! mode, `sync_revocations`), the poller and a reopen all use it.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;

use super::file::{Access, Identity};
use super::schema::{forget_damage, from_ms, map_err};
use crate::id::SessionId;
use crate::registry::cache::ValidationCache;
use crate::registry::freshness::Freshness;
use crate::registry::touches::TouchQueue;
use crate::registry::RegistryError;
use crate::telemetry::registry::RegistryMetrics;

/// State shared by the registry handle and its threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) path: PathBuf,
    pub(crate) cache: ValidationCache,
    pub(crate) touches: TouchQueue,
    pub(crate) sync: Mutex<SyncState>,
    pub(crate) strict: bool,
    pub(crate) stopped: AtomicBool,
    pub(crate) busy_timeout: Duration,
    /// Whether connections may create and migrate the file, or only use a registry as it is.
    pub(crate) access: Access,
    /// What the path named when the connections were (re)opened; see `reopen.rs`.
    pub(crate) identity: Mutex<Identity>,
    /// Set when the files were found replaced, cleared when the writer has reopened them.
    pub(crate) stale: AtomicBool,
    /// Bumped at every reopen; a reader whose connection is older reopens it.
    pub(crate) generation: AtomicU64,
    /// When the revocation log was last confirmed read to its end; `None` when nothing polls
    /// it (the cache is then trusted without a bound: see `poll_interval`).
    pub(crate) freshness: Option<Freshness>,
    /// The most active sessions a user may have; registering one more revokes the oldest.
    pub(crate) max_sessions_per_user: Option<NonZeroUsize>,
    /// The registry's metric handles, taken when it started.
    pub(crate) metrics: RegistryMetrics,
}

/// The connection that watches `PRAGMA data_version` and the revocation log.
#[derive(Debug)]
pub(crate) struct SyncState {
    pub(crate) conn: Connection,
    pub(crate) data_version: i64,
    pub(crate) last_seq: i64,
}

impl SyncState {
    /// Starts watching from the current end of the log.
    pub(crate) fn new(conn: Connection, path: &Path) -> Result<Self, RegistryError> {
        let err = |e: rusqlite::Error| map_err(path, &e);
        let data_version = conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(err)?;
        let last_seq = conn
            .query_row("SELECT coalesce(max(seq), 0) FROM revocations", [], |row| {
                row.get(0)
            })
            .map_err(err)?;
        Ok(SyncState {
            conn,
            data_version,
            last_seq,
        })
    }
}

impl Shared {
    /// If any other connection committed since the last check, evicts the ids revoked since
    /// (and empties the cache at an entry with an empty id, which `revoke_all` logs).
    ///
    /// On success the log has been read to its end as of `began`, which confirms the cache fresh
    /// (see `freshness.rs`).
    pub(crate) fn sync_revocations(&self) -> Result<(), RegistryError> {
        let began = Instant::now();
        let mut state = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let result = Self::sync_with(&mut state, &self.cache, &self.path, self.freshness.as_ref());
        match &result {
            Ok(()) => {
                if let Some(freshness) = &self.freshness {
                    freshness.confirm(began);
                }
            }
            Err(e) => {
                forget_damage(&state.conn, e);
                if let Some(freshness) = &self.freshness {
                    freshness.failed(e);
                }
            }
        }
        result
    }

    fn sync_with(
        state: &mut SyncState,
        cache: &ValidationCache,
        path: &Path,
        freshness: Option<&Freshness>,
    ) -> Result<(), RegistryError> {
        let err = |e: rusqlite::Error| map_err(path, &e);
        let version: i64 = state
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(err)?;
        if version == state.data_version {
            return Ok(());
        }
        let mut revoked = Vec::new();
        // When each was revoked (the revoking writer's clock, this machine's), for the
        // propagation-lag histogram (`telemetry/feed.rs`).
        let mut revoked_at = Vec::new();
        let mut last_seq = state.last_seq;
        {
            let mut stmt = state
                .conn
                .prepare_cached(
                    "SELECT r.seq, r.id, s.revoked_at FROM revocations r \
                     LEFT JOIN sessions s ON s.id = r.id WHERE r.seq > ?1 ORDER BY r.seq",
                )
                .map_err(err)?;
            let mut rows = stmt.query([state.last_seq]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                last_seq = row.get(0).map_err(err)?;
                let blob = row.get_ref(1).map_err(err)?.as_blob().ok();
                match id_of(blob) {
                    Some(id) => {
                        revoked.push(id);
                        revoked_at.extend(row.get::<_, Option<i64>>(2).ok().flatten());
                    }
                    // `revoke_all`'s entry: every session it may have cached could be revoked.
                    None if blob.is_some_and(<[u8]>::is_empty) => cache.clear(),
                    None => {}
                }
            }
        }
        cache.evict(revoked);
        if let Some(freshness) = freshness {
            let now = SystemTime::now();
            for at in revoked_at {
                let lag = now.duration_since(from_ms(at)).unwrap_or_default();
                freshness.metrics.propagated(lag);
            }
        }
        state.last_seq = last_seq;
        state.data_version = version;
        Ok(())
    }
}

/// Reads a stored id; a blob of the wrong length (never written by us) is no id.
pub(crate) fn id_of(blob: Option<&[u8]>) -> Option<SessionId> {
    Some(SessionId::from_bytes(blob?.try_into().ok()?))
}
