//! The validation cache: a bounded, in-memory map of sessions known to be active.
//!
//! A cache hit is the hot path of every registry-checked request, so it is a hash lookup under a
//! sharded mutex: no table read, no system call, no allocation.
//!
//! **Never "valid" after a revocation returned.** A revocation evicts its ids after it committed
//! and before it returns. The hard case is a concurrent cache *miss*: it may read the row before
//! the revocation commits and insert it after the eviction, resurrecting the session. Every
//! eviction therefore bumps an epoch (inside the shard lock), and a miss reads the epoch *before*
//! its database read and inserts only if the epoch is unchanged (checked inside the same lock).
//! An insert that loses that race is simply skipped; the next validate reads the table again.
//!
//! **Not while a revocation is in flight.** A revocation marks its target (one id, or every
//! session of a user) as *pending* before it is queued and clears the mark once its evictions
//! are done: while marked, the cache answers nothing for it and refuses to insert it, so no cached
//! answer vouches for a session whose revocation is committing. An id's mark sits in its shard,
//! under the lock a lookup takes anyway (logouts and renewals are frequent: other requests must
//! not pay for them); a user's mark (`revoke_user`, rarer) and everyone's (`revoke_all`, an
//! operator's action) in one list that a lookup reads only while it is not empty, so a lookup
//! pays one atomic load for those. A revocation of everyone signed in before a time marks
//! everyone: the cache keeps no sign-in times, so it cannot tell whom that covers, and a
//! lookup that answers nothing for a moment costs one table read.
//!
//! **Refusals are remembered briefly.** A "no" for an unknown or revoked id is final for a
//! 128-bit random id, which is registered before any cookie naming it is sent, so the
//! cache keeps it for [`REFUSED_FOR`] in a bounded side table: a revoked browser that keeps
//! sending its cookie, or a request carrying many copies of one, costs one table read, not one
//! per cookie per request. A refusal is never turned into a "yes": an id is cached as active only
//! through [`insert_if_current`](ValidationCache::insert_if_current), which drops the refusal.
//!
//! **Bounded.** The capacity is split over [`SHARDS`] shards; a full shard evicts with CLOCK
//! (second chance): expired entries and entries not hit since the hand last passed go first.
//! Capacity zero disables the cache.
//!
//! **Hashed without SipHash.** The index is keyed by session ids, which are 128 random bits this
//! crate drew, and only ids of sessions in the registry's table are ever inserted. [`IdHasher`]
//! therefore mixes the id's own bits with a random per-cache key instead of running SipHash
//! over them (which cost about 450 instructions per request, a twentieth of a cached read). The
//! key keeps a user who signs in many times and sees their ids (a devices page shows them)
//! from picking ids that pile into one bucket.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::id::SessionId;
use crate::registry::freshness::Freshness;
use crate::telemetry::registry::{Lookup, Lookups};

/// The number of shards; a power of two so that the shard is a mask of an id byte.
pub(crate) const SHARDS: usize = 16;

/// How long a refusal is remembered; see the module documentation.
pub(crate) const REFUSED_FOR: Duration = Duration::from_secs(30);

/// The most refusals remembered per shard (so at most 16 times this in all, about 40 bytes each).
const REFUSED_PER_SHARD: usize = 1024;

/// What the cache knows of one active session.
#[derive(Debug)]
struct Slot {
    id: SessionId,
    user_id: Box<str>,
    expires_at: SystemTime,
    /// The last-seen time as last written (or queued to be written), for touch throttling.
    last_seen: SystemTime,
    /// CLOCK's reference bit: set by a hit, cleared when the hand passes.
    referenced: bool,
}

/// Hashes a [`SessionId`] by its own (random) bits and a key; see the module documentation.
struct IdHasher(u64);

/// Makes [`IdHasher`]s that start from this cache's random key.
#[derive(Debug, Clone)]
struct IdHashKey(u64);

impl Default for IdHashKey {
    fn default() -> Self {
        let mut key = [0u8; 8];
        crate::random::fill(&mut key);
        IdHashKey(u64::from_le_bytes(key))
    }
}

impl BuildHasher for IdHashKey {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for IdHasher {
    fn write_u128(&mut self, n: u128) {
        // An id's 128 bits (`SessionId`'s `Hash`), in two words: its bits make the result
        // uniform.
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Any other input: mixing every word keeps the map correct for it.
        for word in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..word.len()].copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
struct Shard {
    index: HashMap<SessionId, usize, IdHashKey>,
    slots: Vec<Slot>,
    hand: usize,
    /// Ids known not to be active, until when; see the module documentation.
    refused: HashMap<SessionId, SystemTime, IdHashKey>,
    /// Ids of this shard whose revocation is in flight, once per revocation (usually empty).
    pending: Vec<SessionId>,
}

/// The target of a revocation in flight; see [`ValidationCache::begin_revocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One session, whoever's it is.
    Id(SessionId),
    /// Every session of this user.
    User(Box<str>),
    /// Every session of every user (or of those signed in before a time: the cache cannot
    /// tell them apart).
    Everyone,
}

impl Slot {
    /// Whether a touch at `now` should be written: the last one is `throttle` old or more.
    fn would_touch(&self, now: SystemTime, throttle: Duration) -> bool {
        // `now - last_seen >= throttle`, without the subtraction's checks (half the cost).
        self.last_seen
            .checked_add(throttle)
            .is_some_and(|due_at| now >= due_at)
    }

    /// [`would_touch`](Self::would_touch), recording `now` as written if so.
    fn touch_due(&mut self, now: SystemTime, throttle: Duration) -> bool {
        let due = self.would_touch(now, throttle);
        if due {
            self.last_seen = now;
        }
        due
    }
}

impl Shard {
    fn remove(&mut self, id: &SessionId) {
        if let Some(at) = self.index.remove(id) {
            self.slots.swap_remove(at);
            if let Some(moved) = self.slots.get(at) {
                self.index.insert(moved.id, at);
            }
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
        }
    }

    /// The slot CLOCK gives up: an expired one, or the first not referenced since the hand's
    /// last pass. Ends within two turns because each pass clears the bits it skips.
    fn victim(&mut self, now: SystemTime) -> usize {
        loop {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let slot = &mut self.slots[at];
            if slot.expires_at <= now || !slot.referenced {
                return at;
            }
            slot.referenced = false;
        }
    }
}

/// The bounded map of active sessions plus the eviction epoch.
#[derive(Debug)]
pub(crate) struct ValidationCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    epoch: AtomicU64,
    /// Users (`Target::User`) whose `revoke_user` is in flight, and `Target::Everyone` for a
    /// `revoke_all`, once per revocation (a target may be there twice). Revocations of one id
    /// are marked in the id's shard instead, under the lock a lookup takes anyway, so that
    /// logouts and renewals in flight cost other requests nothing.
    pending_users: Mutex<Vec<Target>>,
    /// `pending_users.len()`, readable without the lock: the hot path looks at it alone.
    pending_user_count: AtomicUsize,
    /// Lookups by result (metrics), taken when the registry starts.
    lookups: Lookups,
}

/// Marks a revocation as in flight until dropped; see [`ValidationCache::begin_revocation`].
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    cache: &'a ValidationCache,
    target: Target,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        match &self.target {
            Target::Id(id) => {
                let mut shard = self.cache.shard(id);
                if let Some(at) = shard.pending.iter().position(|p| p == id) {
                    shard.pending.swap_remove(at);
                }
            }
            target => {
                let mut pending = self.cache.pending_users_lock();
                if let Some(at) = pending.iter().position(|p| p == target) {
                    pending.swap_remove(at);
                }
                self.cache
                    .pending_user_count
                    .store(pending.len(), Ordering::SeqCst);
            }
        }
    }
}

impl ValidationCache {
    /// A cache of about `capacity` sessions (rounded up to a multiple of [`SHARDS`]); zero disables.
    pub(crate) fn new(capacity: usize) -> Self {
        ValidationCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            epoch: AtomicU64::new(0),
            pending_users: Mutex::new(Vec::new()),
            pending_user_count: AtomicUsize::new(0),
            lookups: Lookups::register(),
        }
    }

    fn pending_users_lock(&self) -> MutexGuard<'_, Vec<Target>> {
        self.pending_users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a `revoke_user` of `user_id`, or a `revoke_all`, is in flight.
    fn user_pending(&self, user_id: &str) -> bool {
        // SeqCst pairs with the store in `begin_revocation`: a lookup that runs after the mark
        // was published sees it.
        self.pending_user_count.load(Ordering::SeqCst) != 0 && self.pending_covers(user_id)
    }

    /// Whether a mark in `pending_users` covers `user_id`. Out of line and cold, so that the
    /// hot path's [`user_pending`](Self::user_pending) stays one load and a branch: inlined,
    /// this made it save registers for the search on every call (17 instructions a request,
    /// callgrind).
    #[cold]
    #[inline(never)]
    fn pending_covers(&self, user_id: &str) -> bool {
        self.pending_users_lock().iter().any(|target| match target {
            Target::User(user) => **user == *user_id,
            Target::Everyone => true,
            Target::Id(_) => false,
        })
    }

    /// Marks a revocation of `target` as in flight, until the returned guard is dropped (after
    /// the revocation committed and evicted, or failed). Meanwhile the cache answers nothing
    /// for it and inserts nothing of it; the epoch is bumped so that no read begun earlier
    /// inserts it either.
    pub(crate) fn begin_revocation(&self, target: Target) -> InFlight<'_> {
        match &target {
            Target::Id(id) => self.shard(id).pending.push(*id),
            target => {
                let mut pending = self.pending_users_lock();
                pending.push(target.clone());
                self.pending_user_count
                    .store(pending.len(), Ordering::SeqCst);
            }
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        InFlight {
            cache: self,
            target,
        }
    }

    fn shard(&self, id: &SessionId) -> MutexGuard<'_, Shard> {
        let at = usize::from(id.as_bytes()[0]) & (SHARDS - 1);
        // A panic while holding a shard lock cannot leave a shard inconsistent in a way that
        // matters more than losing it, so a poisoned lock is taken over rather than propagated.
        self.shards[at]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(true)` if `id` is cached as an active session of `user_id` at `now`; `Some(false)`
    /// if cached as another user's or as expired, or refused less than [`REFUSED_FOR`] ago;
    /// `None` if not cached or while a revocation that covers it is in flight.
    pub(crate) fn lookup(&self, id: SessionId, user_id: &str, now: SystemTime) -> Option<bool> {
        self.find(id, user_id, now, None).0
    }

    /// [`lookup`](Self::lookup), but a "yes" only while `freshness` (the backend's feed of
    /// other writers' revocations, if it has one) is within its staleness bound: past it, the
    /// backend must be asked.
    pub(crate) fn lookup_trusted(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
        freshness: Option<&Freshness>,
    ) -> Option<bool> {
        self.lookup_trusted_touch(id, user_id, now, freshness, None)
            .0
    }

    /// [`lookup_trusted`](Self::lookup_trusted) and, with a "yes", whether a touch at `now` is
    /// due ([`should_touch`](Self::should_touch) with `throttle`), in one lookup: the hot path
    /// of every registry-checked request asks both.
    pub(crate) fn lookup_trusted_touch(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
        freshness: Option<&Freshness>,
        throttle: Option<Duration>,
    ) -> (Option<bool>, bool) {
        // Asked first, so that a touch is recorded only with a "yes".
        if !freshness.is_none_or(Freshness::is_fresh) {
            let answer = self.lookup(id, user_id, now).filter(|active| !active);
            let counted = if answer.is_some() {
                Lookup::Refused
            } else {
                Lookup::NotTrusted
            };
            self.lookups.count(counted);
            return (answer, false);
        }
        let found = self.find(id, user_id, now, throttle);
        self.lookups.count(match found.0 {
            Some(true) => Lookup::Hit,
            Some(false) => Lookup::Refused,
            None if cfg!(feature = "metrics") && self.in_flight(id, user_id) => Lookup::NotTrusted,
            None => Lookup::Miss,
        });
        found
    }

    /// Whether a revocation that covers `id` or `user_id` is in flight (to tell a miss from an
    /// answer withheld, for metrics: asked only when there is no answer).
    fn in_flight(&self, id: SessionId, user_id: &str) -> bool {
        self.shard(&id).pending.contains(&id) || self.user_pending(user_id)
    }

    /// The lookup, and the touch decision when `throttle` is given.
    fn find(
        &self,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
        throttle: Option<Duration>,
    ) -> (Option<bool>, bool) {
        if self.per_shard == 0 {
            return (None, false);
        }
        let mut guard = self.shard(&id);
        let shard = &mut *guard;
        let Some(&at) = shard.index.get(&id) else {
            let Some(&until) = shard.refused.get(&id) else {
                return (None, false);
            };
            if now < until {
                return (Some(false), false);
            }
            shard.refused.remove(&id);
            return (None, false);
        };
        let slot = &mut shard.slots[at];
        slot.referenced = true;
        let active = &*slot.user_id == user_id && now < slot.expires_at;
        if active && shard.pending.contains(&id) {
            return (None, false);
        }
        // Whether a touch is due, not yet recorded: should the user's revocation be in flight
        // (below) and then fail, the session stays active and its touch must not be lost.
        let due = active && throttle.is_some_and(|throttle| slot.would_touch(now, throttle));
        drop(guard);
        if active && self.user_pending(user_id) {
            return (None, false);
        }
        // Recorded under the lock again (once per throttle per session): `should_touch`
        // decides afresh, so two requests that both saw it due write it once.
        let touch = due && throttle.is_some_and(|throttle| self.should_touch(id, now, throttle));
        (Some(active), touch)
    }

    /// Remembers that `id` is not an active session (the backend said so at `now`), for
    /// [`REFUSED_FOR`]. Bounded: a full shard first drops its lapsed refusals, then all.
    pub(crate) fn refuse(&self, id: SessionId, now: SystemTime) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(&id);
        if shard.index.contains_key(&id) {
            // Cached as active by a newer read; a refusal cannot be newer than that insert,
            // which happened under a current epoch.
            return;
        }
        if shard.refused.len() >= REFUSED_PER_SHARD && !shard.refused.contains_key(&id) {
            shard.refused.retain(|_, until| now < *until);
            if shard.refused.len() >= REFUSED_PER_SHARD {
                // Clearing costs as much as the inserts that filled it: amortised O(1).
                shard.refused.clear();
            }
        }
        shard.refused.insert(id, now + REFUSED_FOR);
    }

    /// The current eviction epoch; read it before the database read that a later
    /// [`insert_if_current`](Self::insert_if_current) is based on.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches an active session unless some eviction happened since `epoch` was read.
    /// Returns whether it was inserted.
    pub(crate) fn insert_if_current(
        &self,
        epoch: u64,
        id: SessionId,
        user_id: &str,
        expires_at: SystemTime,
        last_seen: SystemTime,
        now: SystemTime,
    ) -> bool {
        if self.per_shard == 0 || expires_at <= now || self.user_pending(user_id) {
            return false;
        }
        let mut shard = self.shard(&id);
        if self.epoch.load(Ordering::SeqCst) != epoch || shard.pending.contains(&id) {
            return false;
        }
        shard.refused.remove(&id);
        let slot = Slot {
            id,
            user_id: user_id.into(),
            expires_at,
            last_seen,
            referenced: false,
        };
        if let Some(&at) = shard.index.get(&id) {
            shard.slots[at] = slot;
        } else if shard.slots.len() < self.per_shard {
            let at = shard.slots.len();
            shard.slots.push(slot);
            shard.index.insert(id, at);
        } else {
            let at = shard.victim(now);
            let old = std::mem::replace(&mut shard.slots[at], slot);
            shard.index.remove(&old.id);
            shard.index.insert(id, at);
        }
        true
    }

    /// Removes `ids` and bumps the epoch, so that no read begun before now can re-insert them.
    pub(crate) fn evict(&self, ids: impl IntoIterator<Item = SessionId>) {
        for id in ids {
            let mut shard = self.shard(&id);
            shard.remove(&id);
            // Bumped while the shard is locked: an insert of this id either ran before (and is
            // removed above) or runs after and sees the new epoch.
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Forgets every session and bumps the epoch, as [`evict`](Self::evict) of everything: used
    /// when the database file was replaced, so that nothing is vouched for from the old one.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.index.clear();
            shard.slots.clear();
            shard.refused.clear();
            shard.hand = 0;
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether a touch of `id` at `now` should be written: true unless the cache knows it was
    /// written less than `throttle` ago. Records `now` as written when it answers true.
    pub(crate) fn should_touch(&self, id: SessionId, now: SystemTime, throttle: Duration) -> bool {
        if self.per_shard == 0 {
            return true;
        }
        let mut shard = self.shard(&id);
        let Some(&at) = shard.index.get(&id) else {
            return true;
        };
        shard.slots[at].touch_due(now, throttle)
    }

    /// The number of cached sessions.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.slots.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SessionId {
        // The first byte picks the shard: use the same shard for all to exercise eviction.
        SessionId::from_bytes([0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn hit_checks_user_and_expiry() {
        let cache = ValidationCache::new(64);
        assert!(cache.insert_if_current(cache.epoch(), id(1), "alice", t(100), t(0), t(10)));
        assert_eq!(cache.lookup(id(1), "alice", t(10)), Some(true));
        assert_eq!(cache.lookup(id(1), "bob", t(10)), Some(false));
        assert_eq!(cache.lookup(id(1), "alice", t(100)), Some(false));
        assert_eq!(cache.lookup(id(2), "alice", t(10)), None);
    }

    #[test]
    fn insert_after_an_eviction_is_refused() {
        let cache = ValidationCache::new(64);
        let before = cache.epoch();
        cache.evict([id(1)]);
        assert!(!cache.insert_if_current(before, id(1), "alice", t(100), t(0), t(10)));
        assert_eq!(cache.lookup(id(1), "alice", t(10)), None);
        assert!(cache.insert_if_current(cache.epoch(), id(1), "alice", t(100), t(0), t(10)));
        cache.evict([id(1)]);
        assert_eq!(cache.lookup(id(1), "alice", t(10)), None);
    }

    #[test]
    fn clear_forgets_everything_and_refuses_older_inserts() {
        let cache = ValidationCache::new(64);
        let before = cache.epoch();
        for n in 0..8 {
            assert!(cache.insert_if_current(before, id(n), "alice", t(100), t(0), t(10)));
        }
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.lookup(id(3), "alice", t(10)), None);
        assert!(!cache.insert_if_current(before, id(3), "alice", t(100), t(0), t(10)));
        assert!(cache.insert_if_current(cache.epoch(), id(3), "alice", t(100), t(0), t(10)));
    }

    #[test]
    fn bounded_and_clock_keeps_referenced_entries() {
        let cache = ValidationCache::new(SHARDS * 4); // four per shard; all ids share one shard
        for n in 0..4 {
            assert!(cache.insert_if_current(cache.epoch(), id(n), "u", t(100), t(0), t(1)));
        }
        assert_eq!(cache.lookup(id(2), "u", t(1)), Some(true));
        for n in 10..13 {
            assert!(cache.insert_if_current(cache.epoch(), id(n), "u", t(100), t(0), t(1)));
        }
        assert_eq!(cache.len(), 4);
        assert_eq!(
            cache.lookup(id(2), "u", t(1)),
            Some(true),
            "the hit entry survived"
        );
        for n in [0, 1, 3] {
            assert_eq!(
                cache.lookup(id(n), "u", t(1)),
                None,
                "{n} should be evicted"
            );
        }
    }

    #[test]
    fn expired_entries_go_first_and_are_never_inserted() {
        let cache = ValidationCache::new(SHARDS * 2);
        assert!(cache.insert_if_current(cache.epoch(), id(1), "u", t(100), t(0), t(1)));
        assert!(cache.insert_if_current(cache.epoch(), id(2), "u", t(5), t(0), t(1)));
        cache.lookup(id(1), "u", t(1));
        cache.lookup(id(2), "u", t(1));
        assert!(cache.insert_if_current(cache.epoch(), id(3), "u", t(100), t(0), t(6)));
        assert_eq!(cache.lookup(id(1), "u", t(6)), Some(true));
        assert_eq!(cache.lookup(id(2), "u", t(6)), None);
        assert!(!cache.insert_if_current(cache.epoch(), id(4), "u", t(5), t(0), t(6)));
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = ValidationCache::new(0);
        assert!(!cache.insert_if_current(cache.epoch(), id(1), "u", t(100), t(0), t(1)));
        assert_eq!(cache.lookup(id(1), "u", t(1)), None);
        assert!(cache.should_touch(id(1), t(1), Duration::from_secs(60)));
    }

    #[test]
    fn a_revocation_in_flight_is_never_vouched_for_nor_cached() {
        let cache = ValidationCache::new(64);
        for n in 1..=3 {
            assert!(cache.insert_if_current(cache.epoch(), id(n), "alice", t(100), t(0), t(1)));
        }
        assert!(cache.insert_if_current(cache.epoch(), id(4), "bob", t(100), t(0), t(1)));
        let epoch = cache.epoch();
        let one = cache.begin_revocation(Target::Id(id(1)));
        assert_eq!(cache.lookup(id(1), "alice", t(1)), None);
        assert_eq!(cache.lookup(id(2), "alice", t(1)), Some(true));
        // A read begun before the mark cannot insert, nor can one begun after it.
        assert!(!cache.insert_if_current(epoch, id(5), "alice", t(100), t(0), t(1)));
        cache.evict([id(1)]);
        assert!(!cache.insert_if_current(cache.epoch(), id(1), "alice", t(100), t(0), t(1)));
        {
            let everyone = cache.begin_revocation(Target::User("alice".into()));
            assert_eq!(cache.lookup(id(2), "alice", t(1)), None);
            assert_eq!(cache.lookup(id(3), "alice", t(1)), None);
            assert_eq!(cache.lookup(id(4), "bob", t(1)), Some(true));
            // The same target twice: one guard's end leaves the other's mark.
            drop(cache.begin_revocation(Target::User("alice".into())));
            assert_eq!(cache.lookup(id(2), "alice", t(1)), None);
            drop(everyone);
        }
        assert_eq!(cache.lookup(id(2), "alice", t(1)), Some(true));
        drop(one);
        assert!(cache.insert_if_current(cache.epoch(), id(1), "alice", t(100), t(0), t(1)));
        assert_eq!(cache.lookup(id(1), "alice", t(1)), Some(true));
    }

    #[test]
    fn a_revocation_of_everyone_in_flight_vouches_for_no_one() {
        let cache = ValidationCache::new(64);
        assert!(cache.insert_if_current(cache.epoch(), id(1), "alice", t(100), t(0), t(1)));
        assert!(cache.insert_if_current(cache.epoch(), id(2), "bob", t(100), t(0), t(1)));
        let epoch = cache.epoch();
        let everyone = cache.begin_revocation(Target::Everyone);
        let alice = cache.begin_revocation(Target::User("alice".into()));
        for (n, user) in [(1, "alice"), (2, "bob")] {
            assert_eq!(cache.lookup(id(n), user, t(1)), None, "{user}");
        }
        // Another user's or an expired session is still refused from memory.
        assert_eq!(cache.lookup(id(2), "alice", t(1)), Some(false));
        // Nothing enters meanwhile, from a read begun before the mark or after it.
        assert!(!cache.insert_if_current(epoch, id(3), "carol", t(100), t(0), t(1)));
        assert!(!cache.insert_if_current(cache.epoch(), id(3), "carol", t(100), t(0), t(1)));
        drop(everyone);
        // A user's mark outlives everyone's.
        assert_eq!(cache.lookup(id(1), "alice", t(1)), None);
        assert_eq!(cache.lookup(id(2), "bob", t(1)), Some(true));
        drop(alice);
        assert_eq!(cache.lookup(id(1), "alice", t(1)), Some(true));
        assert!(cache.insert_if_current(cache.epoch(), id(3), "carol", t(100), t(0), t(1)));
    }

    #[test]
    fn refusals_are_remembered_for_a_while_and_bounded() {
        let cache = ValidationCache::new(64);
        cache.refuse(id(1), t(10));
        assert_eq!(cache.lookup(id(1), "alice", t(10)), Some(false));
        let lapsed = t(10) + REFUSED_FOR;
        assert_eq!(cache.lookup(id(1), "alice", lapsed), None);
        // An insert (a newer read found it active) supersedes a refusal.
        cache.refuse(id(2), t(10));
        assert!(cache.insert_if_current(cache.epoch(), id(2), "alice", t(100), t(0), t(10)));
        assert_eq!(cache.lookup(id(2), "alice", t(11)), Some(true));
        // Never more than the bound per shard, however many are refused.
        for n in 0..(REFUSED_PER_SHARD as u32 * 3) {
            let mut bytes = [0u8; 16];
            bytes[4..8].copy_from_slice(&n.to_le_bytes());
            cache.refuse(SessionId::from_bytes(bytes), t(20));
        }
        let refused = cache.shards[0].lock().unwrap().refused.len();
        assert!(refused <= REFUSED_PER_SHARD, "{refused}");
        cache.clear();
        assert_eq!(cache.lookup(id(1), "alice", t(10)), None);
    }

    #[test]
    fn touch_is_throttled_per_session() {
        let cache = ValidationCache::new(64);
        let minute = Duration::from_secs(60);
        cache.insert_if_current(cache.epoch(), id(1), "u", t(1000), t(0), t(0));
        assert!(!cache.should_touch(id(1), t(30), minute));
        assert!(cache.should_touch(id(1), t(60), minute));
        assert!(!cache.should_touch(id(1), t(100), minute));
        assert!(
            cache.should_touch(id(9), t(100), minute),
            "unknown ids are always written"
        );
    }

    #[test]
    fn one_lookup_answers_and_throttles_touches_only_for_a_trusted_yes() {
        let cache = ValidationCache::new(64);
        let minute = Some(Duration::from_secs(60));
        let look =
            |user, at, freshness| cache.lookup_trusted_touch(id(1), user, t(at), freshness, minute);
        cache.insert_if_current(cache.epoch(), id(1), "u", t(1000), t(0), t(0));
        assert_eq!(look("u", 30, None), (Some(true), false));
        assert_eq!(look("u", 60, None), (Some(true), true));
        assert_eq!(look("u", 100, None), (Some(true), false), "written at 60");
        // Another user's, expired, or unknown: no touch, and the throttle is left alone.
        assert_eq!(look("v", 200, None), (Some(false), false));
        assert_eq!(look("u", 1000, None), (Some(false), false));
        assert_eq!(
            cache.lookup_trusted_touch(id(2), "u", t(200), None, minute),
            (None, false)
        );
        // A stale feed: no answer, and no touch recorded, so the next trusted yes writes one.
        let stale = Freshness::new(std::time::Instant::now(), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(look("u", 200, Some(&stale)), (None, false));
        assert_eq!(look("v", 200, Some(&stale)), (Some(false), false));
        // A revocation in flight: no answer, no touch.
        let in_flight = cache.begin_revocation(Target::Id(id(1)));
        assert_eq!(look("u", 200, None), (None, false));
        drop(in_flight);
        assert_eq!(look("u", 200, None), (Some(true), true));
        // A revocation of the user in flight: no answer and no touch; if it fails, the
        // session's touch is still due (a review found it recorded and lost).
        let in_flight = cache.begin_revocation(Target::User("u".into()));
        assert_eq!(look("u", 400, None), (None, false));
        drop(in_flight);
        assert!(cache.should_touch(id(1), t(420), Duration::from_secs(60)));
        // Without a throttle (a stopped registry), never a touch.
        assert_eq!(
            cache.lookup_trusted_touch(id(1), "u", t(900), None, None),
            (Some(true), false)
        );
    }
}
