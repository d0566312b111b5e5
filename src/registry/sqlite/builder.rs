//! Configuration of a [`SqliteRegistry`]: the builder and its defaults.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::file::Access;
use super::SqliteRegistry;
use crate::registry::RegistryError;

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
    pub(crate) staleness_bound: Duration,
    pub(crate) max_sessions_per_user: Option<NonZeroUsize>,
    pub(crate) migrate: bool,
    pub(crate) read_only: bool,
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
    /// The default [`staleness_bound`](Self::staleness_bound): 2 seconds.
    pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(2);
    /// The most [`readers`](Self::readers).
    pub const MAX_READERS: usize = 64;
    /// The longest interval, timeout or throttle the builder accepts: one day. Longer ones are
    /// configuration mistakes, and some (a busy timeout past `i32::MAX` milliseconds) would not
    /// even be representable.
    pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

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
            staleness_bound: Self::DEFAULT_STALENESS_BOUND,
            max_sessions_per_user: None,
            migrate: true,
            read_only: false,
        }
    }

    /// How `open` treats the file, from [`migrate`](Self::migrate) and
    /// [`read_only`](Self::read_only).
    pub(crate) fn access(&self) -> Access {
        match (self.read_only, self.migrate) {
            (true, _) => Access::ReadOnly,
            (false, true) => Access::Create,
            (false, false) => Access::Existing,
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

    /// How old the poller's last complete read of the revocation log may be for the validation
    /// cache to be trusted (default 2 seconds; it must be longer than the poll interval).
    ///
    /// While the poller cannot read the log (the file is locked, the disk hangs), the cache
    /// would go on vouching for sessions that another process revoked. Past this bound, cached
    /// answers give way to reads of the table, and if the table cannot be read either, the
    /// middleware's error policy decides (HTTP 503 by default). So a revocation made by another
    /// process is honoured within this bound, whatever happens to the poller.
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// Caps the active sessions a user may have: registering one more (a login) revokes the
    /// user's oldest active sessions beyond the cap, in the same transaction. Off by default.
    /// Zero turns it off again.
    pub fn max_sessions_per_user(mut self, sessions: usize) -> Self {
        self.max_sessions_per_user = NonZeroUsize::new(sessions);
        self
    }

    /// The number of reader threads (each with its own connection) serving cache misses and
    /// listings; at least one, at most [`MAX_READERS`](Self::MAX_READERS).
    pub fn readers(mut self, threads: usize) -> Self {
        self.readers = threads.max(1);
        self
    }

    /// The least time between two last-seen writes for one session.
    pub fn touch_throttle(mut self, every: Duration) -> Self {
        self.touch_throttle = every;
        self
    }

    /// Whether `open` creates the file and the schema when they are missing, and upgrades an
    /// older schema (default `true`).
    ///
    /// With `false`, the file must already be a registry, and `open` changes nothing in it: a
    /// missing file is [`RegistryError::CannotOpen`]; a file that is not a registry (an empty
    /// file, another application's database) is [`RegistryError::MissingTable`] or
    /// [`RegistryError::NotADatabase`], and is left byte for byte as it was (it is looked at
    /// through a read-only connection first). A registry of an older schema version opens as it
    /// is, with a warning in the log and a problem in `check()`: every version so far has the
    /// same tables and columns, so reads and revocations work, and what a newer version adds
    /// (version 2's trigger that logs rows deleted by hand) is missing until it is migrated.
    /// [`PostgresRegistryBuilder::migrate`](crate::registry::PostgresRegistryBuilder::migrate)
    /// does the same.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens every connection read-only (default `false`), for tools that only look: it implies
    /// [`migrate(false)`](Self::migrate), there is no background cleanup, and every write
    /// (revocations, registrations, last-seen updates) fails with [`RegistryError::ReadOnly`].
    ///
    /// SQLite creates a registry's `-wal` and `-shm` files if they are missing (when no other
    /// process has the registry open), as any reader of a WAL database does, and a read-only
    /// connection leaves them in place; they are the registry's own, and the next writer uses
    /// them.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opens (creating or migrating, unless told not to) the database and starts the
    /// registry's threads.
    ///
    /// Errors are typed and happen here, not at the first request: a configuration out of
    /// bounds ([`RegistryError::InvalidConfig`]), a missing directory, a file that is not a
    /// database, a corrupt or read-only database, a schema from a newer version.
    pub fn open(mut self) -> Result<SqliteRegistry, RegistryError> {
        self.check()?;
        if self.read_only {
            // It could only fail.
            self.cleanup_interval = Duration::ZERO;
        }
        SqliteRegistry::start(self)
    }

    fn check(&self) -> Result<(), RegistryError> {
        let invalid = |problem: String| Err(RegistryError::InvalidConfig(problem));
        for (what, value) in [
            ("poll_interval", self.poll_interval),
            ("cleanup_interval", self.cleanup_interval),
            ("busy_timeout", self.busy_timeout),
            ("touch_throttle", self.touch_throttle),
            ("staleness_bound", self.staleness_bound),
        ] {
            if value > Self::MAX_DURATION {
                return invalid(format!(
                    "{what} {value:?} is longer than the most allowed, {:?}",
                    Self::MAX_DURATION
                ));
            }
        }
        if self.readers > Self::MAX_READERS {
            return invalid(format!(
                "{} readers is more than the most allowed, {}",
                self.readers,
                Self::MAX_READERS
            ));
        }
        if !self.poll_interval.is_zero() && self.staleness_bound <= self.poll_interval {
            return invalid(format!(
                "the staleness bound {:?} must be longer than the poll interval {:?}",
                self.staleness_bound, self.poll_interval
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_settings_are_refused_before_anything_opens() {
        let b = || SqliteRegistryBuilder::new(PathBuf::from("/nonexistent/dir/s.db"));
        for builder in [
            b().cleanup_interval(Duration::MAX),
            b().busy_timeout(Duration::MAX),
            b().poll_interval(Duration::MAX),
            b().touch_throttle(Duration::MAX),
            b().staleness_bound(Duration::MAX),
            b().readers(usize::MAX),
            b().poll_interval(Duration::from_secs(3)),
        ] {
            match builder.open() {
                Err(RegistryError::InvalidConfig(problem)) => assert!(!problem.is_empty()),
                other => panic!("expected InvalidConfig, got {other:?}"),
            }
        }
        // In bounds, the same path fails for what it is.
        assert!(matches!(
            b().open(),
            Err(RegistryError::MissingDirectory(_))
        ));
    }
}

#[cfg(test)]
mod access_tests {
    use std::path::Path;
    use std::time::SystemTime;

    use super::*;
    use crate::registry::{NewSession, Registry};
    use crate::SessionId;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn without_migration_nothing_is_created_or_changed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let other = dir.path().join("other.db");
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
            .unwrap();
        let names = listing(dir.path());
        let unchanged = [&empty, &other].map(|p| std::fs::read(p).unwrap());
        for read_only in [false, true] {
            let open = |path: &Path| {
                SqliteRegistry::builder(path)
                    .migrate(false)
                    .read_only(read_only)
                    .open()
            };
            assert!(matches!(
                open(&missing),
                Err(RegistryError::CannotOpen { .. })
            ));
            for path in [&empty, &other] {
                match open(path) {
                    Err(RegistryError::MissingTable { table, .. }) => assert_eq!(table, "sessions"),
                    other => panic!("{path:?}: {other:?}"),
                }
            }
            assert_eq!(listing(dir.path()), names, "read_only {read_only}");
            assert_eq!(
                [&empty, &other].map(|p| std::fs::read(p).unwrap()),
                unchanged
            );
        }
    }

    #[tokio::test]
    async fn a_read_only_registry_reads_and_refuses_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let now = SystemTime::now();
        let id = SessionId::from_bytes([1; 16]);
        let until = now + Duration::from_secs(3600);
        let created = SqliteRegistry::open(&path).unwrap();
        created
            .register(NewSession::new(id, "alice", now, until))
            .await
            .unwrap();
        created.stop();

        let ro = SqliteRegistry::builder(&path)
            .read_only(true)
            .open()
            .unwrap();
        assert_eq!(ro.list_for_user("alice", now).await.unwrap().len(), 1);
        assert!(ro.validate(id, "alice", now).await.unwrap());
        assert!(matches!(
            ro.revoke_user("alice", None).await,
            Err(RegistryError::ReadOnly(_))
        ));
        let other = NewSession::new(SessionId::from_bytes([2; 16]), "bob", now, until);
        assert!(matches!(
            ro.register(other).await,
            Err(RegistryError::ReadOnly(_))
        ));
        ro.stop();

        let existing = SqliteRegistry::builder(&path)
            .migrate(false)
            .open()
            .unwrap();
        assert_eq!(existing.revoke_user("alice", None).await.unwrap(), 1);
    }
}
