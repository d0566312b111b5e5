//! [`PostgresRegistry`]: the registry in PostgreSQL, shared by many hosts, with revocations
//! pushed to every host's cache.
//!
//! - **No database read per cached request.** Every host keeps the validation cache of the
//!   SQLite registry (`cache.rs`); [`Registry::validate_cached`] is a map lookup.
//! - **Revocations reach every host by notification.** A revocation appends to a `revocations`
//!   log in the same transaction; a trigger NOTIFYs its ids; each host LISTENs on one dedicated
//!   connection (outside any pool: pool recycling runs `UNLISTEN *`, and notifications arrive
//!   only between transactions) and evicts them. Anyone who can connect can NOTIFY too, so a
//!   payload is a hint: it can evict ids or ask for a read of the log, never empty the cache.
//! - **Nothing is lost across a disconnect.** After every (re)connect the listener LISTENs, then
//!   reads the log past its watermark, and only then trusts its cache. Writers are ordered (a
//!   lock only roles granted it can take, see `schema.rs`), so the log's sequence is commit
//!   order and "past the
//!   watermark" is complete. A replaced or restored database (another `incarnation`, or a log
//!   that ends before the watermark) empties the cache.
//! - **A hard staleness bound.** A heartbeat reads the log's end every
//!   [`heartbeat`](PostgresRegistryBuilder::heartbeat); each answer confirms the host fresh.
//!   Past [`staleness_bound`](PostgresRegistryBuilder::staleness_bound) without one, cached
//!   answers give way to table reads, which fail closed if the server cannot answer.
//! - **Works under any executor.** One thread of the registry's own, with a current-thread tokio
//!   runtime, owns the connections (a writer, a reader and the listener); callers send it jobs
//!   and await a `oneshot`, as with the SQLite registry.
//!
//! Limits (see the README's "Running on several hosts"): connections are plain TCP or Unix
//! sockets without TLS for now; the listener needs a direct or session-mode connection
//! (pgbouncer's transaction pooling breaks LISTEN); with asynchronous replication a revocation
//! acknowledged just before a failover can be lost (synchronous replication prevents it); the
//! NOTIFY queue (8 GB) makes commits fail when full.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::id::SessionId;
use crate::registry::cache::ValidationCache;
use crate::registry::health::RegistryHealth;
use crate::registry::ops::{queued_write_methods, Outcome, QueuedWrites, WriteOp};
use crate::registry::{BoxFuture, Registry, RegistryError, SessionInfo};
use crate::telemetry::registry::Op;

mod builder;
mod job;
mod lag;
mod listener;
mod maintenance;
mod operator;
mod reader;
mod schema;
mod shared;
mod statements;
mod worker;
mod write_batch;
mod write_ops;
mod writer;

pub use builder::PostgresRegistryBuilder;

use job::Job;
use shared::Shared;

/// A [`Registry`] stored in PostgreSQL, for services that run on several hosts.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry};
/// use sealed_sessions::SessionId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let registry = PostgresRegistry::open("postgres://app@127.0.0.1/app")?;
/// let now = SystemTime::now();
/// let id = SessionId::generate();
/// registry.register(NewSession::new(id, "alice", now, now + Duration::from_secs(3600))).await?;
/// assert!(registry.validate(id, "alice", now).await?);
/// // Every host's cache refuses it within milliseconds, and at the latest after the
/// // staleness bound:
/// assert_eq!(registry.revoke_user("alice", None).await?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct PostgresRegistry {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRegistry")
            .field("server", &self.shared.server)
            .field("schema", &self.shared.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresRegistry {
    /// Opens the registry at `url` (`postgres://user:password@host:port/database`, or the
    /// `key=value` form) with the default configuration; see [`builder`](Self::builder).
    pub fn open(url: impl Into<String>) -> Result<Self, RegistryError> {
        Self::builder(url).open()
    }

    /// A builder to configure the registry at `url` before opening it.
    pub fn builder(url: impl Into<String>) -> PostgresRegistryBuilder {
        PostgresRegistryBuilder::new(url.into())
    }

    /// The SQL that creates the registry's schema `schema` (the current version: version 1,
    /// then each migration, each marked `-- version N`), for shops that run
    /// their own migrations; open with [`migrate(false)`](PostgresRegistryBuilder::migrate) then.
    ///
    /// ```
    /// # #[cfg(feature = "postgres")] {
    /// let sql = sealed_sessions::registry::PostgresRegistry::schema_sql("sealed_sessions")?;
    /// assert!(sql.contains("CREATE TABLE sealed_sessions.sessions"));
    /// # }
    /// # Ok::<(), sealed_sessions::registry::RegistryError>(())
    /// ```
    pub fn schema_sql(schema: &str) -> Result<String, RegistryError> {
        if !schema::valid_schema_name(schema) {
            return Err(RegistryError::InvalidConfig(format!(
                "{schema:?} is not a schema name this library accepts"
            )));
        }
        Ok(schema::schema_sql(schema))
    }

    pub(crate) fn start(config: PostgresRegistryBuilder) -> Result<Self, RegistryError> {
        let (shared, jobs, thread) = worker::spawn(config)?;
        Ok(PostgresRegistry {
            shared,
            jobs,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the registry's thread after the work already queued is done (queued last-seen
    /// updates are written), and waits for it. Later operations fail with
    /// [`RegistryError::Stopped`]. Called on drop; calling it twice is harmless.
    pub fn stop(&self) {
        if self.shared.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.jobs.send(Job::Stop);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            // A thread that panicked has nothing left to clean up.
            let _ = thread.join();
        }
    }

    /// How many statements the registry sent to the server on behalf of callers (the
    /// listener's own reads are not counted): a cached validation sends none.
    pub fn round_trips(&self) -> u64 {
        self.shared.round_trips.load(Ordering::Relaxed)
    }

    /// How many times this host's listener has read the revocation log: once per (re)connect,
    /// per heartbeat, and per burst of notifications that ask for it. Notifications are
    /// coalesced, with one read in flight at a time, so a burst of any size (anyone who can
    /// connect can send one) costs a few reads.
    pub fn log_reads(&self) -> u64 {
        self.shared.log_reads.load(Ordering::Relaxed)
    }

    /// How long ago this host last confirmed that it has seen every revocation; past the
    /// staleness bound, cached answers are not trusted.
    pub fn staleness(&self) -> std::time::Duration {
        self.shared.freshness.age()
    }

    /// This host's health for a readiness probe, from memory: whether the listener is
    /// connected, whether the revocation feed is fresh (ready while it is), how long ago it was
    /// confirmed, and the listener's last error; see [`RegistryHealth`] for the probe rule.
    pub fn health(&self) -> RegistryHealth {
        let running = !self.shared.stopped.load(Ordering::SeqCst);
        self.shared.freshness.health(running)
    }

    fn send<T: Send + 'static>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, RegistryError>>) -> Job,
    ) -> BoxFuture<'static, Result<T, RegistryError>> {
        let (reply, answer) = oneshot::channel();
        let sent =
            !self.shared.stopped.load(Ordering::SeqCst) && self.jobs.send(job(reply)).is_ok();
        if sent {
            self.shared.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(async move {
            if !sent {
                return Err(RegistryError::Stopped);
            }
            answer.await.map_err(|_| RegistryError::Stopped)?
        })
    }
}

impl QueuedWrites for PostgresRegistry {
    fn cache(&self) -> &ValidationCache {
        &self.shared.cache
    }

    fn queue(&self, op: WriteOp) -> BoxFuture<'static, Result<Outcome, RegistryError>> {
        self.send(|reply| Job::Write(op, reply))
    }
}

impl Drop for PostgresRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

super::everyday_methods!(PostgresRegistry);

impl Registry for PostgresRegistry {
    queued_write_methods!();

    fn validate_cached(&self, id: SessionId, user_id: &str, now: SystemTime) -> Option<bool> {
        self.shared
            .cache
            .lookup_trusted(id, user_id, now, Some(&self.shared.freshness))
    }

    fn validate_cached_and_touch(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
    ) -> Option<bool> {
        let s = &self.shared;
        let stopped = s.stopped.load(Ordering::Relaxed);
        s.touches
            .validate_cached(&s.cache, id, user_id, now, Some(&s.freshness), stopped)
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
        let user_id = user_id.to_owned();
        let read = self.send(move |reply| Job::Validate {
            id,
            user_id,
            now,
            epoch,
            reply,
        });
        Box::pin(self.shared.metrics.observe(Op::Validate, read))
    }

    fn list_for_user<'a>(
        &'a self,
        user_id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, RegistryError>> {
        let user_id = user_id.to_owned();
        let rows = self.send(move |reply| Job::List {
            user_id,
            now,
            reply,
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
