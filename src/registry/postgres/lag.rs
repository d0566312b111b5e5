//! [`HeardAt`]: when this host evicted each revocation it heard of, so that the listener's next
//! read of the log can record the propagation lag (`sealed_sessions_revocation_propagation_seconds`).
//!
//! A notification evicts its ids at once but carries no time; the log read that follows (the
//! heartbeat's, at most one `heartbeat` later) reads each logged id's `sessions.revoked_at`,
//! which the revoking transaction stamped with the **database server's** `now()` (the start of
//! that transaction: a little before its commit). The lag of a revocation is then the moment
//! this host evicted it (its notification's arrival, remembered here, or the log read itself
//! when no notification named it) minus that stamp: two clocks, this host's and the server's,
//! so a skew of `d` between them adds `d` to every sample (a negative difference is recorded as
//! 0). See `docs/operations.md`.
//!
//! What is remembered is bounded: at most [`CAP`] ids between two reads of the log (anyone who
//! can connect can NOTIFY), each read takes them all, and ids no read matches are dropped with
//! them. Past the cap, the read records only the ids it finds remembered (the others were
//! evicted by a notification at a time not kept, and the read's own time would overstate).
//! Without the `metrics` feature nothing is remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::id::SessionId;
use crate::telemetry::feed::FeedMetrics;

/// Whether lags are measured at all: not without the `metrics` feature (the histogram would
/// record nothing).
pub(crate) const RECORDING: bool = cfg!(feature = "metrics");

/// Ids remembered between two reads of the log, at most.
const CAP: usize = 4096;

/// When each id named by a notification was evicted, since the last read of the log.
#[derive(Debug, Default)]
pub(crate) struct HeardAt(Mutex<Heard>);

#[derive(Debug, Default)]
pub(crate) struct Heard {
    at: HashMap<SessionId, SystemTime>,
    /// Some id could not be remembered (the cap).
    overflowed: bool,
}

impl HeardAt {
    /// `ids` were evicted just now (a notification named them).
    pub(crate) fn heard(&self, ids: &[SessionId]) {
        if !RECORDING || ids.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let mut heard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            if heard.at.len() < CAP {
                // The first hearing is the eviction; a repeat changes nothing.
                heard.at.entry(*id).or_insert(now);
            } else if !heard.at.contains_key(id) {
                heard.overflowed = true;
            }
        }
    }

    /// Everything heard so far, for a read of the log that is about to begin; what is heard
    /// from now on waits for the next read.
    pub(crate) fn take(&self) -> Heard {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Heard {
    /// Records the lag of `id`, revoked at `revoked_at` (the server's clock) and found in the
    /// log by a read whose rows arrived at `read_at` (this host's clock).
    pub(crate) fn record(
        &mut self,
        metrics: &FeedMetrics,
        id: &SessionId,
        revoked_at: SystemTime,
        read_at: SystemTime,
    ) {
        let evicted = match self.at.remove(id) {
            Some(at) => at,
            None if self.overflowed => return,
            None => read_at,
        };
        metrics.propagated(evicted.duration_since(revoked_at).unwrap_or_default());
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; SessionId::LEN])
    }

    #[test]
    fn the_lag_runs_to_the_notification_else_to_the_read() {
        let recorder = DebuggingRecorder::new();
        let snapshots = recorder.snapshotter();
        let metrics = metrics::with_local_recorder(&recorder, FeedMetrics::register);
        let revoked = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let secs = |s| revoked + Duration::from_secs(s);
        let mut heard = Heard::default();
        heard.at.insert(id(1), secs(2));
        // Heard before the stamp: the server's clock is ahead of this host's.
        heard.at.insert(id(3), revoked - Duration::from_secs(1));
        heard.record(&metrics, &id(1), revoked, secs(5));
        heard.record(&metrics, &id(2), revoked, secs(5));
        heard.record(&metrics, &id(3), revoked, secs(5));
        // Past the cap, an id not remembered was evicted at a time not kept: no sample.
        heard.overflowed = true;
        heard.record(&metrics, &id(4), revoked, secs(5));
        let samples: Vec<f64> = snapshots
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Histogram(s)
                    if key.key().name() == "sealed_sessions_revocation_propagation_seconds" =>
                {
                    Some(s.into_iter().map(|v| v.into_inner()))
                }
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(samples, [2.0, 5.0, 0.0]);
    }

    #[test]
    fn remembers_the_first_hearing_up_to_the_cap_and_forgets_on_take() {
        let heard = HeardAt::default();
        let ids: Vec<SessionId> = (0..=CAP as u32)
            .map(|n| {
                let mut bytes = [0u8; SessionId::LEN];
                bytes[..4].copy_from_slice(&n.to_le_bytes());
                SessionId::from_bytes(bytes)
            })
            .collect();
        heard.heard(&ids[..1]);
        let first = heard.0.lock().unwrap().at[&ids[0]];
        heard.heard(&ids[..1]);
        assert_eq!(heard.0.lock().unwrap().at[&ids[0]], first);
        let taken = heard.take();
        assert_eq!(taken.at.len(), 1);
        assert!(!taken.overflowed);
        assert!(heard.0.lock().unwrap().at.is_empty());

        heard.heard(&ids);
        let taken = heard.take();
        assert_eq!(taken.at.len(), CAP);
        assert!(taken.overflowed);
        assert!(!heard.0.lock().unwrap().overflowed);
    }
}
