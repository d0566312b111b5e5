//! The request side of a [`Session`]: its state, allocated before the cookie is opened.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::{ClientInfo, Inner, Registration, Session, State};
use crate::claims::ClaimsCore;
use crate::config::Shared;
use crate::cookie_buf::CookieBuf;

/// A session being loaded from the request's cookies, before any handler can see it.
///
/// The shared state is allocated first and the first cookie that opens is decoded straight
/// into its buffer ([`Self::buf_mut`]), so the cookie costs no allocation of its own and the
/// state is never moved once built. Nothing else holds the `Arc` until [`Self::finish`], so
/// the `&mut` access below always succeeds; were it ever refused, the cookie would be decoded
/// into a `Vec` of its own instead, or (in [`Self::finish`]) the visitor would get a fresh
/// session, never someone else's state.
pub(crate) struct Loading {
    inner: Arc<Inner>,
}

/// What was seen of the request's cookies of our name, beside the session they came to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// A cookie of our name was there, valid or not.
    pub(crate) present: bool,
    /// The registry refused one of them (revoked, unknown or expired there).
    pub(crate) refused: bool,
    /// Every cookie of our name was considered: no cap cut the list short.
    pub(crate) complete: bool,
    /// The chunk cookies (`NAME.k`, see `cookie_header/chunks.rs`) seen, as bits `1 << k`.
    pub(crate) chunks: u8,
}

/// A cookie of our name that opened: its claims, whether to re-seal them, and the bytes they
/// read from when those are not the session's own buffer.
pub(crate) struct Candidate {
    pub(crate) claims: ClaimsCore,
    pub(crate) needs_reseal: bool,
    pub(crate) own: Option<Vec<u8>>,
}

impl Loading {
    pub(crate) fn new(shared: Arc<Shared>, now: SystemTime, client: ClientInfo) -> Self {
        Loading {
            inner: Arc::new(Inner {
                shared,
                now,
                client,
                buf: CookieBuf::new(),
                state: Mutex::new(State {
                    claims: None,
                    cookie_present: false,
                    cookie_opened: false,
                    dirty: false,
                    needs_reseal: false,
                    purged: false,
                    registration: Registration::NotNeeded,
                    new_flashes: Vec::new(),
                    accessed: false,
                    revoked: false,
                    chunks: 0,
                }),
            }),
        }
    }

    /// The session's own buffer, to decode a cookie into.
    pub(crate) fn buf_mut(&mut self) -> Option<&mut CookieBuf> {
        Arc::get_mut(&mut self.inner).map(|inner| &mut inner.buf)
    }

    /// What was decoded into [`Self::buf_mut`].
    pub(crate) fn buf(&self) -> &CookieBuf {
        &self.inner.buf
    }

    /// The session, holding `opened` (if the cookies came to a valid session); `seen` says
    /// whether there was a cookie of our name at all, and whether the registry refused one.
    pub(crate) fn finish(mut self, opened: Option<Candidate>, seen: Seen) -> Session {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            let state = inner
                .state
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            state.cookie_present = seen.present;
            state.chunks = seen.chunks;
            // A refused cookie is removed only if no cookie was taken instead, and none was
            // left unconsidered: the removal would delete that one too.
            state.purged = seen.refused && seen.complete && opened.is_none();
            state.revoked = seen.refused && opened.is_none();
            if let Some(opened) = opened {
                if let Some(own) = opened.own {
                    inner.buf = CookieBuf::Heap(own);
                }
                state.claims = Some(opened.claims);
                state.cookie_opened = true;
                state.needs_reseal = opened.needs_reseal;
            }
        }
        Session { inner: self.inner }
    }
}
