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
//! **Why `__Host-` by default.** Without a prefix, any sibling subdomain (or a man in the middle
//! on a plain-http page of the site) can set a cookie of our name for the parent domain, and the
//! server cannot tell it from its own: an attacker signed in to their own account could plant
//! their session in a victim's browser and see what the victim then does in it ("cookie
//! tossing"). Browsers accept a `__Host-` cookie only if it is `Secure`, has `Path=/` and no
//! `Domain`, so only this host, over https, can set it. The default name therefore takes the
//! prefix whenever the cookie is `Secure` with `Path=/` and no `Domain`, and `__Secure-` (which
//! at least keeps plain-http pages from setting it) when it is `Secure` otherwise. What remains:
//! a name chosen with [`SessionConfigBuilder::cookie_name`] is used as given, and a site that
//! needs a `Domain` cookie shares it with every subdomain by design. Prefixes are recognised
//! whatever their case, as RFC 6265bis has browsers do.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::client_ip::ClientIpSource;
use crate::cookie_header::{
    is_valid_attribute, is_valid_name, CookieSettings, Finder, SameSite, MAX_ATTRIBUTE_LEN,
};
use crate::opened_cache::{self, OpenedCache};
use crate::registry::Registry;
use crate::{KeyRing, Mode, Sealer};

/// The cookie name used unless [`SessionConfigBuilder::cookie_name`] says otherwise, after the
/// `__Host-` or `__Secure-` prefix the cookie's attributes allow (see the module docs).
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// The longest [`SessionConfigBuilder::lifetime`]: 400 days, the most browsers keep a cookie
/// (RFC 6265bis caps `Max-Age` and `Expires` there).
pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The longest `Retry-After` of [`RegistryErrorPolicy::ServiceUnavailable`]: one day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Entries in the cache of opened cookie values; see [`SessionConfigBuilder::opened_cookie_cache`].
const DEFAULT_OPENED_CACHE: usize = 2048;

/// Bounds and default of [`SessionConfigBuilder::max_cookie_size`].
const MIN_COOKIE_SIZE: usize = 1024;
const MAX_COOKIE_SIZE: usize = 32 * 1024;
const DEFAULT_MAX_COOKIE_SIZE: usize = 6 * 1024;

const HOST_PREFIX: &str = "__Host-";
const SECURE_PREFIX: &str = "__Secure-";

/// What the middleware does when the registry fails (is down, busy, or full) while validating a
/// user-bound session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryErrorPolicy {
    /// Answer HTTP 503 with `Retry-After` without calling the handler, and leave the cookie as
    /// it is, so that the user is still signed in once the registry is back. The default.
    ServiceUnavailable {
        /// The `Retry-After` value.
        retry_after: Duration,
    },
    /// Serve the request with a fresh, empty session, as if the user were signed out; the
    /// cookie is left as it is unless the handler signs a user in. What the handler writes
    /// into the fresh session (a CSRF token for a form, data, a flash) is not sent: it would
    /// replace the user's cookie.
    SignedOut,
}

impl Default for RegistryErrorPolicy {
    fn default() -> Self {
        RegistryErrorPolicy::ServiceUnavailable {
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Why a [`SessionConfigBuilder`] did not build. `Debug` prints the message too, so that a
/// `?` in `main` reads well.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or has characters a cookie name cannot have.
    #[error("{0:?} is not a valid cookie name")]
    InvalidCookieName(String),
    /// The `Domain` or `Path` has characters an attribute value cannot have (anything but
    /// visible ASCII, `;` and `,`), or the path does not start with `/`.
    #[error(
        "{0:?} is not a valid cookie Domain or Path: use visible ASCII without ';' or ',' \
         (and start a Path with '/')"
    )]
    InvalidAttribute(String),
    /// The `Domain` or `Path` is longer than browsers heed: they ignore such an attribute
    /// (RFC 6265bis 5.6), so the cookie would get another scope and its removal would miss it.
    #[error(
        "the cookie {what} is {len} bytes long; browsers ignore a {what} longer than {max} \
         bytes, so the cookie would not get the scope configured"
    )]
    AttributeTooLong {
        /// `"Domain"` or `"Path"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most browsers heed.
        max: usize,
    },
    /// A `__Host-` cookie must be `Secure`, have `Path=/` and no `Domain`; browsers drop it
    /// otherwise.
    #[error("a __Host- cookie needs Secure, Path=/ and no Domain")]
    HostPrefixConflict,
    /// A `__Secure-` cookie must be `Secure`.
    #[error("a __Secure- cookie needs Secure")]
    SecurePrefixInsecure,
    /// Browsers drop `SameSite=None` cookies that are not `Secure`.
    #[error("SameSite=None needs Secure")]
    SameSiteNoneInsecure,
    /// A lifetime, idle timeout or `Retry-After` of zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A duration is longer than the most allowed.
    #[error("{what} {value:?} is longer than the most allowed, {max:?}")]
    DurationTooLong {
        /// Which setting.
        what: &'static str,
        /// What it was set to.
        value: Duration,
        /// The most allowed.
        max: Duration,
    },
    /// The idle timeout is longer than the absolute lifetime.
    #[error("the {what}idle timeout {idle:?} is longer than the {what}lifetime {lifetime:?}")]
    IdleExceedsLifetime {
        /// `""`, or `"persistent "` for the settings of remembered sessions.
        what: &'static str,
        /// The idle timeout.
        idle: Duration,
        /// The absolute lifetime.
        lifetime: Duration,
    },
    /// The refresh throttle is not shorter than the idle timeout, so sessions would expire
    /// before they are refreshed.
    #[error(
        "the refresh throttle {refresh:?} is not shorter than the {what}idle timeout {idle:?}"
    )]
    RefreshNotBelowIdle {
        /// `""`, or `"persistent "` for the settings of remembered sessions.
        what: &'static str,
        /// The refresh throttle.
        refresh: Duration,
        /// The idle timeout.
        idle: Duration,
    },
    /// [`SessionConfigBuilder::opened_cookie_cache`] asked for more entries than allowed.
    #[error("{entries} entries for the opened-cookie cache is over the limit of {max}")]
    OpenedCacheTooLarge {
        /// The entries asked for.
        entries: usize,
        /// The most allowed.
        max: usize,
    },
    /// [`SessionConfigBuilder::max_cookie_size`] is outside the range allowed.
    #[error("a maximum cookie size of {bytes} bytes is outside {min}..={max}")]
    CookieSizeOutOfRange {
        /// The size asked for.
        bytes: usize,
        /// The least allowed.
        min: usize,
        /// The most allowed.
        max: usize,
    },
}

/// Refuses a `Domain` or `Path` longer than browsers heed.
fn check_attribute_len(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(ConfigError::AttributeTooLong {
            what,
            len: value.len(),
            max: MAX_ATTRIBUTE_LEN,
        });
    }
    Ok(())
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

type ClockFn = dyn Fn() -> SystemTime + Send + Sync;

/// The least a persistent ("remember me") session lasts unless configured: 30 days.
pub const DEFAULT_PERSISTENT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The least idle timeout of a persistent session unless configured: 7 days.
pub const DEFAULT_PERSISTENT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long a session lasts: one set for browser-session cookies, one for persistent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The absolute lifetime, from login (or from the first write of an anonymous session).
    pub(crate) lifetime: Duration,
    /// The idle timeout.
    pub(crate) idle: Duration,
    /// How long after the idle deadline was last set a request may move it (re-sealing the
    /// cookie); see `ClaimsCore::refresh_due`.
    pub(crate) refresh_after: Duration,
}

impl Limits {
    /// Checks one set of settings; `what` is `""` or `"persistent "`, for the messages.
    fn check(
        what: &'static str,
        lifetime: Duration,
        idle: Duration,
        refresh_after: Option<Duration>,
    ) -> Result<Self, ConfigError> {
        // Bounded first, so that no later arithmetic on them (expiry times, Max-Age) can
        // overflow at request time.
        for (name, value) in [("lifetime", lifetime), ("idle timeout", idle)] {
            let what = if what.is_empty() {
                name
            } else if name == "lifetime" {
                "persistent lifetime"
            } else {
                "persistent idle timeout"
            };
            if value > MAX_LIFETIME {
                return Err(ConfigError::DurationTooLong {
                    what,
                    value,
                    max: MAX_LIFETIME,
                });
            }
            // Times are sealed in whole seconds, so anything under one second is zero.
            if value.as_secs() == 0 {
                return Err(ConfigError::ZeroDuration(what));
            }
        }
        if idle > lifetime {
            return Err(ConfigError::IdleExceedsLifetime {
                what,
                idle,
                lifetime,
            });
        }
        let refresh_after = refresh_after.unwrap_or(idle / 4);
        if refresh_after >= idle {
            return Err(ConfigError::RefreshNotBelowIdle {
                what,
                refresh: refresh_after,
                idle,
            });
        }
        Ok(Limits {
            lifetime,
            idle,
            refresh_after,
        })
    }
}

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
    /// When the warning about a `Secure` cookie sent to a plain-http page was last logged, in
    /// seconds since the Unix epoch (0: never), for this site's own pages and for others'
    /// (`service/plain_http.rs`).
    pub(crate) plain_http_warned: [AtomicU64; 2],
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
    /// Starts a configuration that seals cookies with `keys`: a [`KeyRing`], or a single
    /// [`Key`](crate::Key).
    pub fn builder(keys: impl Into<KeyRing>) -> SessionConfigBuilder {
        SessionConfigBuilder {
            keys: keys.into(),
            mode: Mode::Private,
            name: None,
            host_prefix: false,
            domain: None,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            lifetime: Duration::from_secs(24 * 60 * 60),
            idle: Duration::from_secs(2 * 60 * 60),
            refresh_after: None,
            persistent_lifetime: None,
            persistent_idle: None,
            client_ip: ClientIpSource::Peer,
            on_registry_error: RegistryErrorPolicy::default(),
            registry: None,
            opened_cache: DEFAULT_OPENED_CACHE,
            max_cookie_size: DEFAULT_MAX_COOKIE_SIZE,
            clock: None,
        }
    }

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
            .finish()
    }
}

/// Builds a [`SessionConfig`]; see [`SessionConfig::builder`].
#[must_use]
pub struct SessionConfigBuilder {
    keys: KeyRing,
    mode: Mode,
    name: Option<String>,
    host_prefix: bool,
    domain: Option<String>,
    path: String,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    lifetime: Duration,
    idle: Duration,
    refresh_after: Option<Duration>,
    persistent_lifetime: Option<Duration>,
    persistent_idle: Option<Duration>,
    client_ip: ClientIpSource,
    on_registry_error: RegistryErrorPolicy,
    registry: Option<Arc<dyn Registry>>,
    opened_cache: usize,
    max_cookie_size: usize,
    clock: Option<Arc<ClockFn>>,
}

impl SessionConfigBuilder {
    /// The cookie name, used as given (with [`Self::host_prefix`], after the `__Host-` prefix).
    /// The default is [`DEFAULT_COOKIE_NAME`] after the prefix the attributes allow: see the
    /// module documentation for why a name without a prefix is weaker.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Prefixes the cookie name with `__Host-`, which makes browsers accept the cookie only if it
    /// is `Secure`, has `Path=/` and no `Domain`, so no subdomain and no plain-http page can set
    /// or shadow it. The best choice for a site on one host.
    pub fn host_prefix(mut self) -> Self {
        self.host_prefix = true;
        self
    }

    /// The `Domain` attribute (default none: the cookie goes back only to the host that set it).
    /// Visible ASCII without `;` or `,`, at most 1024 bytes (browsers ignore a longer one), or
    /// [`build`](Self::build) fails.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The `Path` attribute (default `/`). Starts with `/`; visible ASCII without `;` or `,`,
    /// at most 1024 bytes (browsers ignore a longer one), or [`build`](Self::build) fails.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Leaves out the `Secure` attribute so that the cookie works over plain `http://` on a
    /// development machine. Never use it in production: the cookie would travel in clear text.
    pub fn insecure_http_for_development(mut self) -> Self {
        self.secure = false;
        self
    }

    /// Whether the cookie is `HttpOnly`, hidden from page scripts (default `true`).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute (default [`SameSite::Lax`]).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Encrypted ([`Mode::Private`], the default) or only signed cookies.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The absolute lifetime: a session ends this long after it was issued (at login or
    /// renewal), however active (default 24 hours).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The idle timeout: a session ends after this long without a request (default 2 hours).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How much of the idle timeout must pass before a request moves the idle deadline (and so
    /// re-seals and re-sends the cookie). Default: a quarter of the idle timeout, so that a busy
    /// page does not re-seal on every request.
    pub fn refresh_after(mut self, refresh_after: Duration) -> Self {
        self.refresh_after = Some(refresh_after);
        self
    }

    /// The absolute lifetime of a persistent ("remember me") session, one chosen with
    /// [`Session::set_persistent`](crate::Session::set_persistent) before login. Default: 30
    /// days ([`DEFAULT_PERSISTENT_LIFETIME`]), or the [`lifetime`](Self::lifetime) if that is
    /// longer.
    pub fn persistent_lifetime(mut self, lifetime: Duration) -> Self {
        self.persistent_lifetime = Some(lifetime);
        self
    }

    /// The idle timeout of a persistent ("remember me") session: the browser may be closed for
    /// this long. Default: 7 days ([`DEFAULT_PERSISTENT_IDLE_TIMEOUT`]), or the
    /// [`idle_timeout`](Self::idle_timeout) if that is longer. Refreshed like the other (after a
    /// quarter of it, or [`refresh_after`](Self::refresh_after) if set).
    pub fn persistent_idle_timeout(mut self, idle: Duration) -> Self {
        self.persistent_idle = Some(idle);
        self
    }

    /// Trusts `X-Forwarded-For` on requests whose peer is one of `proxies` (exact addresses);
    /// see [`PeerAddr`](crate::PeerAddr). By default only the peer address is used.
    pub fn trust_forwarded_for(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.client_ip = ClientIpSource::ForwardedFor(proxies.into_iter().collect());
        self
    }

    /// Records user-bound sessions in `registry` at login and checks them on every request, so
    /// that they can be listed and revoked. Without a registry, a signed-in session is valid for
    /// as long as its sealed cookie is, and logging out cannot invalidate a copy of the cookie.
    /// Anonymous sessions never touch the registry.
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// What to do when the registry fails while validating a session (default
    /// [`RegistryErrorPolicy::ServiceUnavailable`] with a 5-second `Retry-After`).
    pub fn on_registry_error(mut self, policy: RegistryErrorPolicy) -> Self {
        self.on_registry_error = policy;
        self
    }

    /// How many recently opened cookie values to remember (default 2048, at most 65,536; 0
    /// turns this off).
    ///
    /// A browser sends the same cookie value on every request until its session changes. A
    /// value equal (compared in constant time) to one that already opened under this
    /// configuration is not decrypted again: its claims are reused and only their expiry is
    /// checked again, which takes most of the middleware's cost off such a request. A value
    /// sealed for a visitor whose cookie opened is remembered too, as the visitor will send it
    /// next. The
    /// registry still checks every user-bound session, so revocation is unaffected. Each entry
    /// holds a cookie value and its decoded session (both zeroized when evicted) and takes about
    /// 150 bytes empty and at most about 1.5 KB filled; cookie values over 680 characters are
    /// not kept. See `src/opened_cache.rs` for why this is as
    /// strong as opening the value again.
    pub fn opened_cookie_cache(mut self, entries: usize) -> Self {
        self.opened_cache = entries;
        self
    }

    /// The most bytes the session's cookies may take in a request's `Cookie` header (default
    /// 6 KiB = 6144; from 1024 to 32 KiB): the sum of `name=value` of each, and the `; `
    /// between them. [`Session::insert`](crate::Session::insert) refuses, with
    /// [`SessionError::TooLarge`](crate::SessionError::TooLarge), data that would go past it.
    ///
    /// A browser keeps at most about 4 KB per cookie, so a larger session is split over several
    /// cookies, `NAME`, `NAME.1`, `NAME.2`, ... (at most 8, about 31 KB in all whatever this
    /// says; see `docs/middleware.md`). Every one of them travels with every request, and
    /// servers and proxies refuse requests whose headers are too large, usually with a 400 or
    /// 431 that never reaches the application: nginx (`large_client_header_buffers 4 8k`: one
    /// header line at most 8 KB), Apache (`LimitRequestFieldSize 8190`), and many others at
    /// 8 KB; Node.js (16 KiB for all headers), hyper's HTTP/2 (16 KB header list) and AWS ALB
    /// (16 KB per header) at 16 KB. The default leaves 2 KB of an 8 KB `Cookie` header for the
    /// site's other cookies; raise it only as far as every hop in front of the application
    /// allows.
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        self.max_cookie_size = bytes;
        self
    }

    /// Reads the time from `clock` instead of the system clock: for tests of expiry.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The cookie name: as set (after `__Host-` if asked for), or the default name after the
    /// strongest prefix the attributes allow.
    fn resolved_name(&self) -> String {
        let host_allowed = self.secure && self.path == "/" && self.domain.is_none();
        let prefix = match &self.name {
            Some(name) if self.host_prefix && !has_prefix(name, HOST_PREFIX) => HOST_PREFIX,
            Some(_) => "",
            None if self.host_prefix || host_allowed => HOST_PREFIX,
            None if self.secure => SECURE_PREFIX,
            None => "",
        };
        format!(
            "{prefix}{}",
            self.name.as_deref().unwrap_or(DEFAULT_COOKIE_NAME)
        )
    }

    /// Checks the settings and builds the configuration.
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let name = self.resolved_name();
        if !is_valid_name(&name) {
            return Err(ConfigError::InvalidCookieName(name));
        }
        if !self.path.starts_with('/') || !is_valid_attribute(&self.path) {
            return Err(ConfigError::InvalidAttribute(self.path));
        }
        check_attribute_len("Path", &self.path)?;
        if let Some(domain) = &self.domain {
            if domain.is_empty() || !is_valid_attribute(domain) {
                return Err(ConfigError::InvalidAttribute(domain.clone()));
            }
            check_attribute_len("Domain", domain)?;
        }
        if has_prefix(&name, HOST_PREFIX)
            && (!self.secure || self.path != "/" || self.domain.is_some())
        {
            return Err(ConfigError::HostPrefixConflict);
        }
        if has_prefix(&name, SECURE_PREFIX) && !self.secure {
            return Err(ConfigError::SecurePrefixInsecure);
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneInsecure);
        }
        let retry_after = match self.on_registry_error {
            RegistryErrorPolicy::ServiceUnavailable { retry_after } => retry_after,
            RegistryErrorPolicy::SignedOut => Duration::ZERO,
        };
        if retry_after > MAX_RETRY_AFTER {
            return Err(ConfigError::DurationTooLong {
                what: "Retry-After",
                value: retry_after,
                max: MAX_RETRY_AFTER,
            });
        }
        let plain = Limits::check("", self.lifetime, self.idle, self.refresh_after)?;
        let persistent_lifetime = self
            .persistent_lifetime
            .unwrap_or(DEFAULT_PERSISTENT_LIFETIME.max(self.lifetime));
        // The default idle timeout never exceeds the lifetime: `persistent_lifetime(3 days)`
        // alone must build.
        let persistent_idle = self.persistent_idle.unwrap_or(
            DEFAULT_PERSISTENT_IDLE_TIMEOUT
                .max(self.idle)
                .min(persistent_lifetime),
        );
        let persistent = Limits::check(
            "persistent ",
            persistent_lifetime,
            persistent_idle,
            self.refresh_after,
        )?;
        if let RegistryErrorPolicy::ServiceUnavailable { retry_after } = self.on_registry_error {
            if retry_after.as_secs() == 0 {
                return Err(ConfigError::ZeroDuration("Retry-After"));
            }
        }

        if self.opened_cache > opened_cache::MAX_ENTRIES {
            return Err(ConfigError::OpenedCacheTooLarge {
                entries: self.opened_cache,
                max: opened_cache::MAX_ENTRIES,
            });
        }

        if !(MIN_COOKIE_SIZE..=MAX_COOKIE_SIZE).contains(&self.max_cookie_size) {
            return Err(ConfigError::CookieSizeOutOfRange {
                bytes: self.max_cookie_size,
                min: MIN_COOKIE_SIZE,
                max: MAX_COOKIE_SIZE,
            });
        }

        let cookie = CookieSettings {
            finder: Finder::new(&name).into_owned(),
            name,
            domain: self.domain,
            path: self.path,
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            layout: Default::default(),
        }
        .with_size_limit(
            plain.lifetime.max(persistent.lifetime),
            self.max_cookie_size,
        );
        // The layout checks every cookie's whole line; the sealer only the value's length.
        let sealer = Sealer::new(self.keys, self.mode).with_limit(cookie.seal_limit());
        Ok(SessionConfig {
            shared: Arc::new(Shared {
                sealer,
                cookie,
                plain,
                persistent,
                client_ip: self.client_ip,
                on_registry_error: self.on_registry_error,
                registry: self.registry,
                opened: OpenedCache::new(self.opened_cache),
                clock: self.clock,
                plain_http_warned: [AtomicU64::new(0), AtomicU64::new(0)],
            }),
        })
    }
}

/// Whether `name` starts with the cookie prefix `prefix`, in any case (RFC 6265bis).
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    fn builder() -> SessionConfigBuilder {
        SessionConfig::builder(KeyRing::new(Key::generate()))
    }

    #[test]
    fn the_default_name_takes_the_strongest_prefix_the_attributes_allow() {
        let name = |b: SessionConfigBuilder| b.build().unwrap().cookie_name().to_owned();
        assert_eq!(name(builder()), "__Host-session");
        assert_eq!(name(builder().path("/app")), "__Secure-session");
        assert_eq!(name(builder().domain("example.com")), "__Secure-session");
        assert_eq!(name(builder().insecure_http_for_development()), "session");
        // A name chosen by hand is used as given.
        assert_eq!(name(builder().cookie_name("sid")), "sid");
        assert_eq!(
            name(builder().cookie_name("sid").host_prefix()),
            "__Host-sid"
        );
    }

    #[test]
    fn prefixes_are_recognised_in_any_case() {
        let err = |b: SessionConfigBuilder| b.build().unwrap_err();
        assert_eq!(
            err(builder().cookie_name("__HOST-s").domain("example.com")),
            ConfigError::HostPrefixConflict
        );
        assert_eq!(
            err(builder()
                .cookie_name("__secure-s")
                .insecure_http_for_development()),
            ConfigError::SecurePrefixInsecure
        );
        let c = builder()
            .cookie_name("__host-x")
            .host_prefix()
            .build()
            .unwrap();
        assert_eq!(c.cookie_name(), "__host-x", "no second prefix");
    }

    #[test]
    fn durations_that_would_overflow_later_do_not_build() {
        let err = |b: SessionConfigBuilder| b.build().unwrap_err();
        assert!(matches!(
            err(builder()
                .lifetime(Duration::MAX)
                .idle_timeout(Duration::MAX)),
            ConfigError::DurationTooLong {
                what: "lifetime",
                ..
            }
        ));
        assert!(matches!(
            err(builder().idle_timeout(Duration::MAX)),
            ConfigError::DurationTooLong { .. }
        ));
        assert!(matches!(
            err(
                builder().on_registry_error(RegistryErrorPolicy::ServiceUnavailable {
                    retry_after: Duration::MAX
                })
            ),
            ConfigError::DurationTooLong {
                what: "Retry-After",
                ..
            }
        ));
        assert!(builder()
            .lifetime(MAX_LIFETIME)
            .idle_timeout(MAX_LIFETIME / 2)
            .build()
            .is_ok());
    }

    #[test]
    fn defaults_build() {
        let c = builder().build().unwrap();
        assert_eq!(c.cookie_name(), "__Host-session");
        assert_eq!(c.shared.plain.refresh_after, c.idle_timeout() / 4);
        assert_eq!(c.persistent_lifetime(), DEFAULT_PERSISTENT_LIFETIME);
        assert_eq!(c.persistent_idle_timeout(), DEFAULT_PERSISTENT_IDLE_TIMEOUT);
        assert_eq!(
            c.shared.persistent.refresh_after,
            DEFAULT_PERSISTENT_IDLE_TIMEOUT / 4
        );
        assert!(c.shared.cookie.secure && c.shared.cookie.http_only);
    }

    /// Browsers ignore a `Path` or `Domain` longer than 1024 bytes (RFC 6265bis 5.6), and a
    /// comma or control character would split or spoil the `Set-Cookie` line: the cookie, and
    /// its removal, would not have the scope configured. Each is refused with a sentence.
    #[test]
    fn attributes_browsers_would_ignore_are_errors() {
        let message = |b: SessionConfigBuilder| match b.build() {
            Ok(_) => "built without error".to_owned(),
            Err(e) => e.to_string(),
        };
        let long_path = format!("/{}", "a".repeat(1024));
        let long_domain = format!("{}.example.com", "a".repeat(1013));
        assert_eq!(long_domain.len(), 1025);
        for (b, says) in [
            (builder().path(long_path.clone()), "1025 bytes"),
            (builder().domain(long_domain.clone()), "1025 bytes"),
            (builder().path("/a,b"), "not a valid cookie Domain or Path"),
            (
                builder().domain("a,b.example.com"),
                "not a valid cookie Domain or Path",
            ),
            (builder().path("/a\tb"), "not a valid cookie Domain or Path"),
            (
                builder().domain("exa\u{7f}mple.com"),
                "not a valid cookie Domain or Path",
            ),
        ] {
            let got = message(b);
            assert!(got.contains(says), "{got:?} does not say {says:?}");
        }
        // 1024 bytes is allowed.
        assert!(builder().path(&long_path[..1024]).build().is_ok());
        assert!(builder().domain(&long_domain[1..]).build().is_ok());
    }

    #[test]
    fn invalid_settings_are_errors() {
        let err = |b: SessionConfigBuilder| b.build().unwrap_err();
        assert!(matches!(
            err(builder().cookie_name("a b")),
            ConfigError::InvalidCookieName(_)
        ));
        assert!(matches!(
            err(builder().path("nope")),
            ConfigError::InvalidAttribute(_)
        ));
        assert!(matches!(
            err(builder().domain("a;b")),
            ConfigError::InvalidAttribute(_)
        ));
        assert_eq!(
            err(builder().host_prefix().domain("example.com")),
            ConfigError::HostPrefixConflict
        );
        assert_eq!(
            err(builder().host_prefix().path("/app")),
            ConfigError::HostPrefixConflict
        );
        assert_eq!(
            err(builder().host_prefix().insecure_http_for_development()),
            ConfigError::HostPrefixConflict
        );
        assert_eq!(
            err(builder()
                .cookie_name("__Secure-s")
                .insecure_http_for_development()),
            ConfigError::SecurePrefixInsecure
        );
        assert_eq!(
            err(builder()
                .same_site(SameSite::None)
                .insecure_http_for_development()),
            ConfigError::SameSiteNoneInsecure
        );
        assert!(matches!(
            err(builder()
                .lifetime(Duration::from_secs(60))
                .idle_timeout(Duration::from_secs(61))),
            ConfigError::IdleExceedsLifetime { .. }
        ));
        assert!(matches!(
            err(builder().idle_timeout(Duration::from_millis(500))),
            ConfigError::ZeroDuration(_)
        ));
        assert!(matches!(
            err(builder()
                .idle_timeout(Duration::from_secs(60))
                .refresh_after(Duration::from_secs(60))),
            ConfigError::RefreshNotBelowIdle { .. }
        ));
        assert_eq!(
            err(builder().opened_cookie_cache(usize::MAX)),
            ConfigError::OpenedCacheTooLarge {
                entries: usize::MAX,
                max: opened_cache::MAX_ENTRIES
            }
        );
        assert!(builder()
            .opened_cookie_cache(opened_cache::MAX_ENTRIES)
            .build()
            .unwrap()
            .shared
            .opened
            .is_some());
        assert!(builder()
            .opened_cookie_cache(0)
            .build()
            .unwrap()
            .shared
            .opened
            .is_none());
    }

    #[test]
    fn the_cookie_size_is_bounded() {
        for bytes in [0, MIN_COOKIE_SIZE - 1, MAX_COOKIE_SIZE + 1, usize::MAX] {
            assert_eq!(
                builder().max_cookie_size(bytes).build().unwrap_err(),
                ConfigError::CookieSizeOutOfRange {
                    bytes,
                    min: MIN_COOKIE_SIZE,
                    max: MAX_COOKIE_SIZE
                }
            );
        }
        for bytes in [MIN_COOKIE_SIZE, DEFAULT_MAX_COOKIE_SIZE, MAX_COOKIE_SIZE] {
            let c = builder().max_cookie_size(bytes).build().unwrap();
            assert!(c.shared.cookie.layout.max_value_len() < bytes);
        }
    }

    #[test]
    fn host_prefix_is_added_once() {
        let c = builder()
            .cookie_name("__Host-x")
            .host_prefix()
            .build()
            .unwrap();
        assert_eq!(c.cookie_name(), "__Host-x");
    }
}
