//! What the middleware does when the registry cannot answer for a signed-in session: its own
//! file because it is a decision of the application's (fail closed with a 503, or serve the
//! request signed out), not a property of the cookie.

use std::time::Duration;

/// The longest `Retry-After` of [`RegistryErrorPolicy::ServiceUnavailable`]: one day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

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
