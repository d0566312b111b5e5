//! [`ConfigError`]: why a configuration did not build, one variant per mistake a caller can
//! fix.

use std::fmt;
use std::time::Duration;

/// Why a [`SessionConfigBuilder`] did not build. `Debug` prints the message too, so that a
/// `?` in `main` reads well.
///
/// [`SessionConfigBuilder`]: crate::SessionConfigBuilder
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
    ///
    /// [`SessionConfigBuilder::opened_cookie_cache`]: crate::SessionConfigBuilder::opened_cookie_cache
    #[error("{entries} entries for the opened-cookie cache is over the limit of {max}")]
    OpenedCacheTooLarge {
        /// The entries asked for.
        entries: usize,
        /// The most allowed.
        max: usize,
    },
    /// [`SessionConfigBuilder::max_cookie_size`] is outside the range allowed.
    ///
    /// [`SessionConfigBuilder::max_cookie_size`]: crate::SessionConfigBuilder::max_cookie_size
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

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
