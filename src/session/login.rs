//! Signing in, renewing and signing out: [`Session::login`], [`Session::renew`] and
//! [`Session::logout`]. Each gives the session a new id (or none) under the lock, then talks to
//! the registry without it, then records the outcome: the registration must succeed before any
//! cookie for the new id goes out, and a rotation records the new id only if the old one was
//! still active.

use super::{claims, csrf, flash, purge, Registration, Session, SessionError};
use crate::claims::ClaimsCore;
use crate::registry::NewSession;
use crate::telemetry::set_cookies::SetCookie;

/// What a new id is for.
pub(super) enum Reissue {
    /// Signing this user in: a new session with a full lifetime.
    Login(String),
    /// A new id for the same session, its deadlines kept.
    Renew,
    /// A new id and a fresh authentication time for the user already signed in; like a renewal,
    /// never re-registered when the old id is gone (it may have been signed out everywhere).
    Reauthenticate,
}

impl Session {
    /// Gives the session a new id, keeping its data and user; do it whenever privileges change.
    /// The absolute expiry stays as it was, so renewing never extends a session.
    ///
    /// A signed-in session's id is rotated in the registry in one step: the new id is recorded
    /// only if the old one is still active. If it is not (the session was revoked, say by "sign
    /// out everywhere", or renewed by another request of the same browser, while this request
    /// ran), this request's session ends signed out and [`SessionError::NotActive`] is returned;
    /// the response sets no cookie, so the browser keeps whatever another response set. If the
    /// registry
    /// fails, the error is returned here and the response becomes HTTP 503 without a session
    /// cookie (the browser keeps its old one).
    ///
    /// Await it to the end: a handler that drops the future half-way (a timeout, a `select!`)
    /// may leave the rotation committed with no cookie sent for it, and the browser's cookie,
    /// whose id was retired, then signs it out. Likewise, "sign out this device" racing that
    /// device's renewal revokes the old id and finds nothing, while the device goes on under
    /// its new id: revoke by user ([`Registry::revoke_user`](crate::registry::Registry)) when
    /// it must be certain.
    pub async fn renew(&self) -> Result<(), SessionError> {
        self.reissue(Reissue::Renew).await
    }

    /// Signs `user` in: gives the session a new id first (so that an id planted by an attacker
    /// before login is worthless afterwards), binds the user, keeps the data, and registers the
    /// session (with the client's address and user agent) before any cookie is sent. A session
    /// that was signed in already has its old id retired in the same registry transaction.
    ///
    /// If the registration fails, the error is returned here and the response becomes HTTP 503
    /// without a session cookie: a cookie the registry does not know would be refused anyway.
    pub async fn login(&self, user: impl Into<String>) -> Result<(), SessionError> {
        self.reissue(Reissue::Login(user.into())).await
    }

    /// Rotates the id like [`renew`](Self::renew) (atomically in the registry, failing with
    /// [`SessionError::NotActive`] if the old id was revoked meanwhile), and with `reauth` also
    /// records a fresh authentication time (sudo mode, `sudo.rs`).
    pub(super) async fn reissue(&self, how: Reissue) -> Result<(), SessionError> {
        let s = &self.inner.shared;
        let now = self.inner.now;
        let login = matches!(how, Reissue::Login(_));
        let max = self.max_claims_len();
        let (register, old) = self.with_claims(|state| {
            // Changed on a copy first: a login whose user id would make the session too large
            // for its cookies fails here, before anything is registered or retired, and leaves
            // the session as it was (sealing it would fail at save, a 500 with the old id gone).
            let mut c = claims(state).clone();
            let old = c.user(self.buf()).map(|u| (u.to_owned(), c.id()));
            match how {
                // A login is a new session: new id, full lifetime.
                Reissue::Login(user) => {
                    let limits = s.limits(c.is_persistent());
                    c.renew(now, limits.lifetime, limits.idle);
                    c.set_user(user, now);
                    // A token learnt before login must not work after it (see `csrf.rs`).
                    c.remove(self.buf(), csrf::CSRF_KEY);
                }
                Reissue::Renew => c.renew_id(now),
                Reissue::Reauthenticate => {
                    if !c.has_user() {
                        return Err(SessionError::NotSignedIn);
                    }
                    c.renew_id(now);
                    c.set_auth_time(now);
                }
            }
            let size = flash::sealed_len(&c, self.buf(), &state.new_flashes);
            if size > max {
                return Err(SessionError::TooLarge { size, max });
            }
            state.dirty = true;
            state.purged = false;
            if login {
                state.sign = Some(SetCookie::Login);
            }
            let register = match (&s.registry, c.user(self.buf())) {
                (Some(_), Some(user)) => Some(self.new_registration(&c, user)),
                _ => None,
            };
            state.registration = match &register {
                Some(new) => Registration::Pending(new.id),
                None => Registration::NotNeeded,
            };
            state.claims = Some(c);
            Ok((register, old))
        })?;
        let (Some(registry), Some(new)) = (&s.registry, register) else {
            s.events.reissued(login, true);
            return Ok(());
        };
        let id = new.id;
        let result = match old {
            Some((old_user, old_id)) => {
                // A login proved who the user is, so it may start a session even if the old
                // one is gone: keep a copy to register then.
                let retry = login.then(|| new.clone());
                match (registry.rotate(&old_user, old_id, new).await, retry) {
                    (Ok(false), Some(new)) => registry.register(new).await.map(|()| true),
                    (result, _) => result,
                }
            }
            None => registry.register(new).await.map(|()| true),
        };
        let mut state = self.lock();
        // A later login in the same request may have replaced this id meanwhile.
        if state.registration != Registration::Pending(id) {
            return result.map(drop).map_err(SessionError::from);
        }
        match result {
            Ok(true) => {
                state.registration = Registration::NotNeeded;
                s.events.reissued(login, true);
                Ok(())
            }
            Ok(false) => {
                s.events.reissued(login, false);
                // No longer active (revoked while this request ran, or renewed by a concurrent
                // request of the same browser): no new id may come of it. The cookie is left
                // alone rather than removed: a concurrent renewal's response may have just set
                // the browser's new one, and a revoked cookie is removed on its next request.
                purge(&mut state);
                state.purged = false;
                Err(SessionError::NotActive)
            }
            Err(err) => {
                state.registration = Registration::Failed;
                Err(err.into())
            }
        }
    }

    fn new_registration(&self, c: &ClaimsCore, user: &str) -> NewSession {
        let client = &self.inner.client;
        let mut new = NewSession::new(c.id(), user, self.inner.now, c.expires_at());
        if let Some(ua) = client.user_agent.as_ref().and_then(|v| v.to_str().ok()) {
            new = new.user_agent(ua);
        }
        if let Some(ip) = client.ip {
            new = new.ip(ip);
        }
        new
    }

    /// Signs out: drops the session (data included), revokes it in the registry, and removes
    /// the cookie. The cookie is removed even if the revocation fails; the error is returned so
    /// that the handler can tell the user that other copies of the cookie may still work.
    pub async fn logout(&self) -> Result<(), SessionError> {
        let old = self.sign_out_here();
        if let (Some(registry), Some((user, id))) = (&self.inner.shared.registry, old) {
            registry.revoke(&user, id).await?;
        }
        Ok(())
    }
}
