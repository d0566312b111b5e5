//! The writes a backend's writer applies in group commits, and what each does to the cache.
//!
//! Every backend queues the same operations and, once a batch has committed and before any caller
//! is told, updates its validation cache the same way ([`after_commit`]): revoked ids leave it, so
//! the next validation through this registry refuses them, and a new session enters it unless an
//! eviction happened since the caller read the epoch.
//!
//! The callers' side is here too, written once for every backend that queues writes
//! ([`QueuedWrites`]): a revocation marks its target in flight in the cache before it is queued
//! and until it is done, and a registration or rotation reads the epoch after any mark of its
//! own (which bumps it), before it is queued.

use std::time::SystemTime;

use crate::id::SessionId;
use crate::registry::cache::{Target, ValidationCache};
use crate::registry::{BoxFuture, NewSession, RegistryError};

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
    /// Revokes the user's sessions but `except`, or only those signed in before a time.
    RevokeUser {
        user_id: String,
        except: Option<SessionId>,
        signed_in_before: Option<SystemTime>,
    },
    /// Revokes up to `limit` active sessions of any user (signed in before a time, if given),
    /// the first ones past the cursor `after` in the backend's own order, logged as one entry
    /// with an empty id: "forget every cached session".
    RevokeAll {
        signed_in_before: Option<SystemTime>,
        limit: u64,
        after: Option<Cursor>,
    },
    /// Deletes every row of the user; the deletion logs the live ones as revoked.
    ForgetUser {
        user_id: String,
    },
    DeleteExpired {
        now: SystemTime,
    },
}

/// Where a batch of [`revoke_all`] starts: past the last row the batch before it picked, in
/// the backend's own order (SQLite: the id, the table's key; PostgreSQL: the row's place in the
/// heap, `ctid`), so that each batch reads on from there instead of past every row revoked so
/// far. Only a hint: [`revoke_all`] ends with a pass from the start.
pub(crate) type Cursor = Vec<u8>;

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
    /// What a batch of [`WriteOp::RevokeAll`] did: how many sessions it revoked, how many it
    /// picked (active when it read them; more than it revoked if some changed meanwhile), and
    /// where the next batch starts.
    RevokedAll {
        revoked: u64,
        picked: u64,
        last: Option<Cursor>,
    },
    /// The ids of the rows [`WriteOp::ForgetUser`] deleted.
    Forgotten(Vec<SessionId>),
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
        (_, Outcome::Revoked(ids) | Outcome::Forgotten(ids)) => cache.evict(ids.iter().copied()),
        // Cheaper than evicting a million ids one by one, and the cache cannot tell which
        // sessions were signed in before a time: it keeps no sign-in times. Emptied even when
        // nothing was left to revoke here: another host may have revoked them, and its news
        // may not have arrived yet.
        (WriteOp::RevokeAll { .. }, Outcome::RevokedAll { .. }) => cache.clear(),
        _ => {}
    }
}

/// A backend whose writes go through a queue of [`WriteOp`]s to its writer.
pub(crate) trait QueuedWrites {
    /// The backend's validation cache.
    fn cache(&self) -> &ValidationCache;

    /// Queues `op`; resolves once it is committed and [`after_commit`] has run, or failed.
    fn queue(&self, op: WriteOp) -> BoxFuture<'static, Result<Outcome, RegistryError>>;
}

fn unexpected() -> RegistryError {
    RegistryError::Backend("unexpected write outcome".into())
}

/// [`Registry::register`](crate::registry::Registry::register) for a queued backend.
pub(crate) fn register(
    w: &impl QueuedWrites,
    session: NewSession,
) -> BoxFuture<'static, Result<(), RegistryError>> {
    // Read before the write is queued: an eviction racing with this registration (a
    // revoke_user of the same user) then keeps the new session out of the cache.
    let epoch = w.cache().epoch();
    let done = w.queue(WriteOp::Register { session, epoch });
    Box::pin(async move { done.await.map(drop) })
}

/// [`Registry::rotate`](crate::registry::Registry::rotate) for a queued backend.
pub(crate) fn rotate<'a>(
    w: &'a impl QueuedWrites,
    user_id: &str,
    old: SessionId,
    new: NewSession,
) -> BoxFuture<'a, Result<bool, RegistryError>> {
    // The old id's revocation is in flight from here; the epoch is read after the mark (which
    // bumps it), so the new id can still be cached when the rotation commits.
    let in_flight = w.cache().begin_revocation(Target::Id(old));
    let epoch = w.cache().epoch();
    let done = w.queue(WriteOp::Rotate {
        user_id: user_id.to_owned(),
        old,
        session: new,
        epoch,
    });
    Box::pin(async move {
        let outcome = done.await;
        drop(in_flight);
        match outcome? {
            Outcome::Rotated(rotated) => Ok(rotated.is_some()),
            _ => Err(unexpected()),
        }
    })
}

/// Queues a revocation of `target`, marked in flight in the cache until it is done, and
/// returns the revoked ids.
fn revoked(
    w: &impl QueuedWrites,
    target: Target,
    op: WriteOp,
) -> BoxFuture<'_, Result<Vec<SessionId>, RegistryError>> {
    let in_flight = w.cache().begin_revocation(target);
    let done = w.queue(op);
    Box::pin(async move {
        let outcome = done.await;
        drop(in_flight);
        match outcome? {
            Outcome::Revoked(ids) => Ok(ids),
            _ => Err(unexpected()),
        }
    })
}

/// [`Registry::revoke`](crate::registry::Registry::revoke) (with a user) and
/// [`Registry::revoke_id`](crate::registry::Registry::revoke_id) (without).
pub(crate) fn revoke<'a>(
    w: &'a impl QueuedWrites,
    user_id: Option<&str>,
    id: SessionId,
) -> BoxFuture<'a, Result<bool, RegistryError>> {
    let user_id = user_id.map(str::to_owned);
    let done = revoked(w, Target::Id(id), WriteOp::Revoke { user_id, id });
    Box::pin(async move { Ok(!done.await?.is_empty()) })
}

/// [`Registry::revoke_user`](crate::registry::Registry::revoke_user) and
/// [`Registry::revoke_user_signed_in_before`](crate::registry::Registry::revoke_user_signed_in_before)
/// for a queued backend.
pub(crate) fn revoke_user<'a>(
    w: &'a impl QueuedWrites,
    user_id: &str,
    except: Option<SessionId>,
    signed_in_before: Option<SystemTime>,
) -> BoxFuture<'a, Result<u64, RegistryError>> {
    let target = Target::User(user_id.into());
    let user_id = user_id.to_owned();
    let op = WriteOp::RevokeUser {
        user_id,
        except,
        signed_in_before,
    };
    let done = revoked(w, target, op);
    Box::pin(async move { Ok(done.await?.len() as u64) })
}

/// The most sessions one transaction of [`revoke_all`] revokes. A batch keeps the writers'
/// lock (PostgreSQL) or the database's write lock (SQLite) for well under a second (measured in
/// docs/registry.md), so that sign-ins and renewals elsewhere wait that long at most, and
/// it fits in PostgreSQL's operation timeout.
pub(crate) const REVOKE_ALL_BATCH: u64 = 50_000;

/// [`Registry::revoke_all`](crate::registry::Registry::revoke_all) for a queued backend: batches
/// of [`REVOKE_ALL_BATCH`], each starting at the [`Cursor`] the one before returned (a range
/// scan, not a scan of everything revoked so far), then a pass from the start again; everyone
/// marked in flight meanwhile.
///
/// None is missed: a renewal keeps its session's sign-in time but its new row may land behind
/// the cursor (a random id; a free place in the heap), so the loop ends only when a batch that
/// started from the start found fewer than the limit. At that commit no active session it
/// covers is left anywhere, and none can be renewed into being (a rotation needs its old id
/// active).
pub(crate) fn revoke_all<W: QueuedWrites + Sync>(
    w: &W,
    signed_in_before: Option<SystemTime>,
) -> BoxFuture<'_, Result<u64, RegistryError>> {
    let in_flight = w.cache().begin_revocation(Target::Everyone);
    Box::pin(async move {
        let (mut total, mut after) = (0, None);
        loop {
            let from_start = after.is_none();
            let op = WriteOp::RevokeAll {
                signed_in_before,
                limit: REVOKE_ALL_BATCH,
                after: after.take(),
            };
            let Outcome::RevokedAll {
                revoked,
                picked,
                last,
            } = w.queue(op).await?
            else {
                return Err(unexpected());
            };
            total += revoked;
            if picked == REVOKE_ALL_BATCH {
                after = last;
            } else if from_start && revoked == picked {
                // A pass from the start that found fewer than a batch, and revoked all it found:
                // nothing active is left.
                drop(in_flight);
                return Ok(total);
            }
            // Else the end of the order, or a pass whose picked rows changed under it: once
            // more from the start, for rows behind the cursor or skipped.
        }
    })
}

/// [`Registry::forget_user`](crate::registry::Registry::forget_user) for a queued backend.
pub(crate) fn forget_user<'a>(
    w: &'a impl QueuedWrites,
    user_id: &str,
) -> BoxFuture<'a, Result<u64, RegistryError>> {
    let in_flight = w.cache().begin_revocation(Target::User(user_id.into()));
    let done = w.queue(WriteOp::ForgetUser {
        user_id: user_id.to_owned(),
    });
    Box::pin(async move {
        let outcome = done.await;
        drop(in_flight);
        match outcome? {
            Outcome::Forgotten(ids) => Ok(ids.len() as u64),
            _ => Err(unexpected()),
        }
    })
}

/// [`Registry::delete_expired`](crate::registry::Registry::delete_expired) for a queued backend.
pub(crate) fn delete_expired(
    w: &impl QueuedWrites,
    now: SystemTime,
) -> BoxFuture<'static, Result<u64, RegistryError>> {
    let done = w.queue(WriteOp::DeleteExpired { now });
    Box::pin(async move {
        match done.await? {
            Outcome::Deleted(count) => Ok(count),
            _ => Err(unexpected()),
        }
    })
}

/// The [`Registry`](crate::registry::Registry) methods that every backend queueing its writes
/// implements the same way: each forwards to this module's function of the same name, observed
/// under its operation's label (`self.shared.metrics`). Invoked inside a backend's
/// `impl Registry` block, so that the two backends cannot drift apart on them.
macro_rules! queued_write_methods {
    () => {
        fn register(
            &self,
            session: crate::registry::NewSession,
        ) -> crate::registry::BoxFuture<'_, Result<(), crate::registry::RegistryError>> {
            let registered = crate::registry::ops::register(self, session);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::Register, registered),
            )
        }

        fn rotate<'a>(
            &'a self,
            user_id: &'a str,
            old: crate::id::SessionId,
            new: crate::registry::NewSession,
        ) -> crate::registry::BoxFuture<'a, Result<bool, crate::registry::RegistryError>> {
            let rotated = crate::registry::ops::rotate(self, user_id, old, new);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::Rotate, rotated),
            )
        }

        fn revoke<'a>(
            &'a self,
            user_id: &'a str,
            id: crate::id::SessionId,
        ) -> crate::registry::BoxFuture<'a, Result<bool, crate::registry::RegistryError>> {
            let revoked = crate::registry::ops::revoke(self, Some(user_id), id);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::Revoke, revoked),
            )
        }

        fn revoke_id(
            &self,
            id: crate::id::SessionId,
        ) -> crate::registry::BoxFuture<'_, Result<bool, crate::registry::RegistryError>> {
            let revoked = crate::registry::ops::revoke(self, None, id);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::Revoke, revoked),
            )
        }

        fn revoke_user<'a>(
            &'a self,
            user_id: &'a str,
            except: Option<crate::id::SessionId>,
        ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
            let revoked = crate::registry::ops::revoke_user(self, user_id, except, None);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::RevokeUser, revoked),
            )
        }

        fn revoke_all(
            &self,
            signed_in_before: Option<std::time::SystemTime>,
        ) -> crate::registry::BoxFuture<'_, Result<u64, crate::registry::RegistryError>> {
            let revoked = crate::registry::ops::revoke_all(self, signed_in_before);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::RevokeAll, revoked),
            )
        }

        fn revoke_user_signed_in_before<'a>(
            &'a self,
            user_id: &'a str,
            signed_in_before: std::time::SystemTime,
        ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
            let revoked =
                crate::registry::ops::revoke_user(self, user_id, None, Some(signed_in_before));
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::RevokeUser, revoked),
            )
        }

        fn forget_user<'a>(
            &'a self,
            user_id: &'a str,
        ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
            let forgotten = crate::registry::ops::forget_user(self, user_id);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::ForgetUser, forgotten),
            )
        }

        fn delete_expired(
            &self,
            now: std::time::SystemTime,
        ) -> crate::registry::BoxFuture<'_, Result<u64, crate::registry::RegistryError>> {
            let deleted = crate::registry::ops::delete_expired(self, now);
            Box::pin(
                self.shared
                    .metrics
                    .observe(crate::telemetry::registry::Op::DeleteExpired, deleted),
            )
        }
    };
}
pub(crate) use queued_write_methods;
