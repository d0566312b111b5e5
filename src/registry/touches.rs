//! Last-seen updates, throttled per session and queued for a backend to write behind.
//!
//! [`Registry::touch`](super::Registry::touch) runs on every accepted request, so it must never
//! block on I/O: it asks the validation cache whether this session's last write is older than the
//! throttle, and if so queues the time in a bounded map that the backend's writer takes and
//! writes in one batch. Listings merge what is queued, so a "last seen" is never older than the
//! newest touch. Shared by every backend.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::id::SessionId;
use crate::registry::cache::ValidationCache;
use crate::registry::freshness::Freshness;
use crate::registry::SessionInfo;

/// The most distinct sessions with a queued last-seen update; more are dropped until the flush.
pub(crate) const MAX_PENDING_TOUCHES: usize = 100_000;

/// How often queued last-seen updates are written.
pub(crate) const TOUCH_FLUSH: Duration = Duration::from_secs(1);

/// The queue of last-seen times not yet written.
#[derive(Debug)]
pub(crate) struct TouchQueue {
    pending: Mutex<HashMap<SessionId, SystemTime>>,
    throttle: Duration,
}

impl TouchQueue {
    /// A queue that writes a session's last-seen time at most once per `throttle`.
    pub(crate) fn new(throttle: Duration) -> Self {
        TouchQueue {
            pending: Mutex::new(HashMap::new()),
            throttle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, SystemTime>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `now` as `id`'s last-seen time, unless the cache knows it was written less than
    /// the throttle ago or the queue is full.
    pub(crate) fn touch(&self, cache: &ValidationCache, id: SessionId, now: SystemTime) {
        if cache.should_touch(id, now, self.throttle) {
            self.queue(id, now);
        }
    }

    /// The cache's answer for `id` of `user_id` at `now` (see
    /// [`ValidationCache::lookup_trusted`]), and with a "yes", a [`touch`](Self::touch) (unless
    /// `stopped`), in one lookup: a backend's `Registry::validate_cached_and_touch`.
    pub(crate) fn validate_cached(
        &self,
        cache: &ValidationCache,
        id: SessionId,
        user_id: &str,
        now: SystemTime,
        freshness: Option<&Freshness>,
        stopped: bool,
    ) -> Option<bool> {
        let throttle = (!stopped).then_some(self.throttle);
        let (answer, due) = cache.lookup_trusted_touch(id, user_id, now, freshness, throttle);
        if due {
            self.queue(id, now);
        }
        answer
    }

    /// Queues `now` as `id`'s last-seen time (a write is due), unless the queue is full.
    fn queue(&self, id: SessionId, now: SystemTime) {
        let mut pending = self.lock();
        if pending.len() < MAX_PENDING_TOUCHES || pending.contains_key(&id) {
            let seen = pending.entry(id).or_insert(now);
            *seen = (*seen).max(now);
        }
    }

    /// Everything queued, for the writer to write.
    pub(crate) fn take(&self) -> HashMap<SessionId, SystemTime> {
        std::mem::take(&mut *self.lock())
    }

    /// Moves the queued times that are newer than the listed ones into `list`; `stored` maps a
    /// queued time to what the backend would store (its precision).
    pub(crate) fn merge_into(
        &self,
        list: &mut [SessionInfo],
        stored: fn(SystemTime) -> SystemTime,
    ) {
        let pending = self.lock();
        for info in list {
            if let Some(&seen) = pending.get(&info.id) {
                info.last_seen_at = info.last_seen_at.max(stored(seen));
            }
        }
    }
}
