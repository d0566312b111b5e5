//! Why a request's session cookie was not taken: the `reason` label of
//! `sealed_sessions_cookies_refused_total`, and the `reason` field of the debug event that
//! `load.rs` logs for it (one vocabulary for both).

use super::handle::{counter, Counter, Unit};
use crate::seal::OpenError;

/// Why a cookie of our name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a sealed value: bad encoding or length, an unknown version or mode, a bad chunk
    /// count, claims that do not decode.
    Malformed,
    /// The tag does not verify: changed, renamed or forged.
    Forged,
    /// Sealed with a key that is not in the ring (retired, or foreign).
    UnknownKey,
    /// Past its absolute expiry, its idle deadline or this configuration's lifetime.
    Expired,
    /// The registry says the session is not active (revoked, unknown, expired there).
    Revoked,
    /// The registry could not answer for it.
    RegistryUnavailable,
    /// Not looked at: the request carried more cookies of our name than the caps allow.
    OverCaps,
}

impl Refusal {
    /// Every reason, in the order of [`Refusal::index`].
    pub(crate) const ALL: [Refusal; 7] = [
        Refusal::Malformed,
        Refusal::Forged,
        Refusal::UnknownKey,
        Refusal::Expired,
        Refusal::Revoked,
        Refusal::RegistryUnavailable,
        Refusal::OverCaps,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Forged => "forged",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::RegistryUnavailable => "registry_unavailable",
            Refusal::OverCaps => "over_caps",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The reason a cookie that did not open was refused.
    pub(crate) fn of(err: &OpenError) -> Refusal {
        match err {
            OpenError::Tampered => Refusal::Forged,
            OpenError::UnknownKey(_) => Refusal::UnknownKey,
            OpenError::Expired => Refusal::Expired,
            OpenError::Malformed
            | OpenError::UnsupportedVersion(_)
            | OpenError::WrongMode { .. }
            | OpenError::BadClaims(_) => Refusal::Malformed,
        }
    }
}

/// `sealed_sessions_cookies_refused_total{reason}`, one handle per reason.
#[derive(Debug, Clone)]
pub(crate) struct Refusals([Counter; 7]);

impl Refusals {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        Refusals(Refusal::ALL.map(|reason| {
            counter(
                "sealed_sessions_cookies_refused_total",
                &[("reason", reason.as_str())],
                Unit::Count,
                "Session cookies not taken, by reason",
            )
        }))
    }

    /// Counts one refused cookie.
    pub(crate) fn count(&self, reason: Refusal) {
        self.0[reason.index()].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_list_and_values_are_distinct() {
        for (at, reason) in Refusal::ALL.iter().enumerate() {
            assert_eq!(reason.index(), at);
            let same = Refusal::ALL
                .iter()
                .filter(|r| r.as_str() == reason.as_str());
            assert_eq!(same.count(), 1, "{}", reason.as_str());
        }
    }
}
