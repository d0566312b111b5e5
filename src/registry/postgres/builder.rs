//! Configuration of a [`PostgresRegistry`]: the builder and its defaults.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::schema::valid_schema_name;
use super::PostgresRegistry;
use crate::registry::RegistryError;

/// Configures and opens a [`PostgresRegistry`]; get one from [`PostgresRegistry::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use sealed_sessions::registry::PostgresRegistry;
///
/// let registry = PostgresRegistry::builder("postgres://app@db.internal/app")
///     .schema("sessions")
///     .staleness_bound(Duration::from_secs(2))
///     .open()?;
/// registry.stop();
/// # Ok::<(), sealed_sessions::registry::RegistryError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct PostgresRegistryBuilder {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) migrate: bool,
    pub(crate) cache_capacity: usize,
    pub(crate) staleness_bound: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) touch_throttle: Duration,
    pub(crate) cleanup_interval: Duration,
    pub(crate) max_sessions_per_user: Option<NonZeroUsize>,
}

/// The server a URL names, for messages: `host:port/database`, never the user or password.
pub(crate) fn server_name(url: &str) -> String {
    // Rebuilt from the parsed configuration, so that no spelling of a password gets through.
    crate::registry::location::conninfo::server_name(url)
}

impl std::fmt::Debug for PostgresRegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the server is shown.
        f.debug_struct("PostgresRegistryBuilder")
            .field("server", &server_name(&self.url))
            .field("schema", &self.schema)
            .field("migrate", &self.migrate)
            .field("cache_capacity", &self.cache_capacity)
            .field("staleness_bound", &self.staleness_bound)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl PostgresRegistryBuilder {
    /// The default [`schema`](Self::schema): `sealed_sessions`.
    pub const DEFAULT_SCHEMA: &'static str = "sealed_sessions";
    /// The default [`staleness_bound`](Self::staleness_bound): 2 seconds.
    pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(2);
    /// The default [`heartbeat`](Self::heartbeat): 500 ms.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(500);
    /// The default [`operation_timeout`](Self::operation_timeout): 5 seconds.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default [`connect_timeout`](Self::connect_timeout): 5 seconds.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default [`cache_capacity`](Self::cache_capacity): 100,000 sessions.
    pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
    /// The default [`touch_throttle`](Self::touch_throttle): 60 seconds.
    pub const DEFAULT_TOUCH_THROTTLE: Duration = Duration::from_secs(60);
    /// The default [`cleanup_interval`](Self::cleanup_interval): 5 minutes.
    pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(300);
    /// The longest interval or timeout the builder accepts: one day.
    pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

    pub(crate) fn new(url: String) -> Self {
        let (url, schema) = take_schema(&url);
        PostgresRegistryBuilder {
            url,
            schema: schema.unwrap_or_else(|| Self::DEFAULT_SCHEMA.to_owned()),
            migrate: true,
            cache_capacity: Self::DEFAULT_CACHE_CAPACITY,
            staleness_bound: Self::DEFAULT_STALENESS_BOUND,
            heartbeat: Self::DEFAULT_HEARTBEAT,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            touch_throttle: Self::DEFAULT_TOUCH_THROTTLE,
            cleanup_interval: Self::DEFAULT_CLEANUP_INTERVAL,
            max_sessions_per_user: None,
        }
    }

    /// The schema that holds the registry's tables (default `sealed_sessions`): a lowercase SQL
    /// identifier of at most 50 bytes. Several applications can share a database, each in its
    /// own schema. A URL can name it too, with this library's own query parameter `schema`
    /// (`postgres://app@db/app?schema=sessions`), which is taken out before connecting; this
    /// method wins over it.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Whether `open` creates the schema when it is missing (default `true`). Shops that apply
    /// migrations themselves (the SQL is [`PostgresRegistry::schema_sql`]) set `false`: `open` then
    /// only checks that the schema is there and not newer than this library.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How many active sessions the validation cache holds; zero disables it (every validation
    /// then reads the table).
    pub fn cache_capacity(mut self, sessions: usize) -> Self {
        self.cache_capacity = sessions;
        self
    }

    /// How long after its last confirmed contact with the server this host may still vouch for
    /// sessions from memory (default 2 seconds; at least twice the heartbeat).
    ///
    /// Revocations reach a host by notification within milliseconds. If the host loses contact
    /// (the server is down, the network partitioned, a notification lost), it cannot know what was
    /// revoked meanwhile: past this bound, cached answers give way to reads of the table, which
    /// fail closed per the middleware's error policy if the server cannot answer. So no revoked
    /// session is accepted by any host later than this bound after its revocation returned.
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// How often the listener checks the revocation log's end on its connection (default
    /// 500 ms): an application-level heartbeat, because a stalled TCP peer that still
    /// acknowledges raises no error (measured: 4.8 s of silence without one). Each beat that
    /// answers confirms the host fresh.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// How long one database operation may take before it fails (default 5 seconds): the
    /// server-side `statement_timeout` and `lock_timeout` of the registry's connections, and a
    /// client-side limit for a server that does not answer at all.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How long connecting may take (default 5 seconds).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The least time between two last-seen writes for one session (default 60 seconds).
    pub fn touch_throttle(mut self, every: Duration) -> Self {
        self.touch_throttle = every;
        self
    }

    /// How often expired sessions are deleted (default 5 minutes; zero disables). Each host
    /// tries; one at a time gets the cleanup's lock and does it, the others skip their turn.
    pub fn cleanup_interval(mut self, every: Duration) -> Self {
        self.cleanup_interval = every;
        self
    }

    /// Caps the active sessions a user may have: registering one more revokes the user's
    /// oldest active sessions beyond the cap, in the same transaction. Off by default; zero
    /// turns it off again.
    pub fn max_sessions_per_user(mut self, sessions: usize) -> Self {
        self.max_sessions_per_user = NonZeroUsize::new(sessions);
        self
    }

    /// Connects, creates or checks the schema, reads the revocation log's end, and starts the
    /// registry's thread. Blocks until then (at most about the connect timeout).
    ///
    /// Errors are typed and happen here, not at the first request: a bad URL or setting
    /// ([`RegistryError::InvalidConfig`]), a server that cannot be reached
    /// ([`RegistryError::Unreachable`]), a schema from a newer version or a missing table.
    pub fn open(self) -> Result<PostgresRegistry, RegistryError> {
        self.check()?;
        PostgresRegistry::start(self)
    }

    fn check(&self) -> Result<(), RegistryError> {
        let invalid = |problem: String| Err(RegistryError::InvalidConfig(problem));
        if !valid_schema_name(&self.schema) {
            return invalid(format!(
                "{:?} is not a schema name this library accepts (a lowercase SQL identifier \
                 of at most 50 bytes)",
                self.schema
            ));
        }
        for (what, value) in [
            ("staleness_bound", self.staleness_bound),
            ("heartbeat", self.heartbeat),
            ("operation_timeout", self.operation_timeout),
            ("connect_timeout", self.connect_timeout),
            ("touch_throttle", self.touch_throttle),
            ("cleanup_interval", self.cleanup_interval),
        ] {
            if value > Self::MAX_DURATION {
                return invalid(format!(
                    "{what} {value:?} is longer than the most allowed, {:?}",
                    Self::MAX_DURATION
                ));
            }
        }
        for (what, value) in [
            ("heartbeat", self.heartbeat),
            ("operation_timeout", self.operation_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.as_millis() == 0 {
                return invalid(format!("{what} must be at least a millisecond"));
            }
        }
        if self.staleness_bound < 2 * self.heartbeat {
            return invalid(format!(
                "the staleness bound {:?} must be at least twice the heartbeat {:?}",
                self.staleness_bound, self.heartbeat
            ));
        }
        Ok(())
    }
}

/// Splits this library's own `schema=NAME` query parameter off a `postgres://` URL (the driver
/// would refuse an unknown parameter). Key-value connection strings are returned as they are.
fn take_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| match param.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        let b = PostgresRegistryBuilder::new("postgres://u@h/db?schema=app_s".into());
        assert_eq!(
            (b.url.as_str(), b.schema.as_str()),
            ("postgres://u@h/db", "app_s")
        );
        let b = PostgresRegistryBuilder::new(
            "postgres://u@h/db?connect_timeout=3&schema=x&sslmode=disable".into(),
        );
        assert_eq!(b.url, "postgres://u@h/db?connect_timeout=3&sslmode=disable");
        assert_eq!(b.schema, "x");
        let b = PostgresRegistryBuilder::new("host=h dbname=db".into());
        assert_eq!(
            (b.url.as_str(), b.schema.as_str()),
            ("host=h dbname=db", "sealed_sessions")
        );
        let b = PostgresRegistryBuilder::new("postgres://u@h/db?schema=x".into()).schema("y");
        assert_eq!(b.schema, "y");
    }
}
