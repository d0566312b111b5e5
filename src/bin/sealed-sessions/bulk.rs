//! The commands that reach many sessions at once: `revoke --all-users`, `revoke
//! --signed-in-before`, and `forget-user`. None of them asks on a terminal: each needs `--yes`,
//! so that a stray command or a typo'd time never signs many people out on a "y".

use std::time::SystemTime;

use sealed_sessions::registry::{Location, Registry};
use serde_json::json;

use crate::commands::print;
use crate::output::{escape, rfc3339};
use crate::Failure;

/// Whose sessions a bulk revocation ends: one user's or everyone's (`user: None`), all of them
/// or only those signed in before a time.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub user: Option<&'a str>,
    pub signed_in_before: Option<SystemTime>,
}

impl Scope<'_> {
    /// `every session of every user signed in before 2026-12-01T00:00:00Z`, for messages.
    fn describe(&self) -> String {
        let whose = match self.user {
            Some(user) => format!("every session of {}", escape(user)),
            None => "every session of every user".to_owned(),
        };
        match self.signed_in_before {
            Some(t) => format!("{whose} signed in before {}", rfc3339(t)),
            None => whose,
        }
    }
}

/// `revoke --all-users` and `revoke [USER] --signed-in-before TIME`.
pub async fn revoke(
    json: bool,
    db: Location<'_>,
    registry: &dyn Registry,
    scope: Scope<'_>,
    yes: bool,
    now: SystemTime,
) -> Result<(), Failure> {
    if let Some(before) = scope.signed_in_before.filter(|t| *t > now) {
        // Every session was signed in before a time to come: a typo'd year would sign everyone
        // out. Everyone is `--all-users` alone.
        return Err(Failure::input(format!(
            "--signed-in-before {} is in the future: every session was signed in before it. \
             Give a time in the past, or --all-users alone to end every session",
            rfc3339(before)
        )));
    }
    if !yes {
        return Err(Failure::input(format!(
            "this would revoke {}; pass --yes to confirm (not asked, by design)",
            scope.describe()
        )));
    }
    let revoked = match (scope.user, scope.signed_in_before) {
        (Some(user), Some(before)) => registry.revoke_user_signed_in_before(user, before).await,
        (Some(user), None) => registry.revoke_user(user, None).await,
        (None, before) => registry.revoke_all(before).await,
    }
    .map_err(|e| Failure::registry(db, e))?;
    print(
        json,
        json!({
            "user": scope.user,
            "all_users": scope.user.is_none(),
            "signed_in_before": scope.signed_in_before.map(rfc3339),
            "revoked": revoked,
        }),
        || {
            println!(
                "revoked {revoked} session{}: {}",
                if revoked == 1 { "" } else { "s" },
                scope.describe()
            )
        },
    );
    if revoked == 0 {
        return Err(Failure::nothing(format!(
            "no active session matched ({})",
            scope.describe()
        )));
    }
    Ok(())
}

/// `forget-user USER --yes`.
pub async fn forget_user(
    json: bool,
    db: Location<'_>,
    registry: &dyn Registry,
    user: &str,
    yes: bool,
) -> Result<(), Failure> {
    if !yes {
        return Err(Failure::input(format!(
            "this would end every session of {} and delete their rows, with no undo; pass \
             --yes to confirm",
            escape(user)
        )));
    }
    let forgotten = registry
        .forget_user(user)
        .await
        .map_err(|e| Failure::registry(db, e))?;
    print(
        json,
        json!({ "user": user, "forgotten": forgotten }),
        || {
            println!(
                "forgot {}: {forgotten} session row{} deleted (active ones ended on every host)",
                escape(user),
                if forgotten == 1 { "" } else { "s" }
            )
        },
    );
    if forgotten == 0 {
        return Err(Failure::nothing(format!(
            "{} has no session in the registry",
            escape(user)
        )));
    }
    Ok(())
}
