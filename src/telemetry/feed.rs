//! The revocation feed's metrics: when it was last confirmed complete, whether the cache is
//! trusted, reconnects, cache flushes by reason, and how long a revocation took to reach this
//! host.

// Some handles are recorded by one backend only (reconnects: PostgreSQL).
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::handle::{counter, gauge, histogram, Counter, Gauge, Histogram, Unit};

/// Why the validation cache was emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// The database server restarted (PostgreSQL): the log's tail may be lost.
    Restart,
    /// Another database is behind the same name: a new incarnation (PostgreSQL), or the file
    /// was deleted or replaced (SQLite).
    ReplacedDatabase,
    /// The log ends before what this host has read, or lost the row it read last (a restore,
    /// a failover).
    LogLost,
    /// Too many revocations to catch up on: emptying the cache is cheaper.
    CatchUpTooLong,
    /// The sessions table was emptied (a `TRUNCATE` logs an empty id).
    Truncated,
}

impl Flush {
    /// Every reason, in the order of the handles.
    pub(crate) const ALL: [Flush; 5] = [
        Flush::Restart,
        Flush::ReplacedDatabase,
        Flush::LogLost,
        Flush::CatchUpTooLong,
        Flush::Truncated,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flush::Restart => "restart",
            Flush::ReplacedDatabase => "replaced_database",
            Flush::LogLost => "log_lost",
            Flush::CatchUpTooLong => "catch_up_too_long",
            Flush::Truncated => "truncated",
        }
    }
}

/// The feed's handles, taken when the registry starts.
#[derive(Debug, Clone)]
pub(crate) struct FeedMetrics {
    confirmed_at: Gauge,
    age: Gauge,
    fresh: Gauge,
    reconnects: Counter,
    flushes: [Counter; 5],
    lag: Histogram,
}

impl FeedMetrics {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        FeedMetrics {
            confirmed_at: gauge(
                "sealed_sessions_feed_last_confirmed_timestamp_seconds",
                &[],
                Unit::Seconds,
                "When the revocation feed was last confirmed complete (Unix time)",
            ),
            age: gauge(
                "sealed_sessions_feed_seconds_since_confirmed",
                &[],
                Unit::Seconds,
                "Age of the feed's last confirmation, as of the last check or health() call",
            ),
            fresh: gauge(
                "sealed_sessions_feed_fresh",
                &[],
                Unit::Count,
                "1 while cached answers are trusted (the feed is within its staleness bound)",
            ),
            reconnects: counter(
                "sealed_sessions_feed_reconnects_total",
                &[],
                Unit::Count,
                "Times the revocation feed lost a working connection (failed attempts to reconnect are not counted)",
            ),
            flushes: Flush::ALL.map(|reason| {
                counter(
                    "sealed_sessions_cache_flushes_total",
                    &[("reason", reason.as_str())],
                    Unit::Count,
                    "Times the validation cache was emptied, by reason",
                )
            }),
            lag: histogram(
                "sealed_sessions_revocation_propagation_seconds",
                &[],
                Unit::Seconds,
                "From a revocation (its stamp, before the commit) to its eviction on this host",
            ),
        }
    }

    /// The feed was confirmed complete as of `at` (this host's clock).
    pub(crate) fn confirmed(&self, at: SystemTime) {
        let unix = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.confirmed_at.set(unix.as_secs_f64());
    }

    /// The state of the feed as just measured.
    pub(crate) fn state(&self, age: Duration, fresh: bool) {
        self.age.set(age.as_secs_f64());
        self.fresh.set(if fresh { 1.0 } else { 0.0 });
    }

    /// The feed lost a connection that had caught up with the log (not counted again for each
    /// failed attempt to reconnect).
    pub(crate) fn reconnect(&self) {
        self.reconnects.increment(1);
    }

    /// The validation cache was emptied.
    pub(crate) fn flush(&self, reason: Flush) {
        self.flushes[reason as usize].increment(1);
    }

    /// A revocation committed `lag` ago was evicted here just now.
    pub(crate) fn propagated(&self, lag: Duration) {
        self.lag.record(lag.as_secs_f64());
    }
}
