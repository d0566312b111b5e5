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
//! - Each call of [`Session::csrf_token`] hands out the token masked afresh: a random pad, then
//!   the pad XOR the token, base64url (86 characters). A page compressed over TLS with some
//!   reflected input beside the token could otherwise leak it byte by byte to an attacker who
//!   can make many requests and watch the sizes (BREACH); a value that changes every time gives
//!   the compression nothing to match. Django and Rails mask the same way.
//! - Checking unmasks and compares in constant time, and never creates a session or a token.

use base64_simd::{Out, URL_SAFE_NO_PAD};

use super::{Session, SessionError};
use crate::opened_cache::constant_time_eq;

/// The data key the token is stored under.
pub(crate) const CSRF_KEY: &str = "_csrf";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of the stored token (base64url of `TOKEN_BYTES`) and of a masked one (twice).
const STORED_LEN: usize = 43;
const MASKED_LEN: usize = 86;

impl Session {
    /// The session's CSRF token, to put into every form that changes something (as a hidden
    /// field) or into a header of script requests; created on first use, masked afresh on each
    /// call (see the module docs). Check it on the way back with
    /// [`require_csrf_token`](Self::require_csrf_token) (an error that is a 403 with `axum`) or
    /// [`verify_csrf_token`](Self::verify_csrf_token) (a `bool`).
    ///
    /// ```
    /// use sealed_sessions::{Session, SessionError};
    ///
    /// fn form(session: &Session) -> Result<String, SessionError> {
    ///     let token = session.csrf_token()?; // base64url: safe in HTML and URLs as is
    ///     Ok(format!(
    ///         r#"<form method="post" action="/settings">
    ///              <input type="hidden" name="csrf" value="{token}">
    ///              <button>Save</button>
    ///            </form>"#
    ///     ))
    /// }
    ///
    /// fn save(session: &Session, form_csrf: &str) -> Result<(), SessionError> {
    ///     session.require_csrf_token(form_csrf)?; // SessionError::CsrfMismatch: a 403 in axum
    ///     // ...change the settings
    ///     Ok(())
    /// }
    /// # let _ = (form, save);
    /// ```
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        let token = match self.stored_csrf_token() {
            Some(token) => token,
            None => {
                let mut token = [0u8; TOKEN_BYTES];
                crate::random::fill(&mut token);
                self.insert(CSRF_KEY, &URL_SAFE_NO_PAD.encode_to_string(token))?;
                token
            }
        };
        let mut masked = [0u8; 2 * TOKEN_BYTES];
        let (pad, rest) = masked.split_at_mut(TOKEN_BYTES);
        crate::random::fill(pad);
        for ((out, p), t) in rest.iter_mut().zip(pad.iter()).zip(token) {
            *out = p ^ t;
        }
        Ok(URL_SAFE_NO_PAD.encode_to_string(masked))
    }

    /// Whether `token` is this session's CSRF token (as [`csrf_token`](Self::csrf_token) hands
    /// it out, in any of its masks), compared in constant time. `false` when the session has
    /// none (a forged post to a fresh session), whatever `token` is.
    pub fn verify_csrf_token(&self, token: &str) -> bool {
        let Some(ours) = self.stored_csrf_token() else {
            return false;
        };
        let mut masked = [0u8; 2 * TOKEN_BYTES];
        // Anything but 86 base64url characters is not a token; its length is public anyway.
        if token.len() != MASKED_LEN
            || URL_SAFE_NO_PAD
                .decode(token.as_bytes(), Out::from_slice(&mut masked))
                .is_err()
        {
            return false;
        }
        let (pad, rest) = masked.split_at(TOKEN_BYTES);
        let mut unmasked = [0u8; TOKEN_BYTES];
        for ((out, p), m) in unmasked.iter_mut().zip(pad).zip(rest) {
            *out = p ^ m;
        }
        constant_time_eq(&ours, &unmasked)
    }

    /// [`verify_csrf_token`](Self::verify_csrf_token) as a `Result`, for `?`:
    /// [`SessionError::CsrfMismatch`] (with `axum`, a 403 response) unless `token` is this
    /// session's.
    pub fn require_csrf_token(&self, token: &str) -> Result<(), SessionError> {
        if self.verify_csrf_token(token) {
            Ok(())
        } else {
            Err(SessionError::CsrfMismatch)
        }
    }

    /// The stored token's bytes; `None` if there is none or it is not one of ours.
    fn stored_csrf_token(&self) -> Option<[u8; TOKEN_BYTES]> {
        let text = self.get::<String>(CSRF_KEY).ok().flatten()?;
        let mut token = [0u8; TOKEN_BYTES];
        (text.len() == STORED_LEN)
            .then(|| {
                URL_SAFE_NO_PAD
                    .decode(text.as_bytes(), Out::from_slice(&mut token))
                    .ok()
            })
            .flatten()?;
        Some(token)
    }
}
