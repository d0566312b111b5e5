//! What happens to sessions in the middleware: loaded, signed in, signed out, renewed.

use super::handle::{counter, Counter, Unit};

/// `sealed_sessions_sessions_loaded_total{kind}`, `sealed_sessions_logins_total`,
/// `sealed_sessions_logouts_total` and `sealed_sessions_renewals_total{result}`.
#[derive(Debug, Clone)]
pub(crate) struct SessionEvents {
    /// A request's cookie came to an anonymous session, or a signed-in one.
    loaded: [Counter; 2],
    logins: Counter,
    logouts: Counter,
    /// Renewals that rotated the id, and those refused because the old id was no longer active.
    renewals: [Counter; 2],
}

impl SessionEvents {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        let loaded = |kind| {
            counter(
                "sealed_sessions_sessions_loaded_total",
                &[("kind", kind)],
                Unit::Count,
                "Requests whose session cookie was taken, anonymous or signed in",
            )
        };
        let renewed = |result| {
            counter(
                "sealed_sessions_renewals_total",
                &[("result", result)],
                Unit::Count,
                "Session id renewals; not_active: the old id was no longer active",
            )
        };
        SessionEvents {
            loaded: [loaded("anonymous"), loaded("signed_in")],
            logins: counter(
                "sealed_sessions_logins_total",
                &[],
                Unit::Count,
                "Sign-ins registered",
            ),
            logouts: counter(
                "sealed_sessions_logouts_total",
                &[],
                Unit::Count,
                "Sign-outs",
            ),
            renewals: [renewed("ok"), renewed("not_active")],
        }
    }

    /// A request's cookie was taken as its session.
    pub(crate) fn loaded(&self, signed_in: bool) {
        self.loaded[usize::from(signed_in)].increment(1);
    }

    /// A new id was given and registered (when there is a registry): a sign-in if `login`,
    /// else a renewal that rotated the id (`rotated`) or found the old one no longer active.
    pub(crate) fn reissued(&self, login: bool, rotated: bool) {
        if login {
            self.logins.increment(1);
        } else {
            self.renewals[usize::from(!rotated)].increment(1);
        }
    }

    /// A sign-out.
    pub(crate) fn logout(&self) {
        self.logouts.increment(1);
    }
}
