//! [`SqliteRegistry`]: the registry in one SQLite file, shared safely by several processes.
//!
//! - **Writes** go to one writer thread that group-commits everything queued in one transaction
//!   (`synchronous=FULL`, so a revocation is on disk before `revoke*` returns) and updates the
//!   validation cache before it replies.
//! - **Reads** (cache misses, listings) run on a small pool of reader threads, each with its own
//!   connection; callers await a reply, so the async runtime is never blocked.
//! - **Cache hits** ([`Registry::validate_cached`]) are a sharded-map lookup: no table read, no
//!   system call, no allocation.
//! - **Other processes' revocations** are picked up by a poller thread that checks
//!   `PRAGMA data_version` every [`poll_interval`](SqliteRegistryBuilder::poll_interval) and,
//!   when it changed, evicts the ids appended to the `revocations` log since its last look. In
//!   [strict](SqliteRegistryBuilder::strict) mode every `validate_cached` does that check first.
//! - **Cleanup**: the writer deletes expired sessions every
//!   [`cleanup_interval`](SqliteRegistryBuilder::cleanup_interval) (5 minutes by default).
//!
//! All threads stop on [`SqliteRegistry::stop`] or when the registry is dropped.

mod builder;
mod file;
mod operator;
mod reopen;
mod schema;
mod shared;
mod threads;

pub use builder::SqliteRegistryBuilder;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::id::SessionId;
use crate::registry::cache::ValidationCache;
use crate::registry::freshness::Freshness;
use crate::registry::health::RegistryHealth;
use crate::registry::ops::{queued_write_methods, Outcome, QueuedWrites, WriteOp};
use crate::registry::touches::TouchQueue;
use crate::registry::{BoxFuture, Registry, RegistryError, SessionInfo};
use crate::telemetry::registry::{Op, RegistryMetrics};
use file::Identity;
use schema::{forget_damage, from_ms, map_err, to_ms};
use shared::{id_of, Shared, SyncState};
use threads::{poller_loop, reader_loop, writer_loop, ReadMsg, WriteMsg};

/// A [`Registry`] stored in an SQLite file (WAL mode), with a validation cache.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
/// use sealed_sessions::SessionId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let registry = SqliteRegistry::open(dir.path().join("sessions.db"))?;
/// let now = SystemTime::now();
/// let (phone, laptop) = (SessionId::generate(), SessionId::generate());
/// for id in [phone, laptop] {
///     registry.register(NewSession::new(id, "alice", now, now + Duration::from_secs(3600))).await?;
/// }
/// assert_eq!(registry.list_for_user("alice", now).await?.len(), 2);
///
/// // "Sign out other devices" from the laptop:
/// assert_eq!(registry.revoke_user("alice", Some(laptop)).await?, 1);
/// assert_eq!(registry.validate_cached(phone, "alice", now), None); // evicted
/// assert!(!registry.validate(phone, "alice", now).await?);
/// assert!(registry.validate(laptop, "alice", now).await?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// The everyday operations (`list_for_user`, `revoke`, `revoke_id`, `revoke_user`,
/// `delete_expired`) are inherent methods too, so they need no trait import:
///
/// ```
/// use sealed_sessions::registry::SqliteRegistry;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// let registry = SqliteRegistry::open(dir.path().join("sessions.db"))?;
/// let signed_out = registry.revoke_user("alice", None).await?; // "sign out everywhere"
/// assert_eq!(signed_out, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct SqliteRegistry {
    shared: Arc<Shared>,
    writer: Sender<WriteMsg>,
    readers: Sender<ReadMsg>,
    reader_count: usize,
    threads: Mutex<Threads>,
}

#[derive(Debug, Default)]
struct Threads {
    poller_stop: Option<Sender<()>>,
    handles: Vec<JoinHandle<()>>,
}

impl SqliteRegistry {
    /// Opens the registry at `path` with the default configuration; see [`builder`](Self::builder).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        Self::builder(path).open()
    }

    /// A builder to configure the registry at `path` before opening it.
    pub fn builder(path: impl Into<PathBuf>) -> SqliteRegistryBuilder {
        SqliteRegistryBuilder::new(path.into())
    }

    pub(crate) fn start(config: SqliteRegistryBuilder) -> Result<Self, RegistryError> {
        let started = Instant::now();
        let access = config.access();
        let path = config.path;
        let writer_conn = access.open_checked(&path, config.busy_timeout)?;
        let sync = SyncState::new(access.open(&path, config.busy_timeout)?, &path)?;
        let reader_conns = (0..config.readers)
            .map(|_| access.open(&path, config.busy_timeout))
            .collect::<Result<Vec<Connection>, _>>()?;
        // Every connection is open, so the -wal and -shm exist by now.
        let identity = Mutex::new(Identity::of(&path));

        let shared = Arc::new(Shared {
            path,
            cache: ValidationCache::new(config.cache_capacity),
            touches: TouchQueue::new(config.touch_throttle),
            sync: Mutex::new(sync),
            strict: config.strict,
            stopped: AtomicBool::new(false),
            busy_timeout: config.busy_timeout,
            access,
            identity,
            stale: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            // The log was read to its end just now, by SyncState::new.
            freshness: (!config.poll_interval.is_zero() || config.strict)
                .then(|| Freshness::new(started, config.staleness_bound)),
            max_sessions_per_user: config.max_sessions_per_user,
            metrics: RegistryMetrics::register(),
        });
        let mut threads = Threads::default();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("sealed-sessions-{name}"))
                .spawn(body)
                .map_err(|e| RegistryError::Backend(Box::new(e)))
        };

        let (writer, writer_rx) = mpsc::channel();
        let cleanup = Some(config.cleanup_interval).filter(|every| !every.is_zero());
        let for_writer = Arc::clone(&shared);
        threads.handles.push(spawn(
            "writer",
            Box::new(move || writer_loop(writer_conn, for_writer, writer_rx, cleanup)),
        )?);

        let (readers, readers_rx) = mpsc::channel();
        let readers_rx = Arc::new(Mutex::new(readers_rx));
        let reader_count = reader_conns.len();
        for conn in reader_conns {
            let rx = Arc::clone(&readers_rx);
            let for_reader = Arc::clone(&shared);
            threads.handles.push(spawn(
                "reader",
                Box::new(move || reader_loop(conn, for_reader, rx)),
            )?);
        }

        if !config.poll_interval.is_zero() {
            let (stop, stop_rx) = mpsc::channel();
            threads.poller_stop = Some(stop);
            let for_poller = Arc::clone(&shared);
            let every = config.poll_interval;
            let wake = writer.clone();
            threads.handles.push(spawn(
                "poller",
                Box::new(move || poller_loop(for_poller, stop_rx, every, wake)),
            )?);
        }

        Ok(SqliteRegistry {
            shared,
            writer,
            readers,
            reader_count,
            threads: Mutex::new(threads),
        })
    }

    /// Stops the registry's threads after they finish the work already queued (queued
    /// last-seen updates are written), and waits for them. Later operations fail with
    /// [`RegistryError::Stopped`]. Called on drop; calling it twice is harmless.
    pub fn stop(&self) {
        if self.shared.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.poller_stop = None;
        let _ = self.writer.send(WriteMsg::Stop);
        for _ in 0..self.reader_count {
            let _ = self.readers.send(ReadMsg::Stop);
        }
        for handle in threads.handles.drain(..) {
            // A thread that panicked has nothing left to clean up.
            let _ = handle.join();
        }
    }

    /// Checks now, instead of at the next poll, for revocations committed by other processes.
    ///
    /// ```
    /// # use sealed_sessions::registry::SqliteRegistry;
    /// let dir = tempfile::tempdir()?;
    /// let registry = SqliteRegistry::open(dir.path().join("s.db"))?;
    /// registry.sync_revocations()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_revocations(&self) -> Result<(), RegistryError> {
        self.shared.sync_revocations()
    }

    /// The registry's health for a readiness probe, from memory: whether the last poll read the
    /// file, whether the revocation feed is fresh (ready while it is), how long ago it was
    /// confirmed, and the last error; see [`RegistryHealth`] for the probe rule.
    pub fn health(&self) -> RegistryHealth {
        let running = !self.shared.stopped.load(Ordering::SeqCst);
        match &self.shared.freshness {
            Some(freshness) => freshness.health(running),
            None => RegistryHealth::without_feed(running),
        }
    }

    fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection, &Shared) -> Result<T, RegistryError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, RegistryError>> {
        let (reply, answer) = oneshot::channel();
        let shared = Arc::clone(&self.shared);
        let job = Box::new(move |conn: Result<&Connection, RegistryError>| {
            let result =
                conn.and_then(|conn| job(conn, &shared).inspect_err(|e| forget_damage(conn, e)));
            let _ = reply.send(result);
        });
        let sent = !self.shared.stopped.load(Ordering::SeqCst)
            && self.readers.send(ReadMsg::Job(job)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(RegistryError::Stopped);
            }
            answer.await.map_err(|_| RegistryError::Stopped)?
        })
    }
}

impl QueuedWrites for SqliteRegistry {
    fn cache(&self) -> &ValidationCache {
        &self.shared.cache
    }

    fn queue(&self, op: WriteOp) -> BoxFuture<'static, Result<Outcome, RegistryError>> {
        let (reply, answer) = oneshot::channel();
        let sent = !self.shared.stopped.load(Ordering::SeqCst)
            && self.writer.send(WriteMsg::Op(op, reply)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(RegistryError::Stopped);
            }
            answer.await.map_err(|_| RegistryError::Stopped)?
        })
    }
}

impl Drop for SqliteRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One row of `sessions` as validate needs it.
fn validate_row(
    conn: &Connection,
    shared: &Shared,
    id: SessionId,
) -> Result<Option<(String, i64, bool, i64)>, RegistryError> {
    conn.prepare_cached(
        "SELECT user_id, expires_at, revoked_at IS NOT NULL, last_seen_at \
         FROM sessions WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([id.as_bytes()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
    })
    .map_err(|e| map_err(&shared.path, &e))
}

super::everyday_methods!(SqliteRegistry);

impl Registry for SqliteRegistry {
    queued_write_methods!();

    fn validate_cached(&self, id: SessionId, user_id: &str, now: SystemTime) -> Option<bool> {
        if self.shared.strict && self.shared.sync_revocations().is_err() {
            return None;
        }
        self.shared
            .cache
            .lookup_trusted(id, user_id, now, self.shared.freshness.as_ref())
    }

    fn validate_cached_and_touch(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
    ) -> Option<bool> {
        let s = &self.shared;
        if s.strict && s.sync_revocations().is_err() {
            return None;
        }
        let stopped = s.stopped.load(Ordering::Relaxed);
        let freshness = s.freshness.as_ref();
        s.touches
            .validate_cached(&s.cache, id, user_id, now, freshness, stopped)
    }

    fn validate<'a>(
        &'a self,
        id: SessionId,
        user_id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        if let Some(answer) = self.validate_cached(id, user_id, now) {
            return Box::pin(std::future::ready(Ok(answer)));
        }
        // Read before the table is: see the cache's module docs.
        let epoch = self.shared.cache.epoch();
        let user = user_id.to_owned();
        let read = self.read(move |conn, shared| {
            let Some((owner, expires, revoked, last_seen)) = validate_row(conn, shared, id)? else {
                shared.cache.refuse(id, now);
                return Ok(false);
            };
            if revoked {
                shared.cache.refuse(id, now);
                return Ok(false);
            }
            // Expired at the caller's `now` is not remembered: a later call with an earlier
            // `now` (a clock that moved back, a check ahead of time) must still read the row.
            if to_ms(now) >= expires {
                return Ok(false);
            }
            // Another user's id is refused without remembering: the refusal would hold for the
            // owner too.
            let valid = owner == user;
            if valid {
                let (expires, last_seen) = (from_ms(expires), from_ms(last_seen));
                shared
                    .cache
                    .insert_if_current(epoch, id, &owner, expires, last_seen, now);
            }
            Ok(valid)
        });
        Box::pin(self.shared.metrics.observe(Op::Validate, read))
    }

    fn list_for_user<'a>(
        &'a self,
        user_id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, RegistryError>> {
        let user = user_id.to_owned();
        let rows = self.read(move |conn, shared| {
            let err = |e: rusqlite::Error| map_err(&shared.path, &e);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, created_at, last_seen_at, expires_at, user_agent, ip \
                     FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND expires_at > ?2 ORDER BY created_at DESC, id",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(rusqlite::params![user, to_ms(now)], |row| {
                    let Some(id) = id_of(row.get_ref(0)?.as_blob().ok()) else {
                        return Ok(None);
                    };
                    Ok(Some(SessionInfo {
                        id,
                        created_at: from_ms(row.get(1)?),
                        last_seen_at: from_ms(row.get(2)?),
                        expires_at: from_ms(row.get(3)?),
                        user_agent: row.get(4)?,
                        ip: row
                            .get::<_, Option<String>>(5)?
                            .and_then(|ip| ip.parse().ok()),
                    }))
                })
                .map_err(err)?;
            let mut list = Vec::new();
            for row in rows {
                list.extend(row.map_err(err)?);
            }
            // Last-seen updates not yet flushed are newer than the table.
            shared
                .touches
                .merge_into(&mut list, |seen| from_ms(to_ms(seen)));
            Ok(list)
        });
        Box::pin(self.shared.metrics.observe(Op::List, rows))
    }

    fn touch(&self, id: SessionId, now: SystemTime) {
        if !self.shared.stopped.load(Ordering::Relaxed) {
            self.shared.touches.touch(&self.shared.cache, id, now);
        }
    }

    fn health(&self) -> RegistryHealth {
        Self::health(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::NewSession;

    /// A poller that cannot read the log (here: stuck behind its own lock, as it would be in a
    /// long busy wait or a hung disk) stops the cache vouching once the staleness bound passed,
    /// so a revocation made elsewhere in the meantime is not ignored; the table still answers.
    #[tokio::test]
    // Holding the poller's lock across the awaits is the point: only the poller thread wants it.
    #[allow(clippy::await_holding_lock)]
    async fn a_stuck_poller_stops_the_cache_vouching_past_the_staleness_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // The default bound (2 s), so that this test reads the same on the code before it.
        let reg = SqliteRegistry::builder(&path)
            .poll_interval(Duration::from_millis(10))
            .cleanup_interval(Duration::ZERO)
            .open()
            .unwrap();
        let other = SqliteRegistry::open(&path).unwrap();
        let now = SystemTime::now();
        let (kept, revoked) = (SessionId::generate(), SessionId::generate());
        for id in [kept, revoked] {
            let s = NewSession::new(id, "alice", now, now + Duration::from_secs(60));
            reg.register(s).await.unwrap();
        }
        assert_eq!(reg.validate_cached(revoked, "alice", now), Some(true));

        let stuck = reg.shared.sync.lock().unwrap();
        assert!(other.revoke("alice", revoked).await.unwrap());
        let started = Instant::now();
        while reg.validate_cached(revoked, "alice", now) == Some(true) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the cache went on vouching for a revocation it could not have seen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!(
            "stopped vouching {:?} after the poller stuck (bound 2 s)",
            started.elapsed()
        );
        assert_eq!(reg.validate_cached(kept, "alice", now), None);
        assert!(!reg.validate(revoked, "alice", now).await.unwrap());
        assert!(reg.validate(kept, "alice", now).await.unwrap());

        drop(stuck);
        let started = Instant::now();
        while reg.validate_cached(kept, "alice", now) != Some(true) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never fresh again"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
