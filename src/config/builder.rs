//! [`SessionConfigBuilder`]: the settings, their defaults, and the checks that turn them into a
//! [`SessionConfig`]. The rules it applies live with their concepts (`cookie.rs`,
//! `lifetimes.rs`, `policy.rs`); this file holds the builder itself and the bounds of its
//! cache and cookie-size settings.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cookie::{
    check_attribute_len, has_prefix, DEFAULT_COOKIE_NAME, HOST_PREFIX, SECURE_PREFIX,
};
use super::error::ConfigError;
use super::lifetimes::{
    Limits, DEFAULT_PERSISTENT_IDLE_TIMEOUT, DEFAULT_PERSISTENT_LIFETIME,
    DEFAULT_REAUTHENTICATION_WINDOW,
};
use super::policy::{RegistryErrorPolicy, MAX_RETRY_AFTER};
use super::{ClockFn, SessionConfig, Shared};
use crate::client_ip::ClientIpSource;
use crate::cookie_header::{is_valid_attribute, is_valid_name, CookieSettings, Finder, SameSite};
use crate::key::KeyRing;
use crate::opened_cache::{self, OpenedCache};
use crate::registry::Registry;
use crate::seal::{Mode, Sealer};
use crate::telemetry::refusals::Refusals;
use crate::telemetry::sessions::SessionEvents;
use crate::telemetry::set_cookies::SetCookies;

/// Entries in the cache of opened cookie values; see [`SessionConfigBuilder::opened_cookie_cache`].
const DEFAULT_OPENED_CACHE: usize = 2048;

/// Bounds and default of [`SessionConfigBuilder::max_cookie_size`].
const MIN_COOKIE_SIZE: usize = 1024;
const MAX_COOKIE_SIZE: usize = 32 * 1024;
const DEFAULT_MAX_COOKIE_SIZE: usize = 6 * 1024;

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
            reauthentication_window: DEFAULT_REAUTHENTICATION_WINDOW,
        }
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
    reauthentication_window: Duration,
}

impl SessionConfigBuilder {
    /// The cookie name, used as given (with [`Self::host_prefix`], after the `__Host-` prefix).
    /// The default is [`DEFAULT_COOKIE_NAME`] after the prefix the attributes allow: see the
    /// module documentation of `src/config/cookie.rs` for why a name without a prefix is
    /// weaker.
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

    /// How recent a sign-in must be for
    /// [`Session::require_recent_authentication`](crate::Session::require_recent_authentication)
    /// ("sudo mode": re-enter the password before a sensitive change). Default 20 minutes
    /// ([`DEFAULT_REAUTHENTICATION_WINDOW`]).
    pub fn reauthentication_window(mut self, window: Duration) -> Self {
        self.reauthentication_window = window;
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
                reauthentication_window: self.reauthentication_window,
                plain_http_warned: [AtomicU64::new(0), AtomicU64::new(0)],
                refusals: Refusals::register(),
                set_cookies: SetCookies::register(),
                events: SessionEvents::register(),
            }),
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    fn builder() -> SessionConfigBuilder {
        SessionConfig::builder(KeyRing::new(Key::generate()))
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
}
