//! The response side of a [`Session`]: the `Set-Cookie` it needs, if any.
//!
//! A cookie is set only when the session changed, got a new id, was opened with an old key, or
//! its idle deadline is due for refresh; an emptied or signed-out session's cookie is removed;
//! a login or renewal whose registration failed sends none.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use super::{Registration, Session, State, FLASH_KEY};
use crate::claims::ClaimsCore;
use crate::opened_cache::MAX_RAW_LEN;
use crate::SealError;

/// What the response needs for the session.
#[derive(Debug)]
pub(crate) struct Saved {
    /// The `Set-Cookie` value, if one is needed.
    pub(crate) cookie: Option<HeaderValue>,
    /// The handler used the session, so the response depends on the request's cookie.
    pub(crate) accessed: bool,
}

/// Why the session could not be saved into the response.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// A login or renewal did not complete its registration: send no cookie.
    Unregistered,
    /// The sealed cookie would be too large.
    Seal(SealError),
    /// The cookie did not render as a header value (cannot happen with validated settings).
    Render,
}

impl Session {
    /// What this request's response needs: a `Set-Cookie`, and whether it varies by cookie.
    pub(crate) fn save(&self) -> Result<Saved, SaveError> {
        let mut state = self.lock_quietly();
        let accessed = state.accessed;
        let cookie = self.cookie(&mut state)?;
        Ok(Saved { cookie, accessed })
    }

    /// The `Set-Cookie` value this request's response needs, if any.
    fn cookie(&self, state: &mut State) -> Result<Option<HeaderValue>, SaveError> {
        let s = &*self.inner.shared;
        let now = self.inner.now;
        let buf = self.buf();
        if state.registration != Registration::NotNeeded {
            return Err(SaveError::Unregistered);
        }
        if !state.new_flashes.is_empty() {
            let new = std::mem::take(&mut state.new_flashes);
            let c = state
                .claims
                .get_or_insert_with(|| ClaimsCore::new(now, s.plain.lifetime, s.plain.idle));
            let mut all: Vec<(String, String)> =
                c.get(buf, FLASH_KEY).ok().flatten().unwrap_or_default();
            all.extend(new);
            // A list of string pairs always serializes.
            if let Ok(json) = serde_json::to_vec(&all) {
                c.insert_json(buf, FLASH_KEY, &json);
                state.dirty = true;
            }
        }
        let removal = || s.cookie.render_removal().map(Some).ok_or(SaveError::Render);
        let Some(c) = state.claims.as_mut() else {
            return if state.purged && state.cookie_present {
                removal()
            } else {
                Ok(None)
            };
        };
        if !c.has_user() && c.is_empty() {
            // Nothing worth a cookie: never set one for an untouched or emptied anonymous
            // session, and delete the one the browser has if the handler emptied it.
            return if (state.dirty || state.purged) && state.cookie_present {
                removal()
            } else {
                Ok(None)
            };
        }
        let limits = s.limits(c.is_persistent());
        let refresh_due = {
            let target = now + limits.idle;
            let target = target.min(c.expires_at());
            target
                .duration_since(c.idle_deadline())
                .is_ok_and(|gained| gained >= limits.refresh_after)
        };
        if !(state.dirty || state.needs_reseal || refresh_due) {
            return Ok(None);
        }
        c.touch(now, limits.idle);
        let value = match s.opened.as_ref().filter(|_| state.cookie_opened) {
            // This client returns our cookie, so its next request will carry this value:
            // remember what it opens to, so that that request does not pay for opening it
            // (see `opened_cache.rs`).
            Some(cache) => {
                let (value, opened) = s
                    .sealer
                    .seal_core_as_opened(&s.cookie.name, c, buf, MAX_RAW_LEN)
                    .map_err(SaveError::Seal)?;
                if let Some(opened) = opened {
                    cache.insert(&value, opened.raw.into(), opened.claims, false);
                }
                value
            }
            None => s
                .sealer
                .seal_core(&s.cookie.name, c, buf)
                .map_err(SaveError::Seal)?,
        };
        // Sealed times are whole seconds; count Max-Age the same way.
        let max_age = c.is_persistent().then(|| {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Duration::from_secs(secs(c.idle_deadline()).saturating_sub(secs(now)))
        });
        s.cookie
            .render(&value, max_age)
            .map(Some)
            .ok_or(SaveError::Render)
    }
}
