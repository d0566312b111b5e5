//! Why a response sets the session cookie: the `why` label of
//! `sealed_sessions_set_cookies_total`.

use super::handle::{counter, Counter, Unit};

/// Why a response carries a `Set-Cookie` for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SetCookie {
    /// The handler changed the session (its data, its id, remember-me).
    #[default]
    Changed,
    /// A user signed in.
    Login,
    /// The user signed out: the cookie is removed.
    Logout,
    /// The cookie was sealed with an older key and is sealed again with the current one.
    KeyRotation,
    /// Nothing changed, but the idle deadline was due for a refresh.
    IdleRefresh,
    /// The cookie is removed: the session was emptied, or the registry refused it.
    Removal,
}

impl SetCookie {
    /// Every reason, in the order of [`SetCookie::index`].
    pub(crate) const ALL: [SetCookie; 6] = [
        SetCookie::Changed,
        SetCookie::Login,
        SetCookie::Logout,
        SetCookie::KeyRotation,
        SetCookie::IdleRefresh,
        SetCookie::Removal,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SetCookie::Changed => "changed",
            SetCookie::Login => "login",
            SetCookie::Logout => "logout",
            SetCookie::KeyRotation => "key_rotation",
            SetCookie::IdleRefresh => "idle_refresh",
            SetCookie::Removal => "removal",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// `sealed_sessions_set_cookies_total{why}`, one handle per reason.
#[derive(Debug, Clone)]
pub(crate) struct SetCookies([Counter; 6]);

impl SetCookies {
    /// Takes the handles (see `handle.rs` for when).
    pub(crate) fn register() -> Self {
        SetCookies(SetCookie::ALL.map(|why| {
            counter(
                "sealed_sessions_set_cookies_total",
                &[("why", why.as_str())],
                Unit::Count,
                "Responses that set or removed the session cookie, by why",
            )
        }))
    }

    /// Counts one response's `Set-Cookie` for the session (its chunks count once).
    pub(crate) fn count(&self, why: SetCookie) {
        self.0[why.index()].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_list_and_values_are_distinct() {
        for (at, why) in SetCookie::ALL.iter().enumerate() {
            assert_eq!(why.index(), at);
            let same = SetCookie::ALL.iter().filter(|w| w.as_str() == why.as_str());
            assert_eq!(same.count(), 1, "{}", why.as_str());
        }
    }
}
