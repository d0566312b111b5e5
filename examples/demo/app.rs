//! What the handlers share: the registry, the accounts' passwords, the hashing slots, the
//! throttle on wrong passwords and the clock; the one way a password is checked (for signing
//! in, re-authenticating and changing it); and the checks every signed-in form goes through.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use sealed_sessions::registry::Registry;
use sealed_sessions::Session;

use crate::clock::Clock;
use crate::gate::Priority;
use crate::pages::{busy, forbidden, too_many_failures};
use crate::passwords::{self, Accounts, Hashing, Slot};
use crate::throttle::{Standing, Throttle};

pub struct App {
    pub registry: Arc<dyn Registry>,
    pub accounts: Accounts,
    pub hashing: Hashing,
    pub throttle: Mutex<Throttle>,
    pub clock: Arc<Clock>,
}

pub type AppState = State<Arc<App>>;

/// What a password check found.
pub enum Checked {
    /// The right password. `slot` is the hashing slot it was checked in (`None` only if the
    /// check's task panicked), for a new hash; `phc` the hash it matched.
    Right {
        slot: Option<Slot>,
        phc: String,
    },
    Wrong,
}

impl App {
    /// The throttle, even after a panic elsewhere while it was held: its counts stay usable, and
    /// refusing every sign-in from then on would be worse.
    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `client` may try a password for `account` now, or how long it must wait.
    fn may_try(&self, account: &str, client: IpAddr) -> Result<Standing, Duration> {
        self.throttle().check(account, client, Instant::now())
    }

    /// Checks `password` for `account`, as the throttle allows and counting the outcome in it.
    /// The same counts serve the sign-in form, the re-authentication prompt and the current
    /// password of the change-password form: a guesser holding a stolen cookie gets no more
    /// tries than one at the sign-in form. `Err` is the answer when no check ran: 429 while
    /// paused, 503 when too many checks wait.
    pub async fn check_password(
        &self,
        account: &str,
        password: String,
        client: IpAddr,
    ) -> Result<Checked, Response> {
        let standing = self.may_try(account, client).map_err(too_many_failures)?;
        // Addresses the account signed in from before go first: a flood of guesses from
        // elsewhere queues behind its owner rather than in front.
        let priority = match standing {
            Standing::Known => Priority::First,
            Standing::Unknown => Priority::Other,
        };
        let slot = self.hashing.slot(priority).await.ok_or_else(busy)?;
        // Again: the failures of the checks this one queued behind may have paused it.
        self.may_try(account, client).map_err(too_many_failures)?;
        let phc = self.accounts.hash_of(account);
        let (matches, slot) = passwords::check(slot, phc.clone(), password).await;
        // Counted before the hashing slot is free, so that the next queued guess sees this
        // failure.
        let mut throttle = self.throttle();
        match (matches, phc) {
            (true, Some(phc)) => {
                throttle.record_success(account, client, Instant::now());
                Ok(Checked::Right { slot, phc })
            }
            _ => {
                throttle.record_failure(account, client, Instant::now());
                drop(throttle);
                drop(slot);
                Ok(Checked::Wrong)
            }
        }
    }
}

/// Why a form post that needs a signed-in user is refused.
pub enum Refusal {
    /// The CSRF token is missing or wrong: 403.
    BadToken,
    /// No one is signed in: back to the sign-in page.
    SignedOut,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadToken => forbidden(),
            Refusal::SignedOut => Redirect::to("/").into_response(),
        }
    }
}

/// The signed-in user behind a form post, after its CSRF token checks out.
pub fn signed_in_form(session: &Session, submitted: &str) -> Result<String, Refusal> {
    if !session.verify_csrf_token(submitted) {
        return Err(Refusal::BadToken);
    }
    session.user().ok_or(Refusal::SignedOut)
}
