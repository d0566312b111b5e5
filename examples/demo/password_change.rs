//! The change-password page: the current password, the new one twice, and "Sign out all other
//! devices", ticked by default (ASVS 5.0 7.4.3: after a password change, offer to end the other
//! sessions; ticked, because a password is usually changed when it may be known to someone).
//!
//! The current password is asked for every time, whenever the user signed in: it is the
//! re-authentication this action needs (so there is no separate sudo prompt), it is checked
//! through the same throttle as sign-ins, and once it checks out the session is
//! re-authenticated (new id, new authentication time; ASVS 7.2.4).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use sealed_sessions::{Flash, Session, SessionError};
use serde::Deserialize;

use crate::app::{signed_in_form, AppState, Checked};
use crate::pages::{csrf_field, flashes, layout, message, server_error, unavailable};
use crate::passwords::{self, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use crate::revoked;
use crate::sign_outs::devices;

/// `GET /password`.
pub async fn page(Extension(session): Extension<Session>) -> Response {
    let Some(user) = session.user() else {
        return Redirect::to("/").into_response();
    };
    let notes = session.take_flashes();
    form_page(StatusCode::OK, &session, &user, &notes, true)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangeForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
    /// Present when the box is ticked: a browser sends nothing for an unticked box.
    sign_out_others: Option<String>,
}

/// `POST /password`.
pub async fn change(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(session): Extension<Session>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let user = match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let sign_out_others = form.sign_out_others.is_some();
    let again = |status, problem: &str| {
        let note = Flash {
            level: "error".into(),
            message: problem.into(),
        };
        form_page(status, &session, &user, &[note], sign_out_others)
    };
    // Checked before the current password, so that a typo here costs no try of the throttle's.
    if let Some(problem) = unfit(&form.new_password, &form.confirm_password) {
        return again(StatusCode::UNPROCESSABLE_ENTITY, &problem);
    }
    let (slot, old_hash) = match app
        .check_password(&user, form.current_password, peer.ip())
        .await
    {
        Err(refusal) => return refusal,
        Ok(Checked::Wrong) => {
            return again(StatusCode::UNAUTHORIZED, "Your current password is wrong.")
        }
        Ok(Checked::Right {
            slot: Some(slot),
            phc,
        }) => (slot, phc),
        Ok(Checked::Right { slot: None, .. }) => return server_error(),
    };
    let (new_hash, slot) = passwords::hash(slot, form.new_password).await;
    drop(slot);
    let Some(new_hash) = new_hash else {
        return server_error();
    };
    // The password first, then the other devices. A sign-in racing this one checked its
    // password against either hash: if against the old one, it either registered before the
    // sign-out below (which ends it) or after the swap, and `login` then sees that the hash it
    // checked is no longer the account's and undoes itself. The other order (sign out, then
    // swap) let a sign-in with the old password that registered in between survive.
    if !app.accounts.replace(&user, &old_hash, new_hash) {
        return (
            StatusCode::CONFLICT,
            Html(message(
                "Password not changed",
                "Your password was changed from somewhere else meanwhile. Sign in with the new \
                 one, or try again.",
            )),
        )
            .into_response();
    }
    // The current session is excepted, then renewed below.
    let signed_out = if sign_out_others {
        match app.registry.revoke_user(&user, Some(session.id())).await {
            Ok(n) => Some(n),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(message(
                        "Password changed; other devices not signed out",
                        "Your password is changed, but the other devices could not be signed \
                         out just now. Use \"Sign out all other devices\" on Your devices.",
                    )),
                )
                    .into_response()
            }
        }
    } else {
        None
    };
    match session.reauthenticate().await {
        Ok(()) => {}
        // This session was signed out while the form was checked: the password change stands
        // (its owner knew the current password), and this browser signs in again with it.
        Err(SessionError::NotActive | SessionError::NotSignedIn) => {
            revoked::tell_next_page(&session);
            return Redirect::to("/").into_response();
        }
        Err(_) => return unavailable(),
    }
    let done = match signed_out {
        Some(n) => format!(
            "Your password is changed. Signed out {n} other {}.",
            devices(n)
        ),
        None => "Your password is changed. Your other devices stay signed in.".to_owned(),
    };
    // A message is a nicety: a full session refuses it, and the change stands.
    let _ = session.flash("info", done);
    Redirect::to("/").into_response()
}

/// What is wrong with the new password, if anything. Length only, as ASVS 6.2 asks: no rules
/// about kinds of characters (6.2.5), any character allowed (6.2.7 wants no truncation or
/// change, so nothing is trimmed).
fn unfit(new: &str, confirm: &str) -> Option<String> {
    if new != confirm {
        return Some("The two new passwords differ.".into());
    }
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "The new password is too short: at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    if new.len() > MAX_PASSWORD_BYTES {
        return Some(format!(
            "The new password is too long: at most {MAX_PASSWORD_BYTES} bytes."
        ));
    }
    None
}

fn form_page(
    status: StatusCode,
    session: &Session,
    user: &str,
    notes: &[Flash],
    sign_out_others: bool,
) -> Response {
    let Ok(csrf) = session.csrf_token() else {
        return server_error();
    };
    let body = html! {
        div class="card" {
            (flashes(notes))
            h1 { "Change password" }
            p class="sub" {
                "At least " (MIN_PASSWORD_CHARS) " characters; a few words make a good one."
            }
            form method="post" action="/password" id="password-form" {
                (csrf_field(&csrf))
                // For password managers: whose password this is.
                input type="hidden" name="username" autocomplete="username" value=(user);
                label for="current-password" { "Current password" }
                input type="password" id="current-password" name="current_password"
                    autocomplete="current-password" required autofocus;
                label for="new-password" { "New password" }
                input type="password" id="new-password" name="new_password"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
                label for="confirm-password" { "New password, again" }
                input type="password" id="confirm-password" name="confirm_password"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
                label class="check" {
                    input type="checkbox" name="sign_out_others" value="1"
                        id="sign-out-others" checked[sign_out_others];
                    " Sign out all other devices"
                }
                div class="row" {
                    button type="submit" id="change-password" { "Change password" }
                    a href="/" class="button secondary" { "Cancel" }
                }
            }
        }
    };
    (status, Html(layout("Change password", Some(user), body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_needs_its_twin_and_a_sane_length_and_nothing_else() {
        assert!(unfit("a long passphrase", "a long passphrase").is_none());
        // Counted in characters, not bytes: eight accented letters are long enough.
        assert!(unfit("éééééééé", "éééééééé").is_none());
        assert!(unfit("  spaces  ", "  spaces  ").is_none(), "kept as typed");
        assert!(unfit("a long passphrase", "a long passphrasE").is_some());
        assert!(unfit("short", "short").is_some());
        let long = "x".repeat(MAX_PASSWORD_BYTES);
        assert!(unfit(&long, &long).is_none());
        let longer = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(unfit(&longer, &longer).is_some());
    }
}
