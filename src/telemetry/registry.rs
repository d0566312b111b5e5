//! The registry's metrics: cache lookups by result, operations by kind and result with their
//! latency, the writer's batch sizes, and last-seen updates waiting to be written. Also the
//! `tracing` span every operation runs in.

use std::future::Future;
use std::time::Instant;

use super::handle::{counter, gauge, histogram, Counter, Gauge, Histogram, Unit};

/// What a validation-cache lookup came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Cached as active: no read.
    Hit,
    /// Cached as not active (another user's, expired, or refused less than 30 s ago): no read.
    Refused,
    /// Not cached: the backend is read.
    Miss,
    /// Cached, but not trusted: the revocation feed is stale, or a revocation that covers it is
    /// in flight. The backend is read.
    NotTrusted,
}

impl Lookup {
    /// Every result, in the order of the handles.
    pub(crate) const ALL: [Lookup; 4] = [
        Lookup::Hit,
        Lookup::Refused,
        Lookup::Miss,
        Lookup::NotTrusted,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Refused => "refused",
            Lookup::Miss => "miss",
            Lookup::NotTrusted => "not_trusted",
        }
    }
}

/// `sealed_sessions_registry_cache_lookups_total{result}`.
#[derive(Debug, Clone)]
pub(crate) struct Lookups([Counter; 4]);

impl Lookups {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        Lookups(Lookup::ALL.map(|result| {
            counter(
                "sealed_sessions_registry_cache_lookups_total",
                &[("result", result.as_str())],
                Unit::Count,
                "Validation-cache lookups, by result",
            )
        }))
    }

    /// Counts one lookup.
    pub(crate) fn count(&self, result: Lookup) {
        self.0[result as usize].increment(1);
    }
}

/// A registry operation, as the `op` label and the span's `op` field name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `register`.
    Register,
    /// `rotate` (a renewal or a login over a signed-in session).
    Rotate,
    /// `validate` when it reads the backend (a cache miss).
    Validate,
    /// `list_for_user`.
    List,
    /// `revoke` and `revoke_id`.
    Revoke,
    /// `revoke_user` and `revoke_user_signed_in_before`.
    RevokeUser,
    /// `revoke_all`.
    RevokeAll,
    /// `forget_user`.
    ForgetUser,
    /// `delete_expired`.
    DeleteExpired,
}

impl Op {
    /// Every operation, in the order of the handles.
    pub(crate) const ALL: [Op; 9] = [
        Op::Register,
        Op::Rotate,
        Op::Validate,
        Op::List,
        Op::Revoke,
        Op::RevokeUser,
        Op::RevokeAll,
        Op::ForgetUser,
        Op::DeleteExpired,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Rotate => "rotate",
            Op::Validate => "validate",
            Op::List => "list",
            Op::Revoke => "revoke",
            Op::RevokeUser => "revoke_user",
            Op::RevokeAll => "revoke_all",
            Op::ForgetUser => "forget_user",
            Op::DeleteExpired => "delete_expired",
        }
    }
}

/// One operation's handles: results `ok` and `error`, and its latency.
#[derive(Debug, Clone)]
struct OpHandles {
    results: [Counter; 2],
    seconds: Histogram,
}

/// The registry's handles, taken when it starts.
#[derive(Debug, Clone)]
pub(crate) struct RegistryMetrics {
    ops: [OpHandles; 9],
    batch: Histogram,
    pending_touches: Gauge,
}

impl RegistryMetrics {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        let ops = Op::ALL.map(|op| {
            let result = |result| {
                counter(
                    "sealed_sessions_registry_operations_total",
                    &[("op", op.as_str()), ("result", result)],
                    Unit::Count,
                    "Registry operations that reached the backend, by op and result",
                )
            };
            OpHandles {
                results: [result("ok"), result("error")],
                seconds: histogram(
                    "sealed_sessions_registry_operation_seconds",
                    &[("op", op.as_str())],
                    Unit::Seconds,
                    "Latency of registry operations that reached the backend",
                ),
            }
        });
        RegistryMetrics {
            ops,
            batch: histogram(
                "sealed_sessions_registry_write_batch_size",
                &[],
                Unit::Count,
                "Writes committed per transaction by the registry's writer",
            ),
            pending_touches: gauge(
                "sealed_sessions_registry_pending_touches",
                &[],
                Unit::Count,
                "Last-seen updates queued and not yet written",
            ),
        }
    }

    /// Runs `op` in a `tracing` span (`op`, and `outcome` once it ends) and records its result
    /// and latency. The span is at debug level: without a subscriber that wants it, it costs a
    /// check.
    pub(crate) fn observe<'a, T, E, F>(
        &'a self,
        op: Op,
        future: F,
    ) -> impl Future<Output = Result<T, E>> + Send + 'a
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: std::fmt::Display + Send + 'a,
    {
        use tracing::Instrument;
        let span = tracing::debug_span!(
            "sealed_sessions.registry",
            op = op.as_str(),
            outcome = tracing::field::Empty
        );
        let handles = &self.ops[op as usize];
        async move {
            let started = Instant::now();
            let result = future.await;
            handles.seconds.record(started.elapsed().as_secs_f64());
            let span = tracing::Span::current();
            match &result {
                Ok(_) => {
                    handles.results[0].increment(1);
                    span.record("outcome", "ok");
                }
                Err(e) => {
                    handles.results[1].increment(1);
                    span.record("outcome", "error");
                    tracing::debug!(error = %e, "registry operation failed");
                }
            }
            result
        }
        .instrument(span)
    }

    /// The writer committed `n` writes in one transaction.
    pub(crate) fn batch(&self, n: usize) {
        self.batch.record(n as f64);
    }

    /// `n` last-seen updates are waiting to be written.
    pub(crate) fn pending_touches(&self, n: usize) {
        self.pending_touches.set(n as f64);
    }
}
