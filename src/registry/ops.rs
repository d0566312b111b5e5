//! The writes a backend's writer applies in group commits, and what each does to the cache.
//!
//! Every backend queues the same operations and, once a batch has committed and before any caller
//! is told, updates its validation cache the same way ([`after_commit`]): revoked ids leave it, so
//! the next validation through this registry refuses them, and a new session enters it unless an
//! eviction happened since the caller read the epoch.

use std::time::SystemTime;

use crate::id::SessionId;
use crate::registry::cache::ValidationCache;
use crate::registry::NewSession;

/// A write a backend's writer applies in its next group commit.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Register {
        session: NewSession,
        epoch: u64,
    },
    /// Revokes `old` and registers `session` in its place, only if `old` is still an active
    /// session of `user_id`.
    Rotate {
        user_id: String,
        old: SessionId,
        session: NewSession,
        epoch: u64,
    },
    Revoke {
        user_id: Option<String>,
        id: SessionId,
    },
    RevokeUser {
        user_id: String,
        except: Option<SessionId>,
    },
    DeleteExpired {
        now: SystemTime,
    },
}

/// What a committed write did.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Registered; older sessions of the user revoked to keep within its session cap.
    Registered {
        capped: Vec<SessionId>,
    },
    /// `Some(capped)` if rotated (as `Registered`), `None` if the old id was no longer active.
    Rotated(Option<Vec<SessionId>>),
    Revoked(Vec<SessionId>),
    Deleted(u64),
}

/// Updates the cache for a committed write, before its caller is told: revoked ids leave the
/// cache, so the next validate through this registry refuses them.
pub(crate) fn after_commit(
    cache: &ValidationCache,
    op: &WriteOp,
    outcome: &Outcome,
    stored: fn(SystemTime) -> SystemTime,
) {
    let cache_new = |session: &NewSession, epoch: u64| {
        let created = stored(session.created_at);
        cache.insert_if_current(
            epoch,
            session.id,
            &session.user_id,
            stored(session.expires_at),
            created,
            created,
        );
    };
    match (op, outcome) {
        (WriteOp::Register { session, epoch }, Outcome::Registered { capped }) => {
            // Cached before the evictions, which bump the epoch the insert checks.
            cache_new(session, *epoch);
            cache.evict(capped.iter().copied());
        }
        (
            WriteOp::Rotate {
                old,
                session,
                epoch,
                ..
            },
            Outcome::Rotated(rotated),
        ) => {
            if let Some(capped) = rotated {
                cache_new(session, *epoch);
                cache.evict(capped.iter().copied());
            }
            // Rotated or not, the old id is no longer active.
            cache.evict([*old]);
        }
        (WriteOp::Revoke { id, .. }, Outcome::Revoked(ids)) => {
            cache.evict(ids.iter().copied().chain([*id]));
        }
        (_, Outcome::Revoked(ids)) => cache.evict(ids.iter().copied()),
        _ => {}
    }
}
