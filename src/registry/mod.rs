//! The session registry: which sessions belong to which user, so they can be listed and revoked.
//!
//! A sealed cookie is valid on its own; the registry adds what a cookie cannot do alone: a
//! "your devices" list and instant revocation ("sign out this device", "sign out everywhere").
//! It has **allow-list** semantics: a user-bound session is valid only while its row exists, is
//! not revoked and has not expired. A lost or emptied registry therefore signs users out (fails
//! closed) instead of resurrecting revoked sessions. Anonymous sessions never touch it.
//!
//! # The trait
//!
//! [`Registry`] is object safe and meant to be shared as `Arc<dyn Registry>`. Its asynchronous
//! methods return a [`BoxFuture`] (a pinned, boxed, `Send` future) rather than using `async fn`:
//! `async fn` in traits is not object safe, and the `async-trait` crate generates exactly this
//! boxing anyway, so spelling it out costs nothing and adds no dependency. The one allocation per
//! call does not touch the hot path: [`Registry::validate_cached`] is a plain synchronous method
//! that answers from memory when it can, and the middleware calls it first, falling back to
//! [`Registry::validate`] only on a cache miss.
//!
//! Times are [`SystemTime`]s passed in by the caller (`now`) wherever the answer depends on the
//! clock, so that tests and the middleware can inject a clock. No database, HTTP, cookie or crypto
//! type appears in the trait, so other backends (PostgreSQL, Redis) can implement it.
//!
//! The SQLite implementation, behind the `sqlite` feature, is `SqliteRegistry`; see
//! `docs/registry.md` for the decisions behind it and its measured costs.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

use crate::id::SessionId;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod cache;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod everyday_methods;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod freshness;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod health;
mod location;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod operator;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod ops;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod touches;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use everyday_methods::everyday_methods;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use health::RegistryHealth;
pub use location::{open, Location};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use operator::{RegistryCheck, RegistryStats};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresRegistry, PostgresRegistryBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteRegistry, SqliteRegistryBuilder};

/// A pinned, boxed, `Send` future: what the [`Registry`] methods return so that the trait stays
/// object safe (`Arc<dyn Registry>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The most bytes of a `User-Agent` a registry stores: enough for any real browser's (they run
/// to about 150-300 bytes), and a bound on what a client can make the registry keep per login.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// The longest prefix of `user_agent` of at most [`MAX_USER_AGENT_LEN`] bytes that ends on a
/// character boundary; what backends store, whoever built the [`NewSession`].
pub(crate) fn cap_user_agent(user_agent: &str) -> &str {
    let mut end = user_agent.len().min(MAX_USER_AGENT_LEN);
    while !user_agent.is_char_boundary(end) {
        end -= 1;
    }
    &user_agent[..end]
}

/// A session to record with [`Registry::register`], typically at login.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::registry::NewSession;
/// use sealed_sessions::SessionId;
///
/// let now = SystemTime::now();
/// let session = NewSession::new(SessionId::generate(), "alice", now, now + Duration::from_secs(3600))
///     .user_agent("Mozilla/5.0")
///     .ip("192.0.2.7".parse().unwrap());
/// assert_eq!(session.user_id, "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session id (the one sealed in the cookie).
    pub id: SessionId,
    /// The user the session belongs to.
    pub user_id: String,
    /// When the session was created.
    pub created_at: SystemTime,
    /// The absolute expiry; the session is invalid from this instant on.
    pub expires_at: SystemTime,
    /// The `User-Agent` the session was created from, to show on a "your devices" page.
    /// Backends store at most [`MAX_USER_AGENT_LEN`] bytes of it.
    pub user_agent: Option<String>,
    /// The client address the session was created from.
    pub ip: Option<IpAddr>,
}

impl NewSession {
    /// A session of `user_id` without user agent or address.
    pub fn new(
        id: SessionId,
        user_id: impl Into<String>,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        NewSession {
            id,
            user_id: user_id.into(),
            created_at,
            expires_at,
            user_agent: None,
            ip: None,
        }
    }

    /// Sets the user agent, cut to [`MAX_USER_AGENT_LEN`] bytes (on a character boundary).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        let mut user_agent = user_agent.into();
        user_agent.truncate(cap_user_agent(&user_agent).len());
        self.user_agent = Some(user_agent);
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }
}

/// One active session of a user, as [`Registry::list_for_user`] returns it.
///
/// Times are stored with millisecond precision.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # {
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
/// use sealed_sessions::SessionId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let registry = SqliteRegistry::open(dir.path().join("s.db"))?;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let id = SessionId::generate();
/// let session = NewSession::new(id, "alice", now, now + Duration::from_secs(60)).user_agent("curl/8");
/// registry.register(session).await?;
/// registry.touch(id, now + Duration::from_secs(90));
/// for device in registry.list_for_user("alice", now).await? {
///     assert_eq!(device.id, id);
///     assert_eq!(device.user_agent.as_deref(), Some("curl/8"));
///     assert_eq!(device.last_seen_at, now + Duration::from_secs(90));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub id: SessionId,
    /// When the session was created (at sign-in; a renewal of its id keeps it).
    pub created_at: SystemTime,
    /// When the session was last seen, as reported by [`Registry::touch`] (write-behind, so it
    /// may lag by the backend's flush interval).
    pub last_seen_at: SystemTime,
    /// The absolute expiry.
    pub expires_at: SystemTime,
    /// The user agent recorded at registration.
    pub user_agent: Option<String>,
    /// The client address recorded at registration.
    pub ip: Option<IpAddr>,
}

/// What can go wrong in a registry.
///
/// Opening a registry reports a missing directory, a file that is not a database, a corrupt or
/// read-only database and a schema from a newer version as distinct variants, at open time.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # {
/// use sealed_sessions::registry::{RegistryError, SqliteRegistry};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("notes.txt");
/// std::fs::write(&path, "not a database, just some notes\n".repeat(100))?;
/// match SqliteRegistry::open(&path) {
///     Err(RegistryError::NotADatabase(p)) => assert_eq!(p, path),
///     other => panic!("expected NotADatabase, got {other:?}"),
/// }
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Debug` prints the same message as `Display`, so that an error that `main` returns with `?`
/// reads as a sentence.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The directory that should hold the database file does not exist.
    #[error("the directory of the registry database {0} does not exist")]
    MissingDirectory(PathBuf),
    /// The file exists but is not a database.
    #[error("{0} is not an SQLite database")]
    NotADatabase(PathBuf),
    /// The database file is damaged.
    #[error("the registry database {0} is corrupt")]
    Corrupt(PathBuf),
    /// The database cannot be written (permissions, read-only file system).
    #[error("the registry database {0} is read-only")]
    ReadOnly(PathBuf),
    /// The database file cannot be opened at all: the path is a directory, say, or the process
    /// may not read it; `source` says which.
    #[error("cannot open the registry database {path}: {source}")]
    CannotOpen {
        /// The database file.
        path: PathBuf,
        /// Why: the operating system's error where there is one, else SQLite's.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database file (or its `-wal` or `-shm`) was deleted or replaced while the registry
    /// had it open. The registry reopens the path by itself (creating an empty database if there
    /// is none, which signs every user out); until it has, reads fail with this error.
    #[error("the registry database {0} was deleted or replaced while in use")]
    Replaced(PathBuf),
    /// The database has a schema version but lacks one of the registry's tables.
    #[error("the registry database {path} has no `{table}` table")]
    MissingTable {
        /// The database file.
        path: PathBuf,
        /// The missing table.
        table: &'static str,
    },
    /// The schema is older than this library can run on, and the registry was opened without
    /// migrating it (PostgreSQL's [`migrate(false)`](crate::registry::PostgresRegistryBuilder::migrate),
    /// or the operator tool's commands other than `migrate`).
    #[error(
        "the registry schema version {found} is older than this library needs ({required}): \
         `sealed-sessions migrate`, or opening it with migration, upgrades it"
    )]
    SchemaTooOld {
        /// The schema version found.
        found: i64,
        /// The version this library needs.
        required: i64,
    },
    /// An SQLite database with the registry's table names but no registry schema version:
    /// another application's database, which the registry leaves alone.
    #[error("{0} is an SQLite database, but not a registry's (it has no registry schema version)")]
    NotARegistry(PathBuf),
    /// The database was created by a newer version of this library.
    #[error(
        "the registry schema version {found} is newer than this library supports ({supported})"
    )]
    SchemaTooNew {
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this library knows.
        supported: i64,
    },
    /// [`Registry::register`] was given an id that is already registered.
    #[error("session {0} is already registered")]
    DuplicateId(SessionId),
    /// The database stayed locked by another connection for longer than the busy timeout.
    #[error("the registry database is busy")]
    Busy,
    /// The storage is full.
    #[error("the registry database's storage is full")]
    Full,
    /// The registry was stopped; no more operations are accepted.
    #[error("the registry has been stopped")]
    Stopped,
    /// A registry setting is out of bounds (say, a timeout of `Duration::MAX`); the message
    /// names the setting.
    #[error("invalid registry configuration: {0}")]
    InvalidConfig(String),
    /// The database server cannot be reached: refused, timed out, or the connection broke. The
    /// registry reconnects by itself; `server` names it as `host:port/database`.
    #[error("cannot reach the registry database at {server}: {source}")]
    Unreachable {
        /// The server.
        server: String,
        /// What happened.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry does not implement this operation: a [`Registry`] written outside this
    /// crate that kept a provided method's default (`revoke_all`, say).
    #[error("this registry does not support {0}")]
    Unsupported(&'static str),
    /// Any other backend failure.
    #[error("registry backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Debug for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A store of user-bound sessions: register, validate, list, revoke, touch and clean up.
///
/// Object safe: share it as `Arc<dyn Registry>`. A request handler validates with the cache
/// first, then the backend:
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # {
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use sealed_sessions::registry::{NewSession, Registry, RegistryError, SqliteRegistry};
/// use sealed_sessions::SessionId;
///
/// async fn is_valid(
///     registry: &dyn Registry,
///     id: SessionId,
///     user: &str,
///     now: SystemTime,
/// ) -> Result<bool, RegistryError> {
///     match registry.validate_cached(id, user, now) {
///         Some(answer) => Ok(answer),
///         None => registry.validate(id, user, now).await,
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let registry: Arc<dyn Registry> = Arc::new(SqliteRegistry::open(dir.path().join("s.db"))?);
/// let now = SystemTime::now();
/// let id = SessionId::generate();
/// registry.register(NewSession::new(id, "alice", now, now + Duration::from_secs(60))).await?;
/// assert!(is_valid(&*registry, id, "alice", now).await?);
/// assert!(!is_valid(&*registry, id, "mallory", now).await?);
/// assert!(registry.revoke("alice", id).await?);
/// assert!(!is_valid(&*registry, id, "alice", now).await?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub trait Registry: Send + Sync {
    /// Records a new session (at login), before its cookie is sent.
    ///
    /// Fails with [`RegistryError::DuplicateId`] if the id is already known.
    fn register(&self, session: NewSession) -> BoxFuture<'_, Result<(), RegistryError>>;

    /// Replaces the session `old` of `user_id` by `new`, atomically: in one transaction, if
    /// `old` is still an active session of `user_id` at `new.created_at` (its row exists, is
    /// that user's, is not revoked and has not expired), revokes it and records `new`. Returns
    /// `true` if it did; `false`, changing nothing, if `old` is no longer active.
    ///
    /// This is how a session id is renewed ([`Session::renew`](crate::Session), and a login
    /// over a signed-in session). Registering the new id and revoking the old one as two steps
    /// would let a request that validated just before "sign out everywhere" renew after it and
    /// come out with a new, valid session: here, whichever commits first wins, and a revocation
    /// that commits after the rotation revokes the new id as well.
    ///
    /// Fails with [`RegistryError::DuplicateId`] if `new.id` is already known.
    fn rotate<'a>(
        &'a self,
        user_id: &'a str,
        old: SessionId,
        new: NewSession,
    ) -> BoxFuture<'a, Result<bool, RegistryError>>;

    /// Answers from memory alone, if it can: `Some(true)` for a session known active, `Some(false)`
    /// for one known to be another user's or expired, `None` when the backend must be asked with
    /// [`validate`](Registry::validate).
    ///
    /// This is the hot path: it must not do I/O (except in an opt-in strict mode) nor allocate.
    /// It never answers `Some(true)` for a session whose revocation has returned through this
    /// registry or is in flight through it, nor while the backend's feed of other writers'
    /// revocations is stale past its bound. The default knows nothing and returns `None`.
    fn validate_cached(&self, id: SessionId, user_id: &str, now: SystemTime) -> Option<bool> {
        let _ = (id, user_id, now);
        None
    }

    /// [`validate_cached`](Registry::validate_cached), and a [`touch`](Registry::touch) at `now`
    /// when it answers `Some(true)`: what the middleware asks for every request it settles from
    /// memory. The default calls the two; a backend whose cache holds both answers overrides it
    /// to look the session up once.
    fn validate_cached_and_touch(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
    ) -> Option<bool> {
        let answer = self.validate_cached(id, user_id, now);
        if answer == Some(true) {
            self.touch(id, now);
        }
        answer
    }

    /// Whether `id` is an active session of `user_id` at `now`: its row exists, belongs to that
    /// user, is not revoked and has not expired. Anything else is `false` (fail closed).
    fn validate<'a>(
        &'a self,
        id: SessionId,
        user_id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, RegistryError>>;

    /// The active (not revoked, not expired at `now`) sessions of `user_id`, newest first.
    fn list_for_user<'a>(
        &'a self,
        user_id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, RegistryError>>;

    /// Revokes the session `id` of `user_id`, durably, before returning.
    ///
    /// Returns `true` if a not-yet-revoked session of that user was revoked; `false` if there is no
    /// such session, it was already revoked, or it belongs to another user (which is left
    /// untouched, so a user can never revoke someone else's session).
    fn revoke<'a>(
        &'a self,
        user_id: &'a str,
        id: SessionId,
    ) -> BoxFuture<'a, Result<bool, RegistryError>>;

    /// Revokes the session `id` whoever it belongs to (an operator's action), durably.
    ///
    /// Returns `true` if a not-yet-revoked session was revoked.
    fn revoke_id(&self, id: SessionId) -> BoxFuture<'_, Result<bool, RegistryError>>;

    /// Revokes every session of `user_id` except `except` (the current one, for "sign out other
    /// devices"; `None` for "sign out everywhere"), durably. Returns how many were revoked.
    fn revoke_user<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<SessionId>,
    ) -> BoxFuture<'a, Result<u64, RegistryError>>;

    /// Revokes every session of every user (after a breach, a leaked key, a changed policy), or
    /// with `signed_in_before`, every session signed in before that time (sessions created
    /// later, and renewals of them, stay). Durable before it returns; every host's cache
    /// refuses the revoked sessions within its propagation bound, as after any revocation.
    /// Returns how many were revoked.
    ///
    /// A time in the future covers every session: the operator tool refuses one (a typo'd
    /// year), this method does not. The sign-in time is the session's `created_at`, which a
    /// renewal ([`rotate`](Registry::rotate)) keeps.
    ///
    /// Costs a bounded number of statements however many sessions there are (batches of
    /// 50,000, one log entry each, which empties every host's cache: docs/registry.md has the
    /// figures at a million sessions). Meanwhile this registry's cache answers nothing, so its
    /// requests read the table. If it fails part way, the batches before the failure stay
    /// revoked and a second call finishes the job. The default fails with
    /// [`RegistryError::Unsupported`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # {
    /// use std::time::{Duration, SystemTime};
    /// use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
    /// use sealed_sessions::SessionId;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let registry = SqliteRegistry::open(dir.path().join("s.db"))?;
    /// let now = SystemTime::now();
    /// let (yesterday, later) = (now - Duration::from_secs(86_400), now + Duration::from_secs(3600));
    /// let (old, new) = (SessionId::generate(), SessionId::generate());
    /// registry.register(NewSession::new(old, "alice", yesterday, later)).await?;
    /// registry.register(NewSession::new(new, "bob", now, later)).await?;
    /// // The key leaked an hour ago: end every session signed in before then.
    /// let leaked_at = now - Duration::from_secs(3600);
    /// assert_eq!(registry.revoke_all(Some(leaked_at)).await?, 1);
    /// assert!(!registry.validate(old, "alice", now).await?);
    /// assert!(registry.validate(new, "bob", now).await?);
    /// assert_eq!(registry.revoke_all(None).await?, 1); // everyone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    fn revoke_all(
        &self,
        signed_in_before: Option<SystemTime>,
    ) -> BoxFuture<'_, Result<u64, RegistryError>> {
        let _ = signed_in_before;
        Box::pin(std::future::ready(Err(RegistryError::Unsupported(
            "revoke_all",
        ))))
    }

    /// Revokes the sessions of `user_id` signed in before `signed_in_before` (a password
    /// changed then, a device reported lost), durably; later sign-ins stay. Returns how many
    /// were revoked. The default fails with [`RegistryError::Unsupported`].
    fn revoke_user_signed_in_before<'a>(
        &'a self,
        user_id: &'a str,
        signed_in_before: SystemTime,
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        let _ = (user_id, signed_in_before);
        Box::pin(std::future::ready(Err(RegistryError::Unsupported(
            "revoke_user_signed_in_before",
        ))))
    }

    /// Forgets `user_id` (the account was deleted, or an erasure request): deletes every row
    /// of the user, active, revoked or expired, and with them the addresses and user agents
    /// they held. Their sessions end on every host as after a revocation: a user-bound session
    /// with no row is refused. Returns how many rows were deleted.
    ///
    /// What remains: the revocation log keeps each live session's id and expiry (no user,
    /// address or agent) until that expiry, so that other hosts catch up; see
    /// docs/registry.md. The default fails with [`RegistryError::Unsupported`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # {
    /// use std::time::{Duration, SystemTime};
    /// use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
    /// use sealed_sessions::SessionId;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let registry = SqliteRegistry::open(dir.path().join("s.db"))?;
    /// let now = SystemTime::now();
    /// let id = SessionId::generate();
    /// let session = NewSession::new(id, "alice", now, now + Duration::from_secs(3600))
    ///     .user_agent("Firefox/128")
    ///     .ip("192.0.2.7".parse().unwrap());
    /// registry.register(session).await?;
    /// assert_eq!(registry.forget_user("alice").await?, 1);
    /// assert!(!registry.validate(id, "alice", now).await?);
    /// assert!(registry.list_for_user("alice", now).await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    fn forget_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, RegistryError>> {
        let _ = user_id;
        Box::pin(std::future::ready(Err(RegistryError::Unsupported(
            "forget_user",
        ))))
    }

    /// Notes that `id` was seen at `now`, for the "last seen" column.
    ///
    /// Never blocks and never fails: updates are throttled per session and written behind in
    /// batches, so the stored value may lag.
    fn touch(&self, id: SessionId, now: SystemTime);

    /// Deletes sessions that expired at or before `now` (and revocation records of expired
    /// sessions). Returns the number of sessions deleted.
    fn delete_expired(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, RegistryError>>;

    /// The registry's health for a readiness probe, from memory (no I/O): see
    /// [`RegistryHealth`] for the probe rule. The default, for a registry without a revocation
    /// feed, is always ready.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn health(&self) -> RegistryHealth {
        RegistryHealth::without_feed(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_user_agent_is_cut_on_a_character_boundary() {
        let now = SystemTime::UNIX_EPOCH;
        let s = |ua: &str| NewSession::new(SessionId::generate(), "u", now, now).user_agent(ua);
        assert_eq!(s("curl/8").user_agent.as_deref(), Some("curl/8"));
        let ascii = "a".repeat(MAX_USER_AGENT_LEN + 100);
        assert_eq!(s(&ascii).user_agent.unwrap().len(), MAX_USER_AGENT_LEN);
        // 511 ASCII bytes, then a 3-byte character that would end past the cap.
        let wide = format!("{}€€", "a".repeat(MAX_USER_AGENT_LEN - 1));
        let cut = s(&wide).user_agent.unwrap();
        assert_eq!(cut.len(), MAX_USER_AGENT_LEN - 1);
        assert!(wide.starts_with(&cut));
    }

    #[test]
    fn debug_is_the_message_that_main_prints() {
        // `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
        // `Debug`: it must read as the sentence, not as the variant.
        let err = RegistryError::MissingDirectory("/nonexistent/dir".into());
        assert_eq!(
            format!("{err:?}"),
            "the directory of the registry database /nonexistent/dir does not exist"
        );
        assert_eq!(format!("{err:?}"), err.to_string());
        let boxed: Box<dyn std::error::Error> = Box::new(RegistryError::Busy);
        assert_eq!(format!("{boxed:?}"), "the registry database is busy");
    }
}
