//! The response side of a [`Session`]: the `Set-Cookie` it needs, if any.
//!
//! A cookie is set only when the session changed, got a new id, was opened with an old key, or
//! its idle deadline is due for refresh; an emptied or signed-out session's cookie is removed;
//! a login or renewal whose registration failed sends none, and neither does a request served
//! signed out because the registry could not answer for its cookie (unless it signs a user in).
//!
//! A sealed value too long for one cookie goes out as several (`cookie_header/chunks.rs`), and
//! chunk cookies the request carried that the new value does not use are removed with it
//! (expired `Set-Cookie`s), as they are when the whole session is removed. What fits is decided
//! before anything is stored: [`insert_within`] refuses the insert that would make the session
//! too large for its cookies ([`SessionError::TooLarge`]), and [`Session::flash`] the message,
//! counting the flash messages queued for the response ([`sealed_len`]), so a handler hears of
//! it where it can act, instead of the response becoming a 500.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use super::flash::{append_flashes, sealed_len};
use super::{Registration, Session, SessionError, State};
use crate::claims::ClaimsCore;
use crate::config::Shared;
use crate::envelope_bytes::Envelope;
use crate::opened_cache::{OpenedCache, MAX_RAW_LEN};
use crate::seal::{AsOpened, SealError};
use crate::telemetry::set_cookies::SetCookie;
use crate::wire::varint_len;

/// What the response needs for the session.
#[derive(Debug)]
pub(crate) struct Saved {
    /// The `Set-Cookie` value, if one is needed.
    pub(crate) cookie: Option<HeaderValue>,
    /// More `Set-Cookie` values after it: the other chunks of a split value, and removals of
    /// chunks no longer used. Empty (no allocation) for a session in one cookie.
    pub(crate) more: Vec<HeaderValue>,
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
        let (cookie, more) = match self.cookie(&mut state)? {
            Some((cookie, more)) => (Some(cookie), more),
            None => (None, Vec::new()),
        };
        Ok(Saved {
            cookie,
            more,
            accessed,
        })
    }

    /// The most bytes of encoded claims the session's cookies can carry.
    pub(super) fn max_claims_len(&self) -> usize {
        let s = &self.inner.shared;
        s.sealer.claims_len_within(s.cookie.layout.max_value_len())
    }

    /// The `Set-Cookie` values this request's response needs, if any: the first, and more.
    fn cookie(
        &self,
        state: &mut State,
    ) -> Result<Option<(HeaderValue, Vec<HeaderValue>)>, SaveError> {
        let s = &*self.inner.shared;
        let now = self.inner.now;
        let buf = self.buf();
        if state.registration != Registration::NotNeeded {
            return Err(SaveError::Unregistered);
        }
        if state.keep_cookie && !state.claims.as_ref().is_some_and(ClaimsCore::has_user) {
            // The user's cookie waits for the registry to come back: whatever the handler
            // wrote into the stand-in session (a CSRF token for a form, say) lives only for
            // this request.
            return Ok(None);
        }
        if !state.new_flashes.is_empty() {
            let new = std::mem::take(&mut state.new_flashes);
            let c = state
                .claims
                .get_or_insert_with(|| ClaimsCore::new(now, s.plain.lifetime, s.plain.idle));
            append_flashes(c, buf, &new);
            state.dirty = true;
        }
        let chunks = state.chunks;
        let sign = state.sign;
        let removal = || {
            let head = s.cookie.render_removal().ok_or(SaveError::Render)?;
            s.set_cookies.count(match sign {
                Some(SetCookie::Logout) => SetCookie::Logout,
                _ => SetCookie::Removal,
            });
            Ok(Some((head, s.cookie.render_chunk_removals(chunks, 1))))
        };
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
        let refresh_due = c.refresh_due(now, limits.idle, limits.refresh_after);
        if !(state.dirty || state.needs_reseal || refresh_due) {
            return Ok(None);
        }
        let why = match sign {
            Some(SetCookie::Login) => SetCookie::Login,
            _ if state.dirty => SetCookie::Changed,
            _ if state.needs_reseal => SetCookie::KeyRotation,
            _ => SetCookie::IdleRefresh,
        };
        c.touch(now, limits.idle);
        // Sealed times are whole seconds; count Max-Age the same way.
        let max_age = c.is_persistent().then(|| {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Duration::from_secs(secs(c.idle_deadline()).saturating_sub(secs(now)))
        });
        let name = &s.cookie.name;
        let size = s.sealer.sealed_len(name, c).map_err(SaveError::Seal)?;
        let value_len = size.value_len;
        let n = s.cookie.layout.chunks_for(value_len).ok_or_else(|| {
            SaveError::Seal(SealError::CookieTooLarge {
                size: name.len() + 1 + value_len,
                limit: s.cookie.seal_limit(),
            })
        })?;
        // This client returns our cookie, so its next request will carry this value: remember
        // what it opens to, so that that request does not pay for opening it (see
        // `opened_cache.rs`).
        let cache = s.opened.as_ref().filter(|_| state.cookie_opened);
        let keep = cache.map(|_| MAX_RAW_LEN);
        let seal = |out: &mut String| s.sealer.seal_core_into(name, (c, size), buf, keep, out);
        s.set_cookies.count(why);
        if n == 1 {
            // The usual case: the value is sealed straight into the `Set-Cookie` line.
            let mut opened = None;
            let (line, at) = s
                .cookie
                .render_with(value_len, max_age, |out| opened = seal(out))
                .ok_or(SaveError::Render)?;
            if let (Some(cache), Some(opened)) = (cache, opened) {
                let value = line.as_bytes().get(at).unwrap_or_default();
                remember(s, cache, value, opened);
            }
            // Nothing to remove in the usual case, and no allocation for it.
            let stale = if chunks == 0 {
                Vec::new()
            } else {
                s.cookie.render_chunk_removals(chunks, 1)
            };
            return Ok(Some((line, stale)));
        }
        let mut value = String::with_capacity(value_len);
        let opened = seal(&mut value);
        if let (Some(cache), Some(opened)) = (cache, opened) {
            remember(s, cache, value.as_bytes(), opened);
        }
        let mut lines = s
            .cookie
            .render_chunks(&value, n, max_age)
            .ok_or(SaveError::Render)?;
        lines.extend(s.cookie.render_chunk_removals(chunks, n));
        if lines.is_empty() {
            return Err(SaveError::Render);
        }
        let first = lines.remove(0);
        Ok(Some((first, lines)))
    }
}

/// Remembers that `value`, just sealed, opens into `opened` (see `opened_cache.rs`).
fn remember(s: &Shared, cache: &OpenedCache, value: &[u8], opened: AsOpened) {
    let end = s.session_end(&opened.claims);
    cache.insert(
        value,
        Arc::new(Envelope::new(opened.raw)),
        (opened.claims, end),
        false,
    );
}

/// Stores `json` under `key` in `c` (reading from `buf`) if the claims, with the flash
/// messages `flashes` queued, still encode in at most `max` bytes afterwards; otherwise changes
/// nothing and says how large they would be.
pub(super) fn insert_within(
    c: &mut ClaimsCore,
    buf: &[u8],
    key: &str,
    json: &[u8],
    max: usize,
    flashes: &[(String, String)],
) -> Result<(), SessionError> {
    // At most this much longer: as if the key were new (a replaced value takes its old bytes
    // with it) and the count's varint grew by a byte. Within that, no copy is needed.
    let entry =
        varint_len(key.len() as u64) + key.len() + varint_len(json.len() as u64) + json.len();
    if flashes.is_empty() && c.encoded_len().saturating_add(entry + 1) <= max {
        c.insert_json(buf, key, json);
        return Ok(());
    }
    let before = c.clone();
    c.insert_json(buf, key, json);
    let size = sealed_len(c, buf, flashes);
    if size > max {
        *c = before;
        return Err(SessionError::TooLarge { size, max });
    }
    Ok(())
}
