//! Flash messages: set on one request, shown once on a later one.
//!
//! A message queued with [`Session::flash`] waits beside the session until the response is
//! sealed, when it is appended to the list stored under [`FLASH_KEY`] (so a message queued
//! before a logout survives it, in the new anonymous session). It counts against the session's
//! size from the moment it is queued: [`sealed_len`] is what every check that the session still
//! fits its cookies measures.

use super::{claims, Session, SessionError};
use crate::claims::ClaimsCore;

/// The data key under which flash messages wait for the next request.
const FLASH_KEY: &str = "_flash";

/// A message set on one request and shown once on a later one ("Saved.", "Wrong password.").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// A category chosen by the application, such as `"info"` or `"error"`.
    pub level: String,
    /// The message.
    pub message: String,
}

impl Session {
    /// Queues a flash message for a later request of this session.
    ///
    /// Fails with [`SessionError::TooLarge`], queuing nothing, if the session would then be too
    /// large for its cookies (the message is stored in the session until it is shown), as
    /// [`Self::insert`] does; the response is then sealed without it.
    ///
    /// ```
    /// # fn saved(session: &sealed_sessions::Session) {
    /// // A message is a nicety: if the session is full, the next page goes without it.
    /// let _ = session.flash("info", "Saved.");
    /// # }
    /// ```
    pub fn flash(
        &self,
        level: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<(), SessionError> {
        let new = (level.into(), message.into());
        let max = self.max_claims_len();
        self.with_claims(|state| {
            state.new_flashes.push(new);
            let size = sealed_len(claims(state), self.buf(), &state.new_flashes);
            if size > max {
                state.new_flashes.pop();
                return Err(SessionError::TooLarge { size, max });
            }
            Ok(())
        })
    }

    /// The flash messages set by earlier requests, removed from the session so that each is
    /// shown once. Messages set during this request wait for the next one.
    pub fn take_flashes(&self) -> Vec<Flash> {
        let mut state = self.lock();
        let Some(c) = state.claims.as_mut() else {
            return Vec::new();
        };
        let found = c.get::<Vec<(String, String)>>(self.buf(), FLASH_KEY);
        if !c.remove(self.buf(), FLASH_KEY) {
            return Vec::new();
        }
        state.dirty = true;
        found
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|(level, message)| Flash { level, message })
            .collect()
    }
}

/// The encoded length of `c` as the response will seal it: with the flash messages queued
/// during the request (`new`) appended to those it holds. Checked whenever the session grows
/// ([`Session::flash`], `insert`, `login`), so that sealing never finds it too large.
pub(super) fn sealed_len(c: &ClaimsCore, buf: &[u8], new: &[(String, String)]) -> usize {
    if new.is_empty() {
        return c.encoded_len();
    }
    let mut c = c.clone();
    append_flashes(&mut c, buf, new);
    c.encoded_len()
}

/// Appends the flash messages `new` to those `c` holds for the next request.
pub(super) fn append_flashes(c: &mut ClaimsCore, buf: &[u8], new: &[(String, String)]) {
    let mut all: Vec<(String, String)> = c.get(buf, FLASH_KEY).ok().flatten().unwrap_or_default();
    all.extend_from_slice(new);
    // A list of string pairs always serializes.
    if let Ok(json) = serde_json::to_vec(&all) {
        c.insert_json(buf, FLASH_KEY, &json);
    }
}
