//! [`RegistryHealth`]: what a readiness probe asks of a registry, answered from memory.

use std::time::Duration;

/// A registry's health, as [`SqliteRegistry::health`](crate::registry::SqliteRegistry) and
/// [`PostgresRegistry::health`](crate::registry::PostgresRegistry) report it: cheap and
/// synchronous (a few atomic loads and one short lock), for a readiness probe on every scrape.
///
/// **The probe rule: ready while [`fresh`](Self::fresh).** A host whose revocation feed is not
/// fresh does not vouch for sessions from memory: each signed-in request reads the database, and
/// fails (503 by default) if the database cannot answer. A load balancer should take such a host
/// out of rotation (its `/readyz` answers 503) and put it back once it is fresh again, which it
/// becomes by itself as soon as the feed reads the log; it should not restart it (liveness is
/// another question: the process is up).
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # {
/// use sealed_sessions::registry::SqliteRegistry;
///
/// let dir = tempfile::tempdir()?;
/// let registry = SqliteRegistry::open(dir.path().join("s.db"))?;
/// let health = registry.health();
/// assert!(health.connected && health.fresh);
/// assert!(health.last_error.is_none());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryHealth {
    /// The backend answered the feed's last attempt to read it (and the registry is not stopped).
    pub connected: bool,
    /// The revocation feed was confirmed complete within the staleness bound: cached answers are
    /// trusted. The readiness signal.
    pub fresh: bool,
    /// How long ago the feed was last confirmed complete; `None` for a registry without a feed
    /// (SQLite with polling off and not strict: nothing else writes to it, by configuration).
    pub since_confirmed: Option<Duration>,
    /// The staleness bound `since_confirmed` is held to, if there is a feed.
    pub staleness_bound: Option<Duration>,
    /// The last error the feed met, if any since the registry opened (kept after it recovered,
    /// so that a probe's log can say what happened; `connected` says whether it still holds).
    pub last_error: Option<String>,
}

impl RegistryHealth {
    /// Whether a load balancer should send this host requests: the feed is fresh.
    pub fn is_ready(&self) -> bool {
        self.fresh
    }

    /// The health of a registry with no feed: fresh as long as it runs.
    pub(crate) fn without_feed(running: bool) -> Self {
        RegistryHealth {
            connected: running,
            fresh: running,
            since_confirmed: None,
            staleness_bound: None,
            last_error: None,
        }
    }
}
