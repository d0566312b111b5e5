//! Sudo mode: asking for the password again before a sensitive change (ASVS 5.0 7.5.1, 7.5.3).
//!
//! The sign-in time is sealed in the cookie (`auth_time`), so "how long ago did this user
//! authenticate" costs no lookup. A handler guards a sensitive action with
//! [`Session::require_recent_authentication`]; when that fails, the application asks for the
//! password, checks it, and calls [`Session::reauthenticate`], which rotates the id exactly as
//! [`Session::renew`] does (ASVS 7.2.4: a new id whenever the user re-authenticates) and records
//! the new authentication time.

use std::time::Duration;

use super::login::Reissue;
use super::{Session, SessionError};

impl Session {
    /// Records that the application has just checked the signed-in user's credential again
    /// (the password, a second factor): the session gets a new id, rotated in the registry in
    /// one step as [`renew`](Self::renew) does, and a new authentication time; its data, user
    /// and deadlines stay. Call it only after the credential was verified.
    ///
    /// Fails with [`SessionError::NotSignedIn`] without a user, and with
    /// [`SessionError::NotActive`] if the session was revoked (say by "sign out everywhere")
    /// while this request ran: then the session is signed out, not renewed.
    pub async fn reauthenticate(&self) -> Result<(), SessionError> {
        self.reissue(Reissue::Reauthenticate).await
    }

    /// How long ago the user signed in or last [re-authenticated](Self::reauthenticate), as of
    /// this request; `None` without a user. Zero if the clock went back.
    pub fn since_authentication(&self) -> Option<Duration> {
        let auth = self.auth_time()?;
        Some(self.inner.now.duration_since(auth).unwrap_or_default())
    }

    /// Succeeds if the user authenticated within the configured window
    /// ([`reauthentication_window`](crate::SessionConfigBuilder::reauthentication_window), 20
    /// minutes by default); see [`require_authenticated_within`](Self::require_authenticated_within).
    ///
    /// ```
    /// use sealed_sessions::{Session, SessionError};
    ///
    /// async fn change_email(session: Session, new_email: String) -> Result<(), SessionError> {
    ///     // With axum, `?` answers 403 "Reauthentication Required": ask for the password, check
    ///     // it, call `session.reauthenticate()`, and try again.
    ///     session.require_recent_authentication()?;
    ///     // ... change the email ...
    /// # let _ = new_email;
    ///     Ok(())
    /// }
    /// ```
    pub fn require_recent_authentication(&self) -> Result<(), SessionError> {
        self.require_authenticated_within(self.inner.shared.reauthentication_window)
    }

    /// Succeeds if the signed-in user authenticated at most `window` ago. Fails with
    /// [`SessionError::NotSignedIn`] without a user, and with
    /// [`SessionError::ReauthenticationRequired`] when the authentication is older, or lies
    /// more than `window` in the future (the clock was set back, or this host's runs that far
    /// behind the one that sealed it): a time the clock has not reached would otherwise count
    /// as recent for as long as the clock was off.
    pub fn require_authenticated_within(&self, window: Duration) -> Result<(), SessionError> {
        let auth = self.auth_time().ok_or(SessionError::NotSignedIn)?;
        let now = self.inner.now;
        let distance = now
            .duration_since(auth)
            .or_else(|_| auth.duration_since(now))
            .unwrap_or(Duration::MAX);
        if distance > window {
            return Err(SessionError::ReauthenticationRequired {
                authenticated_at: auth,
                window,
            });
        }
        Ok(())
    }
}
