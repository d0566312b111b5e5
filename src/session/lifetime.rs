//! How long a session lasts, as the handle shows it: remember-me ([`Session::set_persistent`])
//! and the deadlines and login time sealed in the claims. The limits themselves are the
//! configuration's (`config/lifetimes.rs`).

use std::time::SystemTime;

use super::{claims_mut, Session};
use crate::claims::ClaimsCore;

impl Session {
    /// Chooses a persistent "remember me" session or, the default, a browser-session one.
    ///
    /// A persistent session's cookie has a `Max-Age`, so it survives a browser restart, and its
    /// limits are [`persistent_lifetime`] (30 days by default) and
    /// [`persistent_idle_timeout`] (7 days) instead of the usual 24 and 2 hours. The server
    /// enforces them from the sealed times either way.
    ///
    /// **Call it before [`login`](Self::login)**: a signed-in session's absolute end is fixed
    /// when the user signs in (the registry records it). Afterwards the cookie still becomes
    /// (or stops being) persistent and takes the other idle timeout, but its end never moves
    /// later (a warning is logged when that leaves it short of the persistent lifetime), and
    /// `set_persistent(false)` brings it back to the plain lifetime from login.
    ///
    /// ```
    /// # async fn sign_in(session: sealed_sessions::Session) -> Result<(), sealed_sessions::SessionError> {
    /// let remember_me = true; // the login form's checkbox
    /// session.set_persistent(remember_me);
    /// session.login("alice").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`persistent_lifetime`]: crate::SessionConfigBuilder::persistent_lifetime
    /// [`persistent_idle_timeout`]: crate::SessionConfigBuilder::persistent_idle_timeout
    pub fn set_persistent(&self, persistent: bool) {
        let s = &self.inner.shared;
        let now = self.inner.now;
        self.with_claims(|state| {
            let c = claims_mut(state);
            if c.is_persistent() == persistent {
                return;
            }
            c.set_persistent(persistent);
            let limits = s.limits(persistent);
            if c.has_user() {
                let login = c.auth_time().unwrap_or(now);
                if persistent && c.expires_at() < login + limits.lifetime {
                    tracing::warn!(
                        "Session::set_persistent(true) after login keeps the lifetime set at \
                         login; call it before login to give the session the persistent lifetime"
                    );
                }
                // Forgetting shortens the session to the plain lifetime from login (a cookie that
                // ends before its registry row is safe); remembering never lengthens it.
                let end = (!persistent).then(|| login + limits.lifetime);
                c.retime(now, None, limits.idle);
                if let Some(end) = end {
                    c.end_by(end);
                }
            } else {
                c.retime(now, Some(limits.lifetime), limits.idle);
            }
            state.dirty = true;
        });
    }

    /// Whether the cookie is persistent; see [`Self::set_persistent`].
    pub fn is_persistent(&self) -> bool {
        self.lock()
            .claims
            .as_ref()
            .is_some_and(ClaimsCore::is_persistent)
    }

    /// The absolute end of the session.
    pub fn expires_at(&self) -> SystemTime {
        self.read(ClaimsCore::expires_at)
    }

    /// The end of the session unless a request comes first.
    pub fn idle_deadline(&self) -> SystemTime {
        self.read(ClaimsCore::idle_deadline)
    }

    /// When the user logged in, if there is one.
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.lock().claims.as_ref().and_then(ClaimsCore::auth_time)
    }
}
