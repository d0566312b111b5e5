//! Configuration of a [`SqliteRegistry`]: the builder and its defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::{RegistryError, SqliteRegistry};

/// Configures and opens a [`SqliteRegistry`]; get one from [`SqliteRegistry::builder`].
///
/// ```
/// use std::time::Duration;
/// use sealed_sessions::registry::SqliteRegistry;
///
/// let dir = tempfile::tempdir()?;
/// let registry = SqliteRegistry::builder(dir.path().join("sessions.db"))
///     .poll_interval(Duration::from_millis(10))
///     .cache_capacity(50_000)
///     .strict(false)
///     .cleanup_interval(Duration::from_secs(60))
///     .open()?;
/// registry.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteRegistryBuilder {
    pub(crate) path: PathBuf,
    pub(crate) poll_interval: Duration,
    pub(crate) cache_capacity: usize,
    pub(crate) strict: bool,
    pub(crate) cleanup_interval: Duration,
    pub(crate) busy_timeout: Duration,
    pub(crate) readers: usize,
    pub(crate) touch_throttle: Duration,
}

impl SqliteRegistryBuilder {
    /// The default [`poll_interval`](Self::poll_interval): 20 ms.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(20);
    /// The default [`cache_capacity`](Self::cache_capacity): 100,000 sessions.
    pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
    /// The default [`cleanup_interval`](Self::cleanup_interval): 5 minutes.
    pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(300);
    /// The default [`busy_timeout`](Self::busy_timeout): 5 seconds.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default number of [`readers`](Self::readers): 2.
    pub const DEFAULT_READERS: usize = 2;
    /// The default [`touch_throttle`](Self::touch_throttle): 60 seconds.
    pub const DEFAULT_TOUCH_THROTTLE: Duration = Duration::from_secs(60);

    pub(crate) fn new(path: PathBuf) -> Self {
        SqliteRegistryBuilder {
            path,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            cache_capacity: Self::DEFAULT_CACHE_CAPACITY,
            strict: false,
            cleanup_interval: Self::DEFAULT_CLEANUP_INTERVAL,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            readers: Self::DEFAULT_READERS,
            touch_throttle: Self::DEFAULT_TOUCH_THROTTLE,
        }
    }

    /// How often to check whether another process committed revocations to the same file.
    ///
    /// This is the propagation bound for revocations made by *other* processes or other
    /// registries on the file (plus the time of one small read); revocations made through this
    /// registry are honoured at once. Zero disables polling (use it with [`strict`](Self::strict)
    /// or when only one registry ever writes the file).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How many active sessions the validation cache holds; zero disables the cache (every
    /// validate then reads the table).
    pub fn cache_capacity(mut self, sessions: usize) -> Self {
        self.cache_capacity = sessions;
        self
    }

    /// Strict mode: check `PRAGMA data_version` on every validate, so that other processes'
    /// revocations are honoured at once instead of within the poll interval. Costs a few
    /// microseconds and a lock per validate (see `docs/registry.md`); off by default.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// How often expired sessions are deleted in the background; zero disables.
    pub fn cleanup_interval(mut self, every: Duration) -> Self {
        self.cleanup_interval = every;
        self
    }

    /// How long an operation waits for a lock held by another connection before failing with
    /// [`RegistryError::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The number of reader threads (each with its own connection) serving cache misses and
    /// listings; at least one.
    pub fn readers(mut self, threads: usize) -> Self {
        self.readers = threads.max(1);
        self
    }

    /// The least time between two last-seen writes for one session.
    pub fn touch_throttle(mut self, every: Duration) -> Self {
        self.touch_throttle = every;
        self
    }

    /// Opens (creating or migrating) the database and starts the registry's threads.
    ///
    /// Errors are typed and happen here, not at the first request: a missing directory, a file
    /// that is not a database, a corrupt or read-only database, a schema from a newer version.
    pub fn open(self) -> Result<SqliteRegistry, RegistryError> {
        SqliteRegistry::start(self)
    }
}
