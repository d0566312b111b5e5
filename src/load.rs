//! Which of the request's cookies is its session: opening them, and asking the registry.
//!
//! The cookies of our name in the `Cookie` headers are tried in order, so a junk or stale
//! duplicate (set for another path or domain, say) cannot lock a user out. The first one that
//! opens, has not expired and, when it belongs to a user, is still active in the registry, is
//! the session; otherwise the handler gets a fresh, empty session and the reason goes to
//! `tracing` at debug level. When the registry fails, [`RegistryErrorPolicy`] decides.
//!
//! **Bounded work, whatever the client sends.** Per request, at most [`MAX_LOOKED_AT`] first
//! cookies of our name are looked at and at most `MAX_LOOKED_AT` values offered (a split
//! cookie's combinations included, identical ones too); of those, at most [`MAX_OPENED`] are
//! opened afresh (base64, the AEAD; a value found in the cache of opened values costs a lookup,
//! and a value that failed is not opened twice), and at most [`MAX_TABLE_READS`] need the
//! registry to read its table (a cookie the registry answers from memory costs no read, and is
//! considered even once the reads are used up). A request carrying thousands of copies of a
//! cookie costs one open and one read. Legitimate duplicates come from a cookie of the same
//! name set for another path, or for the parent domain as well as the host, of which a browser
//! holds one or two. The response removes a refused cookie so that a revoked browser stops
//! sending it, but only when every cookie of our name was considered: a removal carries our own
//! `Domain` and `Path`, so it would delete a valid cookie that a cap kept from being looked at.
//!
//! **Planted cookies** (a sibling subdomain can set our name when it has no `__Host-` prefix:
//! every configuration with a `Domain`). A browser sends cookies of longer paths first, then
//! older ones first (RFC 6265bis 5.8.3), so planted cookies can come before its own. What they
//! can do, by kind:
//! - Values that do not open: each costs one fresh open, so a valid cookie is reached as long
//!   as fewer than `MAX_OPENED` distinct such values come before it (`MAX_OPENED` if it is in
//!   the cache of opened values, where it costs none). More hide it for as long as they are
//!   sent (the price of bounded work); planting them takes eight places
//!   the request's path matches (its path prefixes, times the parent domains the sibling
//!   shares), so a request for `/` is out of reach.
//! - Sealed values that open but that the registry refuses (an attacker's own signed-out
//!   sessions): at most `MAX_TABLE_READS` reads per request, and the registry remembers a
//!   refusal for 30 s (`registry/cache.rs`), during which such a cookie costs a cache lookup
//!   (values of up to 680 characters stay in the cache of opened values). `K` of them before a
//!   valid cookie therefore hold it back for at most `ceil((K + 1) / MAX_TABLE_READS) - 1`
//!   requests made within 30 s of each other: none for up to three, one for up to seven.
//! - Split values and chunks: see below; every first cookie gets one attempt before any gets a
//!   second, so planted ones cost one open each and cannot use up the browser's own attempts.
//! - Values that open and are accepted (the attacker's own session) are the session: that is
//!   cookie tossing, which only the `__Host-` prefix prevents (`config.rs`).
//!
//! Each cookie is settled as soon as it is opened, with the registry's in-memory answer when it
//! has one, so the usual request does no I/O and opens no more cookies than it needs. Only when
//! the registry must read its table are that cookie and the ones after it kept, in order, for
//! [`validate`] to ask about after an `.await`.
//!
//! **Split sessions** (`cookie_header/chunks.rs`). A first cookie whose value says it is split
//! over `n` cookies is put back together from the request's `NAME.1` .. `NAME.(n-1)` before it
//! is opened. Every first cookie, in order, is tried once with the copies of its chunks nearest
//! to it (those after it first: a browser sends a cookie's chunks after it); only then does each
//! get its other combinations, a round at a time over the first cookies: at most
//! `1 + MAX_ALTERNATIVES` per first cookie (`chunks.rs`), each one more offered value, within
//! the same budgets. The chunks are gathered in one pass (at most 256 chunk cookies, more than
//! a browser keeps for a site). The whole of the headers is read for chunk names even after
//! the session is decided, so that the response can remove chunks the session does not use.
//!
//! A value that already opened under this configuration is taken from its cache of opened
//! values (`opened_cache.rs`): the same claims, sharing the cached envelope, with their expiry
//! checked again; the registry's check that follows is the same either way.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::claims::ClaimsCore;
use crate::config::{RegistryErrorPolicy, Shared};
use crate::cookie_buf::CookieBuf;
use crate::cookie_header::{find_session_cookies, parse_head, Chunks, Flow, Found, Head, Plan};
use crate::envelope_bytes::Envelope;
use crate::id::SessionId;
use crate::registry::RegistryError;
use crate::seal::OpenError;
use crate::session::{Candidate, Seen};
use crate::telemetry::refusals::Refusal;

/// The most cookies of our name looked at in one request; see the module documentation.
pub(crate) const MAX_LOOKED_AT: usize = 32;
/// The most distinct cookie values opened in one request.
pub(crate) const MAX_OPENED: usize = 8;
/// The most cookies in one request for which the registry may have to read its table.
pub(crate) const MAX_TABLE_READS: usize = 4;

/// What trying one cookie value came to.
enum Step {
    /// It is the session, or nothing after it can change the outcome.
    Decided,
    /// Try the next one.
    Next,
    /// A cap was reached: nothing more is looked at.
    Capped,
}

/// What [`open`] did not give.
enum NotOpened {
    /// The value does not open (or has expired).
    Failed(OpenError),
    /// It was not in the cache of opened values, and [`MAX_OPENED`] values were opened already.
    Capped,
}

/// What the request's cookies come to before any registry I/O.
pub(crate) enum Settled {
    /// The session is decided: this one, or none (a fresh session).
    Valid(Option<Candidate>),
    /// The registry failed and the policy is to answer 503 after this long.
    Unavailable(Duration),
    /// These cookies (in order) need the registry to read its table; see [`validate`].
    AskRegistry(Vec<Candidate>),
}

/// Opens the cookies of our name in `headers` and settles them without I/O where it can (see
/// the module documentation). Also returns what was seen of them.
pub(crate) fn open_cookies(
    shared: &Shared,
    headers: &HeaderMap,
    now: SystemTime,
) -> (Settled, Seen) {
    let name = shared.cookie.name.as_str();
    let mut refused = false;
    let mut unanswered = false;
    let mut pending: Vec<Candidate> = Vec::new();
    // Of `pending`, how many the registry had no answer for in memory.
    let mut reads = 0;
    // Values opened afresh (not found in the cache of opened values).
    let mut opened_afresh = 0;
    let mut settled = None;
    // Settles one cookie value; also says whether it cost a fresh open.
    let mut consider = |value: &[u8]| -> (Step, bool) {
        let before = opened_afresh;
        let opened = match open(shared, value, now, &mut opened_afresh) {
            Ok(opened) => opened,
            Err(NotOpened::Failed(err)) => {
                let reason = Refusal::of(&err);
                shared.refusals.count(reason);
                let reason = reason.as_str();
                tracing::debug!(cookie = name, reason, error = %err, "ignoring session cookie");
                return (Step::Next, opened_afresh > before);
            }
            Err(NotOpened::Capped) => return (Step::Capped, false),
        };
        let fresh = opened_afresh > before;
        let registry = match &shared.registry {
            Some(registry) if opened.claims.has_user() => registry,
            // A session without a user needs no registry: it is the session, unless a cookie
            // before it waits for the registry's answer.
            _ if pending.is_empty() => {
                settle(&mut settled, Settled::Valid(Some(opened)));
                return (Step::Decided, fresh);
            }
            _ => {
                pending.push(opened);
                return (Step::Decided, fresh);
            }
        };
        let id = opened.claims.id();
        let Some(user) = opened.user() else {
            // Cannot happen (the user id was checked when decoded); never accept it unchecked.
            return (Step::Next, fresh);
        };
        // With nothing before it, an active session is the session: touched in the same lookup.
        let answer = if pending.is_empty() {
            registry.validate_cached_and_touch(id, user, now)
        } else {
            registry.validate_cached(id, user, now)
        };
        if !pending.is_empty() || answer.is_none() {
            // Decided by `validate`, in order, after the cookies before it.
            match answer {
                Some(false) => {
                    // Counted and logged as every refusal of the registry's.
                    verdict(shared, id, Ok(false));
                    refused = true;
                }
                Some(true) => {
                    // Known valid: whatever comes after it cannot be the session.
                    pending.push(opened);
                    return (Step::Decided, fresh);
                }
                // Only a cookie that needs a read is stopped by the cap on reads: one the
                // registry answers from memory (a refusal it remembers) costs none.
                None if reads == MAX_TABLE_READS => return (Step::Capped, fresh),
                None => {
                    pending.push(opened);
                    reads += 1;
                }
            }
            return (Step::Next, fresh);
        }
        let answer = answer.is_some_and(|valid| valid);
        match verdict(shared, id, Ok(answer)) {
            Verdict::Accept => settle(&mut settled, Settled::Valid(Some(opened))),
            Verdict::Reject => {
                refused = true;
                return (Step::Next, fresh);
            }
            Verdict::Fail(Ok(())) => {
                // The registry could not answer for this one: its cookie must stay, and a
                // removal for an earlier refused one would remove it too.
                refused = false;
                unanswered = true;
                settle(&mut settled, Settled::Valid(None));
            }
            Verdict::Fail(Err(retry_after)) => {
                settle(&mut settled, Settled::Unavailable(retry_after));
            }
        }
        (Step::Decided, fresh)
    };
    let mut present = false;
    let mut looked_at = 0;
    let mut cut_off = false;
    let mut decided = false;
    // Chunk cookies (`NAME.k`) seen, as bits `1 << k`, so that the response can remove those
    // the session no longer uses.
    let mut chunk_bits = 0u8;
    // Gathered once, only when a first cookie says its value is split (`cookie_header/chunks.rs`).
    let mut chunks: Option<Chunks<'_>> = None;
    // The combinations of each split first cookie, for those tried after every first cookie
    // had its one attempt.
    let mut plans: Vec<Plan<'_>> = Vec::new();
    let max_len = shared.cookie.layout.max_value_len();
    // Values that were opened afresh and not taken, so that a copy is not opened again: at
    // most `MAX_OPENED`, and filled only when a first cookie is not the session, which the
    // usual request never reaches. (A value taken from the cache of opened values costs a
    // lookup when offered again, not an open.)
    let mut tried: Vec<Box<[u8]>> = Vec::new();
    // Every value offered, identical ones included: a split cookie's copies could otherwise
    // make thousands of reassemblies of one value (a review measured 4,096 from 32 heads).
    let mut offered = 0usize;
    let mut attempt = |value: &[u8]| -> Step {
        if offered == MAX_LOOKED_AT {
            return Step::Capped;
        }
        offered += 1;
        if tried.iter().any(|t| **t == *value) {
            return Step::Next;
        }
        let (step, fresh) = consider(value);
        if fresh && matches!(step, Step::Next) {
            tried.push(value.into());
        }
        step
    };
    // Once the session is decided, the rest of the headers is only read for chunk names: a
    // chunk left next to a single cookie (by two concurrent responses, say) rides along on
    // every request until a response removes it, and can push the `Cookie` header past a
    // proxy's limit. Reading costs no more than a request whose cookies all fail.
    let finder = &shared.cookie.finder;
    // The place of each cookie among those of our names, as `Chunks::collect` counts them.
    let mut at = 0;
    find_session_cookies(headers, finder, |found| {
        at += 1;
        let value = match found {
            Found::Head(value) => value,
            Found::Chunk(k, _) => {
                chunk_bits |= 1 << k;
                return Flow::Next;
            }
        };
        present = true;
        let step = if looked_at == MAX_LOOKED_AT {
            Step::Capped
        } else {
            looked_at += 1;
            match parse_head(value) {
                // The usual request: one byte compared to tell it from a split value.
                Head::Single(value) => attempt(value),
                Head::Malformed => {
                    shared.refusals.count(Refusal::Malformed);
                    let reason = Refusal::Malformed.as_str();
                    tracing::debug!(
                        cookie = name,
                        reason,
                        "ignoring session cookie: bad chunk count"
                    );
                    Step::Next
                }
                Head::Chunked { count, first } => {
                    let chunks = chunks.get_or_insert_with(|| Chunks::collect(headers, finder));
                    // One attempt now, with the nearest set; the others once every first
                    // cookie has had its one.
                    match chunks.plan(at - 1, first, count) {
                        Some(plan) => {
                            let step = match plan.build(0, max_len) {
                                Some(value) => attempt(&value),
                                None => Step::Next,
                            };
                            plans.push(plan);
                            step
                        }
                        None => Step::Next,
                    }
                }
            }
        };
        match step {
            Step::Next => Flow::Next,
            Step::Decided => {
                decided = true;
                Flow::ChunksOnly
            }
            Step::Capped => {
                cut_off = true;
                Flow::ChunksOnly
            }
        }
    });
    if !decided && !cut_off {
        // The other combinations, a round at a time over the first cookies, so that planted
        // ones before it cannot use up what a browser's own has left.
        let rounds = plans.iter().map(Plan::len).max().unwrap_or(0);
        'rounds: for n in 1..rounds {
            for plan in &plans {
                let Some(value) = plan.build(n, max_len) else {
                    continue;
                };
                match attempt(&value) {
                    Step::Next => {}
                    Step::Decided => {
                        decided = true;
                        break 'rounds;
                    }
                    Step::Capped => {
                        cut_off = true;
                        break 'rounds;
                    }
                }
            }
        }
        // Combinations never tried were not considered, as if a cap had cut the list short.
        cut_off |= !decided && plans.iter().any(|plan| !plan.exhaustive());
    }
    if cut_off {
        shared.refusals.count(Refusal::OverCaps);
        let reason = Refusal::OverCaps.as_str();
        tracing::debug!(
            cookie = name,
            reason,
            "ignoring the request's further session cookies"
        );
    }
    if let Some(chunks) = &chunks {
        chunk_bits |= chunks.present;
        // Chunks not kept were not considered either.
        cut_off |= chunks.overflow;
    }
    let seen = Seen {
        present,
        refused,
        unanswered,
        complete: !cut_off,
        chunks: chunk_bits,
    };
    let settled = match settled {
        Some(settled) => settled,
        None if pending.is_empty() => Settled::Valid(None),
        None => Settled::AskRegistry(pending),
    };
    (settled, seen)
}

/// Records what the cookies came to. Set once: the cookie that settles it ends the search.
/// (Written into the empty slot rather than assigned, so no drop of an old value is called.)
fn settle(slot: &mut Option<Settled>, settled: Settled) {
    debug_assert!(slot.is_none(), "settled twice");
    slot.get_or_insert(settled);
}

/// Opens `value`, from the cache of opened values when it is there (see `opened_cache.rs`), and
/// remembers it there when it opens. The cache compares bytes; only a value opened afresh needs
/// to be text (a sealed value is ASCII).
///
/// The session must also not have outlived this configuration's lifetime
/// ([`Shared::session_end`]); a cached value carries that end, so a hit checks it for free.
fn open(
    shared: &Shared,
    value: &[u8],
    now: SystemTime,
    opened_afresh: &mut usize,
) -> Result<Candidate, NotOpened> {
    let Some(cache) = &shared.opened else {
        let (claims, needs_reseal, raw, _) = open_afresh(shared, value, now, opened_afresh)?.0;
        return Ok(Candidate {
            claims,
            needs_reseal,
            buf: CookieBuf::Own(raw),
        });
    };
    let (claims, needs_reseal, raw) = match cache.get(value, now) {
        Some(hit) => hit.map_err(|_| NotOpened::Failed(OpenError::Expired))?,
        None => {
            let ((claims, needs_reseal, raw, end), value) =
                open_afresh(shared, value, now, opened_afresh)?;
            let raw = Arc::new(raw);
            cache.insert(
                value.as_bytes(),
                Arc::clone(&raw),
                (claims.clone(), end),
                needs_reseal,
            );
            (claims, needs_reseal, raw)
        }
    };
    Ok(Candidate {
        claims,
        needs_reseal,
        buf: CookieBuf::Shared(raw),
    })
}

/// What [`open_afresh`] gives: the claims, whether to re-seal them, the envelope they read
/// from, and when the session ends.
type Fresh = (ClaimsCore, bool, Envelope, SystemTime);

/// Opens `value` with the sealer (no cache) and checks it against this configuration's
/// lifetime; also gives `value` as text (a sealed value is ASCII). Out of line: the usual
/// request is a cache hit.
#[cold]
fn open_afresh<'a>(
    shared: &Shared,
    value: &'a [u8],
    now: SystemTime,
    opened_afresh: &mut usize,
) -> Result<(Fresh, &'a str), NotOpened> {
    if *opened_afresh == MAX_OPENED {
        return Err(NotOpened::Capped);
    }
    *opened_afresh += 1;
    let value = std::str::from_utf8(value).map_err(|_| NotOpened::Failed(OpenError::Malformed))?;
    let (claims, needs_reseal, raw) = shared
        .sealer
        .open_envelope(shared.cookie.name.as_str(), value, now)
        .map_err(NotOpened::Failed)?;
    let end = shared.session_end(&claims);
    if now >= end {
        return Err(NotOpened::Failed(OpenError::Expired));
    }
    Ok(((claims, needs_reseal, raw, end), value))
}

/// The first of `pending` that the registry (if any, and if the session has a user) accepts,
/// reading its table where its in-memory answer has none; refusals are noted in `seen`.
/// `Err(retry_after)` when the registry failed and the policy is to answer 503.
pub(crate) async fn validate(
    shared: &Shared,
    pending: Vec<Candidate>,
    now: SystemTime,
    seen: &mut Seen,
) -> Result<Option<Candidate>, Duration> {
    for opened in pending {
        let Some(registry) = shared
            .registry
            .as_ref()
            .filter(|_| opened.claims.has_user())
        else {
            return Ok(Some(opened));
        };
        let Some(user) = opened.user() else {
            // Cannot happen (the user id was checked when decoded); never accept it unchecked.
            continue;
        };
        let id = opened.claims.id();
        let answer = match registry.validate_cached(id, user, now) {
            Some(answer) => Ok(answer),
            None => registry.validate(id, user, now).await,
        };
        match verdict(shared, id, answer) {
            Verdict::Accept => {
                // Last-seen for the devices page; the registry throttles and writes behind.
                registry.touch(id, now);
                return Ok(Some(opened));
            }
            Verdict::Reject => seen.refused = true,
            Verdict::Fail(Ok(())) => {
                // As in `open_cookies`: keep the cookies of a registry that could not answer.
                seen.refused = false;
                seen.unanswered = true;
                return Ok(None);
            }
            Verdict::Fail(Err(retry_after)) => return Err(retry_after),
        }
    }
    Ok(None)
}

impl Candidate {
    /// The signed-in user.
    fn user(&self) -> Option<&str> {
        self.claims.user(self.buf.as_slice())
    }
}

/// What one registry answer means for the cookie it is about.
enum Verdict {
    Accept,
    Reject,
    /// The registry failed: `Ok` to serve a fresh session, `Err(retry_after)` to answer 503.
    Fail(Result<(), Duration>),
}

fn verdict(shared: &Shared, id: SessionId, answer: Result<bool, RegistryError>) -> Verdict {
    match answer {
        Ok(true) => Verdict::Accept,
        Ok(false) => {
            shared.refusals.count(Refusal::Revoked);
            let reason = Refusal::Revoked.as_str();
            tracing::debug!(session = %id, reason, "ignoring session cookie: not active in the registry");
            Verdict::Reject
        }
        Err(err) => {
            shared.refusals.count(Refusal::RegistryUnavailable);
            let reason = Refusal::RegistryUnavailable.as_str();
            tracing::warn!(session = %id, reason, error = %err, "the session registry failed");
            Verdict::Fail(match shared.on_registry_error {
                RegistryErrorPolicy::ServiceUnavailable { retry_after } => Err(retry_after),
                RegistryErrorPolicy::SignedOut => Ok(()),
            })
        }
    }
}
