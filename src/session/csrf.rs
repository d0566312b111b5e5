//! A session-bound CSRF token: the synchronizer-token pattern, kept in the sealed session.
//!
//! A form that changes something carries a token that only pages of this site can know: the
//! session's token, rendered into the page. A cross-site form post carries the victim's cookie
//! but cannot read the page, so it cannot carry the token. `SameSite=Lax` (the default) already
//! stops most cross-site posts; the token also covers older browsers, sibling subdomains (which
//! count as the same site) and top-level `GET`s that change state by mistake.
//!
//! - The token is 32 bytes from the CSPRNG, base64url, stored in the session's data under
//!   [`CSRF_KEY`]: encrypted in private mode and, in both modes, authenticated and bound to this
//!   session. Creating it makes the session worth a cookie, so a visitor's login form works
//!   before anyone signs in.
//! - A login gives the session a new token (as it gives it a new id), so a token learnt before
//!   login is worthless after; a logout drops it with the rest of the session.
//! - Checking compares in constant time, and never creates a session or a token.

use base64_simd::URL_SAFE_NO_PAD;

use super::{Session, SessionError};
use crate::opened_cache::constant_time_eq;

/// The data key the token is stored under.
pub(crate) const CSRF_KEY: &str = "_csrf";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

impl Session {
    /// The session's CSRF token, to put into every form that changes something (as a hidden
    /// field) or into a header of script requests; created on first use. Check it on the way
    /// back with [`verify_csrf_token`](Self::verify_csrf_token).
    ///
    /// ```
    /// use sealed_sessions::{Session, SessionError};
    ///
    /// fn form(session: &Session) -> Result<String, SessionError> {
    ///     let token = session.csrf_token()?; // base64url: safe in HTML as is
    ///     Ok(format!(
    ///         r#"<form method="post" action="/settings">
    ///              <input type="hidden" name="csrf" value="{token}">
    ///              <button>Save</button>
    ///            </form>"#
    ///     ))
    /// }
    ///
    /// fn save(session: &Session, form_csrf: &str) -> Result<(), &'static str> {
    ///     if !session.verify_csrf_token(form_csrf) {
    ///         return Err("403: the form is stale or forged; reload the page");
    ///     }
    ///     // ...change the settings
    ///     Ok(())
    /// }
    /// # let _ = (form, save);
    /// ```
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        if let Some(token) = self.stored_csrf_token() {
            return Ok(token);
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        crate::random::fill(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode_to_string(bytes);
        self.insert(CSRF_KEY, &token)?;
        Ok(token)
    }

    /// Whether `token` is this session's CSRF token, compared in constant time. `false` when the
    /// session has none (a forged post to a fresh session), whatever `token` is.
    pub fn verify_csrf_token(&self, token: &str) -> bool {
        self.stored_csrf_token()
            .is_some_and(|ours| constant_time_eq(ours.as_bytes(), token.as_bytes()))
    }

    fn stored_csrf_token(&self) -> Option<String> {
        self.get::<String>(CSRF_KEY)
            .ok()
            .flatten()
            .filter(|t| !t.is_empty())
    }
}
