//! [`SessionConfig`]: everything the middleware needs, checked once at start-up.
//!
//! The defaults are the safe ones: an `HttpOnly; Secure; SameSite=Lax; Path=/` browser-session
//! cookie named `__Host-session`, XAES-256-GCM sealing, a 24-hour absolute lifetime, a 2-hour
//! idle timeout refreshed at most every 30 minutes, and HTTP 503 when the registry cannot
//! answer. Mistakes that would otherwise show up as a browser silently ignoring the cookie (a
//! `__Host-` cookie with a `Domain`, `SameSite=None` without `Secure`), and durations so long
//! that the session's times would overflow, are [`ConfigError`]s from
//! [`SessionConfigBuilder::build`].
//!
//! This file holds the built configuration, [`SessionConfig`], and what every request of one
//! layer shares ([`Shared`]); each part of building it has its own file: `builder.rs` (the
//! builder and its checks), `cookie.rs` (the cookie's name, `__Host-`/`__Secure-` prefix rules
//! and attribute limits, and why `__Host-` is the default), `lifetimes.rs` (absolute and idle
//! limits, plain and persistent), `policy.rs` (what to do when the registry cannot answer) and
//! `error.rs` ([`ConfigError`]).

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::client_ip::ClientIpSource;
use crate::cookie_header::CookieSettings;
use crate::opened_cache::OpenedCache;
use crate::registry::Registry;
use crate::seal::Sealer;
use crate::telemetry::refusals::Refusals;
use crate::telemetry::sessions::SessionEvents;
use crate::telemetry::set_cookies::SetCookies;

mod builder;
mod cookie;
mod error;
mod lifetimes;
mod policy;

pub use builder::SessionConfigBuilder;
pub use cookie::DEFAULT_COOKIE_NAME;
pub use error::ConfigError;
use lifetimes::Limits;
pub use lifetimes::{
    DEFAULT_PERSISTENT_IDLE_TIMEOUT, DEFAULT_PERSISTENT_LIFETIME, DEFAULT_REAUTHENTICATION_WINDOW,
    MAX_LIFETIME,
};
pub use policy::{RegistryErrorPolicy, MAX_RETRY_AFTER};

type ClockFn = dyn Fn() -> SystemTime + Send + Sync;

/// The validated configuration of the session middleware; cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use sealed_sessions::{Key, KeyRing, SessionConfig};
///
/// let config = SessionConfig::builder(KeyRing::new(Key::generate()))
///     .host_prefix()
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .build()?;
/// assert_eq!(config.cookie_name(), "__Host-session");
///
/// // Plain-http development has to be asked for by name.
/// let dev = SessionConfig::builder(KeyRing::new(Key::generate()))
///     .insecure_http_for_development()
///     .build()?;
/// # let _ = dev;
/// # Ok::<(), sealed_sessions::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) shared: Arc<Shared>,
}

/// What every request of one layer shares.
pub(crate) struct Shared {
    pub(crate) sealer: Sealer,
    pub(crate) cookie: CookieSettings,
    /// The limits of browser-session cookies.
    pub(crate) plain: Limits,
    /// The limits of persistent ("remember me") cookies.
    pub(crate) persistent: Limits,
    pub(crate) client_ip: ClientIpSource,
    pub(crate) on_registry_error: RegistryErrorPolicy,
    pub(crate) registry: Option<Arc<dyn Registry>>,
    /// Cookie values that already opened (`None`: caching is off).
    pub(crate) opened: Option<OpenedCache>,
    clock: Option<Arc<ClockFn>>,
    /// How recent a sign-in must be for a sensitive action (sudo mode).
    pub(crate) reauthentication_window: Duration,
    /// When the warning about a `Secure` cookie sent to a plain-http page was last logged, in
    /// seconds since the Unix epoch (0: never), for this site's own pages and for others'
    /// (`service/plain_http.rs`).
    pub(crate) plain_http_warned: [AtomicU64; 2],
    /// The middleware's metric handles, taken when the configuration was built.
    pub(crate) refusals: Refusals,
    pub(crate) set_cookies: SetCookies,
    pub(crate) events: SessionEvents,
}

impl Shared {
    /// When a session with these claims ends under this configuration: the earlier of its sealed
    /// deadlines and its start plus this configuration's lifetime for it. A cookie sealed under
    /// a longer lifetime (before a redeploy that shortened it) ends by the shorter one, as
    /// Django's signed-cookie sessions check their age against the current setting. (An idle
    /// timeout shortened applies from each session's next refresh: when it was last active is
    /// not sealed.)
    #[cfg(feature = "hyper")]
    pub(crate) fn session_end(&self, c: &crate::claims::ClaimsCore) -> SystemTime {
        let sealed = c.expires_at().min(c.idle_deadline());
        let lifetime = self.limits(c.is_persistent()).lifetime;
        match c.lifetime_start().checked_add(lifetime) {
            Some(end) => sealed.min(end),
            None => sealed,
        }
    }

    /// The limits of a session that is (or is not) persistent.
    pub(crate) fn limits(&self, persistent: bool) -> &Limits {
        if persistent {
            &self.persistent
        } else {
            &self.plain
        }
    }

    /// The current time, from the injected clock if there is one.
    pub(crate) fn now(&self) -> SystemTime {
        match &self.clock {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }
}
impl SessionConfig {
    /// The cookie name, including any `__Host-` prefix.
    pub fn cookie_name(&self) -> &str {
        &self.shared.cookie.name
    }

    /// The absolute lifetime of a session.
    pub fn lifetime(&self) -> Duration {
        self.shared.plain.lifetime
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.shared.plain.idle
    }

    /// The absolute lifetime of a persistent ("remember me") session.
    pub fn persistent_lifetime(&self) -> Duration {
        self.shared.persistent.lifetime
    }

    /// The idle timeout of a persistent ("remember me") session.
    pub fn persistent_idle_timeout(&self) -> Duration {
        self.shared.persistent.idle
    }

    /// How recent a sign-in must be for a sensitive action; see
    /// [`SessionConfigBuilder::reauthentication_window`].
    pub fn reauthentication_window(&self) -> Duration {
        self.shared.reauthentication_window
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("SessionConfig")
            .field("sealer", &s.sealer)
            .field("cookie", &s.cookie)
            .field("plain", &s.plain)
            .field("persistent", &s.persistent)
            .field("client_ip", &s.client_ip)
            .field("on_registry_error", &s.on_registry_error)
            .field("registry", &s.registry.is_some())
            .field("opened_cache", &s.opened.is_some())
            .field("injected_clock", &s.clock.is_some())
            .field("reauthentication_window", &s.reauthentication_window)
            .finish()
    }
}
