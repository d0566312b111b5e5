//! [`Session`]: the handle request handlers use to read and change their session.
//!
//! The middleware puts one into every request's extensions. All clones share one state, so a
//! handler may pass copies around; the middleware reads the final state once the handler's
//! response is ready and decides then whether a `Set-Cookie` is needed.
//!
//! The state sits behind a `std::sync::Mutex` that no method holds across an `.await`:
//! [`Session::login`], [`Session::renew`] and [`Session::logout`] change the state first, then
//! talk to the registry, then record the outcome.
//!
//! `loading.rs` builds the state before any handler sees it, from the cookie that opened (its
//! decoded envelope usually shared with the cache of opened values); `save.rs` turns the final
//! state into the response's `Set-Cookie`.
//!
//! The handle's other concerns have a file each: `login.rs` signs in, renews and signs out
//! (the id's rotation and its registration), `devices.rs` lists and revokes the user's sessions,
//! `lifetime.rs` chooses remember-me and reads the session's deadlines, `sudo.rs` asks for a
//! recent authentication before sensitive changes, and `flash.rs` and
//! `csrf.rs` keep flash messages and the CSRF token in the session's data. This file holds the
//! handle, its state, and reading and writing the data.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::claims::ClaimsCore;
use crate::config::Shared;
use crate::cookie_buf::CookieBuf;
use crate::id::SessionId;
use crate::registry::RegistryError;
use crate::telemetry::set_cookies::SetCookie;
use json_buf::JsonBuf;

mod csrf;
mod devices;
mod flash;
mod json_buf;
mod lifetime;
mod loading;
mod login;
mod save;
mod sudo;

pub use devices::Device;
pub use flash::Flash;

pub(crate) use loading::{Candidate, Seen};
pub(crate) use save::{SaveError, Saved};

/// Why a [`Session`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A value did not serialize, or a stored value did not deserialize as the requested type.
    #[error("session value (de)serialization failed: {0}")]
    Serde(#[from] serde_json::Error),
    /// The registry failed. After a failed [`Session::login`] or [`Session::renew`], the response
    /// becomes HTTP 503 and carries no session cookie, whatever the handler returns.
    #[error("the session registry failed: {0}")]
    Registry(#[from] RegistryError),
    /// [`Session::renew`] found the session no longer active in the registry (it was revoked,
    /// or renewed by a concurrent request, while the request ran): this request's session is
    /// now signed out, and its response sets no cookie.
    #[error("the session was revoked; it is signed out now")]
    NotActive,
    /// The action needs a signed-in user ([`Session::devices`] and the sign-out actions) and
    /// the session has none.
    #[error("no user is signed in")]
    NotSignedIn,
    /// The action needs a registry ([`Session::devices`] and the sign-out actions) and the
    /// configuration has none: see [`SessionConfigBuilder::registry`].
    ///
    /// [`SessionConfigBuilder::registry`]: crate::SessionConfigBuilder::registry
    #[error("this action needs a session registry, and none is configured")]
    NoRegistry,
    /// [`Session::require_csrf_token`]: the form's CSRF token is missing, stale (from before a
    /// login, or from another session) or forged. With `axum`, a 403.
    #[error("the form's CSRF token is missing, stale or forged")]
    CsrfMismatch,
    /// [`Session::require_recent_authentication`] (sudo mode): the user signed in longer ago
    /// than the window allows. Ask for the password again, check it, call
    /// [`Session::reauthenticate`] and retry. With `axum`, a 403 whose body is
    /// `Reauthentication Required`.
    #[error("the sign-in is older than the {window:?} this action allows; re-authenticate")]
    ReauthenticationRequired {
        /// When the user last authenticated.
        authenticated_at: SystemTime,
        /// The window that was asked for.
        window: std::time::Duration,
    },
    /// [`Session::insert`] (or [`Session::flash`], or a [`Session::login`] that adds the user
    /// id) would make the session too large for the cookies it can be sent in (see [`SessionConfigBuilder::max_cookie_size`](crate::SessionConfigBuilder::max_cookie_size)).
    /// Nothing was changed; [`Session::remaining_bytes`] tells what still fits.
    #[error(
        "the session would hold {size} bytes, over the {max} its cookies can carry; nothing was \
         stored: keep large data on the server (keyed by the session id or user) or raise \
         SessionConfigBuilder::max_cookie_size"
    )]
    TooLarge {
        /// The bytes of encoded session data the insert would have made.
        size: usize,
        /// The most the session's cookies can carry.
        max: usize,
    },
}

/// The session of the current request: cheap to clone, shared by all clones.
///
/// Handlers get it from the request extensions (or with the axum extractor):
///
/// ```
/// use sealed_sessions::Session;
///
/// fn count_visit(req: &http::Request<()>) -> Result<u32, sealed_sessions::SessionError> {
///     let session = req.extensions().get::<Session>().expect("SessionLayer is installed");
///     let visits = session.get::<u32>("visits")?.unwrap_or(0) + 1;
///     session.insert("visits", &visits)?;
///     Ok(visits)
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The request's time, read once from the configured clock.
    now: SystemTime,
    client: ClientInfo,
    /// The decoded cookie the claims read their user and data from. Set when the session is
    /// loaded and never changed, so it needs no lock.
    buf: CookieBuf,
    state: Mutex<State>,
}

/// Who the request came from, recorded in the registry at login.
#[derive(Debug, Default)]
pub(crate) struct ClientInfo {
    pub(crate) ip: Option<IpAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
}

struct State {
    /// `None` for a new visitor until something needs the session to exist: creating claims
    /// draws a random id, which a request that never touches its session should not pay for.
    claims: Option<ClaimsCore>,
    /// The request carried a cookie of our name, valid or not: a removal cookie makes sense.
    cookie_present: bool,
    /// That cookie opened: this client sends our cookie back, so a value sealed for it is worth
    /// remembering as opened (a client that keeps no cookies would only evict others').
    cookie_opened: bool,
    /// The claims changed and must be sealed again.
    dirty: bool,
    /// Opened with an old key: re-seal with the primary key.
    needs_reseal: bool,
    /// `logout` ran: remove the cookie unless the handler started a new session afterwards.
    purged: bool,
    /// A login or renewal whose registration has not succeeded; the cookie must not go out.
    registration: Registration,
    /// Flash messages set during this request, for the next one.
    new_flashes: Vec<(String, String)>,
    /// The handler used the session, so its response depends on the cookie (`Vary: Cookie`).
    accessed: bool,
    /// The request's session cookie opened but the registry refused it, and no other was taken.
    revoked: bool,
    /// The request's session cookie opened but the registry could not answer for it, so the
    /// request is served signed out (`RegistryErrorPolicy::SignedOut`): the response neither
    /// replaces that cookie with the stand-in anonymous session nor removes it. Only a
    /// sign-in, a session of its own, sets a cookie.
    keep_cookie: bool,
    /// The request's chunk cookies (`NAME.k`), as bits `1 << k`: those the response's session
    /// does not use are removed (`save.rs`).
    chunks: u8,
    /// A sign-in or sign-out this request made, the reason its `Set-Cookie` goes out (metrics).
    sign: Option<SetCookie>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    NotNeeded,
    Pending(SessionId),
    Failed,
}

impl Session {
    /// The state, for a handler's call: the response now depends on the session (see `save`).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock_quietly();
        state.accessed = true;
        state
    }

    /// The state, for the middleware's own use.
    fn lock_quietly(&self) -> MutexGuard<'_, State> {
        // A handler that panicked while holding the lock left consistent data: every method
        // finishes its changes before it can panic.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration this session was loaded under.
    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The bytes the claims read their user and data from.
    fn buf(&self) -> &[u8] {
        self.inner.buf.as_slice()
    }

    /// Runs `f` on the claims, creating a new anonymous session first if there is none.
    fn with_claims<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        if state.claims.is_none() {
            let s = &self.inner.shared;
            state.claims = Some(ClaimsCore::new(
                self.inner.now,
                s.plain.lifetime,
                s.plain.idle,
            ));
        }
        f(&mut state)
    }

    fn read<R>(&self, f: impl FnOnce(&ClaimsCore) -> R) -> R {
        self.with_claims(|state| f(claims(state)))
    }

    /// The session id (a new visitor's session gets its id on first use).
    pub fn id(&self) -> SessionId {
        self.read(ClaimsCore::id)
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<String> {
        self.lock()
            .claims
            .as_ref()
            .and_then(|c| c.user(self.buf()).map(str::to_owned))
    }

    /// The value under `key`, deserialized as `T`; `Ok(None)` when there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match &self.lock().claims {
            Some(c) => Ok(c.get(self.buf(), key)?),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`; the cookie is re-sealed on the way out.
    ///
    /// Fails with [`SessionError::TooLarge`], changing nothing, if the session would then be too
    /// large for its cookies; see [`Self::remaining_bytes`].
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), SessionError> {
        // Serialize before taking the lock: a `Serialize` impl that reads the session must not
        // deadlock, and one that fails must change nothing.
        let mut json = JsonBuf::new();
        serde_json::to_writer(&mut json, value)?;
        let json = json.as_slice();
        let max = self.max_claims_len();
        self.with_claims(|state| {
            let flashes = &state.new_flashes;
            let c = state.claims.as_mut();
            let c = c.unwrap_or_else(|| unreachable!("with_claims creates the claims"));
            save::insert_within(c, self.buf(), key, json, max, flashes)?;
            state.dirty = true;
            Ok(())
        })
    }

    /// How many more bytes of data the session can hold before [`Self::insert`] fails with
    /// [`SessionError::TooLarge`]. An entry takes its key's length plus its value's JSON length
    /// plus two (more for keys or values of 128 bytes or longer); a later login adds the user
    /// id. Flash messages queued during this request ([`Self::flash`]) count already.
    ///
    /// ```
    /// use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionError, SessionLayer};
    /// use tower::{Layer, ServiceExt};
    ///
    /// async fn handler(req: http::Request<String>) -> Result<http::Response<String>, SessionError> {
    ///     let session = req.extensions().get::<Session>().expect("SessionLayer is installed");
    ///     let room = session.remaining_bytes();
    ///     let err = session.insert("notes", &"x".repeat(room)).unwrap_err();
    ///     assert!(matches!(err, SessionError::TooLarge { size, max } if size > max));
    ///     assert_eq!(session.remaining_bytes(), room, "nothing was stored");
    ///     // The key, the string's quotes and two length bytes take 10 bytes besides its text.
    ///     session.insert("notes", &"x".repeat(room - 10))?;
    ///     assert_eq!(session.remaining_bytes(), 0);
    ///     Ok(http::Response::new(String::new()))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = SessionConfig::builder(KeyRing::new(Key::generate())).build().unwrap();
    /// let svc = SessionLayer::new(config).layer(tower::service_fn(handler));
    /// let res = svc.oneshot(http::Request::new(String::new())).await.unwrap();
    /// // A full session still goes out (here as two cookies, the default allowing 6 KiB).
    /// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
    /// # }
    /// ```
    pub fn remaining_bytes(&self) -> usize {
        let max = self.max_claims_len();
        self.with_claims(|state| {
            max.saturating_sub(flash::sealed_len(
                claims(state),
                self.buf(),
                &state.new_flashes,
            ))
        })
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        let mut state = self.lock();
        let removed = state
            .claims
            .as_mut()
            .is_some_and(|c| c.remove(self.buf(), key));
        state.dirty |= removed;
        removed
    }

    /// Removes all data, keeping the id and the signed-in user.
    pub fn clear(&self) {
        let mut state = self.lock();
        if let Some(c) = state.claims.as_mut() {
            if !c.is_empty() {
                c.clear();
                state.dirty = true;
            }
        }
    }

    /// Whether this request came with a genuine, unexpired session cookie that the registry
    /// refused (the session was revoked: "sign out" from another device, "sign out everywhere",
    /// an operator's `sealed-sessions revoke`; or the registry no longer knows it), so that the
    /// session is now a fresh, signed-out one. A page can then say why the user sees the sign-in
    /// form ("You were signed out from another device"). `false` for a request without a
    /// cookie, or whose cookie was tampered with, sealed with an unknown key, or expired.
    ///
    /// ```
    /// # fn page(session: &sealed_sessions::Session) -> &'static str {
    /// if session.user().is_none() && session.was_revoked() {
    ///     return "You were signed out from another device.";
    /// }
    /// # ""
    /// # }
    /// ```
    pub fn was_revoked(&self) -> bool {
        self.lock().revoked
    }

    /// Whether the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.lock().claims.as_ref().is_none_or(ClaimsCore::is_empty)
    }

    /// Drops this request's session and returns its user and id, if it was signed in.
    fn sign_out_here(&self) -> Option<(String, SessionId)> {
        let mut state = self.lock();
        let old = state
            .claims
            .as_ref()
            .and_then(|c| c.user(self.buf()).map(|u| (u.to_owned(), c.id())));
        purge(&mut state);
        if old.is_some() {
            state.sign = Some(SetCookie::Logout);
            self.inner.shared.events.logout();
        }
        old
    }
}

/// Drops the session (data included) so that the response removes its cookie, unless the
/// handler starts a new session afterwards.
fn purge(state: &mut State) {
    state.claims = None;
    state.dirty = false;
    state.needs_reseal = false;
    state.purged = true;
    state.registration = Registration::NotNeeded;
}

fn claims(state: &State) -> &ClaimsCore {
    state
        .claims
        .as_ref()
        .unwrap_or_else(|| unreachable!("with_claims creates the claims"))
}

fn claims_mut(state: &mut State) -> &mut ClaimsCore {
    state
        .claims
        .as_mut()
        .unwrap_or_else(|| unreachable!("with_claims creates the claims"))
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock_quietly();
        let claims = state.claims.as_ref().map(|c| c.debug(self.buf()));
        let result = f
            .debug_struct("Session")
            .field("claims", &claims)
            .field("dirty", &state.dirty)
            .field("purged", &state.purged)
            .field("client", &self.inner.client)
            .finish();
        result
    }
}
