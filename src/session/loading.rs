//! The request side of a [`Session`]: its state, built once the request's cookies are settled.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{ClientInfo, Inner, Registration, Session, State};
use crate::claims::ClaimsCore;
use crate::config::Shared;
use crate::cookie_buf::CookieBuf;

/// What was seen of the request's cookies of our name, beside the session they came to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// A cookie of our name was there, valid or not.
    pub(crate) present: bool,
    /// The registry refused one of them (revoked, unknown or expired there).
    pub(crate) refused: bool,
    /// One of them opened but the registry could not answer for it, and the policy
    /// (`RegistryErrorPolicy::SignedOut`) serves the request signed out: that cookie must
    /// survive the response.
    pub(crate) unanswered: bool,
    /// Every cookie of our name was considered: no cap cut the list short.
    pub(crate) complete: bool,
    /// The chunk cookies (`NAME.k`, see `cookie_header/chunks.rs`) seen, as bits `1 << k`.
    pub(crate) chunks: u8,
}

/// A cookie of our name that opened: its claims, whether to re-seal them, and the decoded
/// envelope they read their user and data from.
pub(crate) struct Candidate {
    pub(crate) claims: ClaimsCore,
    pub(crate) needs_reseal: bool,
    pub(crate) buf: CookieBuf,
}

impl Session {
    /// The session of a request at `now`, holding `opened` (if its cookies came to a valid
    /// session); `seen` says whether there was a cookie of our name at all, and whether the
    /// registry refused one.
    pub(crate) fn loaded(
        shared: Arc<Shared>,
        now: SystemTime,
        client: ClientInfo,
        opened: Option<Candidate>,
        seen: Seen,
    ) -> Session {
        if let Some(c) = &opened {
            shared.events.loaded(c.claims.has_user());
        }
        let (claims, needs_reseal, buf) = match opened {
            Some(c) => (Some(c.claims), c.needs_reseal, c.buf),
            None => (None, false, CookieBuf::Empty),
        };
        let cookie_opened = claims.is_some();
        // A refused cookie is removed only if no cookie was taken instead, and none was left
        // unconsidered: the removal would delete that one too.
        let revoked = seen.refused && !cookie_opened;
        Session {
            inner: Arc::new(Inner {
                shared,
                now,
                client,
                buf,
                state: Mutex::new(State {
                    claims,
                    cookie_present: seen.present,
                    cookie_opened,
                    dirty: false,
                    needs_reseal,
                    purged: revoked && seen.complete,
                    registration: Registration::NotNeeded,
                    new_flashes: Vec::new(),
                    accessed: false,
                    revoked,
                    keep_cookie: seen.unanswered,
                    chunks: seen.chunks,
                    sign: None,
                }),
            }),
        }
    }
}
