//! How long a session lasts: the absolute lifetime and idle timeout of browser-session and of
//! persistent ("remember me") cookies, and the bounds that keep every time computed from them
//! (expiry, `Max-Age`) from overflowing at request time.

use std::time::Duration;

use super::error::ConfigError;

/// The longest [`SessionConfigBuilder::lifetime`]: 400 days, the most browsers keep a cookie
/// (RFC 6265bis caps `Max-Age` and `Expires` there).
///
/// [`SessionConfigBuilder::lifetime`]: crate::SessionConfigBuilder::lifetime
pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The least a persistent ("remember me") session lasts unless configured: 30 days.
pub const DEFAULT_PERSISTENT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The least idle timeout of a persistent session unless configured: 7 days.
pub const DEFAULT_PERSISTENT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How recent a sign-in must be, unless configured, for a sensitive action ("sudo mode"):
/// 20 minutes, Phoenix's `phx.gen.auth` default. ASVS 5.0 (7.5.1, 7.5.3) asks for a fresh
/// authentication but names no window; 20 minutes covers one sitting at a settings page (the
/// user re-enters the password once, then changes email and password without being asked
/// again), while a cookie stolen or a device left unlocked an hour ago cannot make the change.
/// GitHub's 2 hours is looser than a default should be.
pub const DEFAULT_REAUTHENTICATION_WINDOW: Duration = Duration::from_secs(20 * 60);

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
    pub(super) fn check(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RegistryErrorPolicy, SessionConfig, SessionConfigBuilder};
    use crate::key::{Key, KeyRing};

    fn builder() -> SessionConfigBuilder {
        SessionConfig::builder(KeyRing::new(Key::generate()))
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
}
