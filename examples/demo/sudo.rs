//! Sudo mode (ASVS 5.0 7.5.1, 7.5.3): the devices page's sign-outs ask for the password again
//! when the sign-in, or the last re-authentication, is older than the window
//! (`--reauthenticate-after`, 20 minutes by default, as Phoenix's `phx.gen.auth`).
//!
//! A sign-out posted past the window is answered with a prompt rather than done: a 403 (with
//! `x-reauthentication-required: 1`, as the crate's axum extractor answers
//! `SessionError::ReauthenticationRequired`) whose form carries the pending action in hidden
//! fields. The prompt posts to `/reauthenticate` (`sign_outs::confirm`), which checks the
//! password through the sign-in throttle, calls `Session::reauthenticate` (new session id, new
//! authentication time) and then does the action. The pending action travels in the form, not
//! in the session: nothing is left behind when the user walks away, and the prompt's CSRF token
//! covers it as any form's does.
//!
//! Changing the password needs no prompt: its form asks for the current password every time
//! (`password_change.rs`).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use sealed_sessions::{Flash, Session, SessionError, SessionId};

use crate::pages::{csrf_field, flashes, layout};

/// The header that marks the prompt, for scripts: the crate's axum extractor sets the same.
pub const REAUTHENTICATION_REQUIRED: &str = "x-reauthentication-required";

/// A sign-out of other devices: what a button asks for, and what the prompt carries while it
/// waits for the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOut {
    /// "Sign out" on another device's row.
    Device(SessionId),
    /// "Sign out all other devices".
    Others,
    /// "Sign out everywhere".
    Everywhere,
}

impl SignOut {
    /// The action as the prompt's hidden fields carry it; `None` for anything else.
    pub fn from_form(action: &str, id: &str) -> Option<SignOut> {
        match action {
            "sign-out-device" => id.parse().ok().map(SignOut::Device),
            "sign-out-others" => Some(SignOut::Others),
            "sign-out-everywhere" => Some(SignOut::Everywhere),
            _ => None,
        }
    }

    fn action(self) -> &'static str {
        match self {
            SignOut::Device(_) => "sign-out-device",
            SignOut::Others => "sign-out-others",
            SignOut::Everywhere => "sign-out-everywhere",
        }
    }

    /// What the user asked for, to finish "To ...".
    fn described(self) -> &'static str {
        match self {
            SignOut::Device(_) => "sign out that device",
            SignOut::Others => "sign out all your other devices",
            SignOut::Everywhere => "sign out everywhere",
        }
    }
}

/// `None` if the user authenticated within the window and `pending` may go ahead; else the
/// answer: the password prompt (or, should the session have no user, the sign-in page).
pub fn ask_if_needed(session: &Session, user: &str, pending: SignOut) -> Option<Response> {
    match session.require_recent_authentication() {
        Ok(()) => None,
        Err(SessionError::ReauthenticationRequired { .. }) => {
            Some(prompt(StatusCode::FORBIDDEN, session, user, pending, &[]))
        }
        Err(_) => Some(axum::response::Redirect::to("/").into_response()),
    }
}

/// The prompt for `pending`, answered with `status`; `notes` say why it is shown again.
pub fn prompt(
    status: StatusCode,
    session: &Session,
    user: &str,
    pending: SignOut,
    notes: &[Flash],
) -> Response {
    let Ok(csrf) = session.csrf_token() else {
        return crate::pages::server_error();
    };
    let since = session.since_authentication().unwrap_or_default();
    let id = match pending {
        SignOut::Device(id) => Some(id.to_string()),
        _ => None,
    };
    let body = html! {
        div class="card" {
            (flashes(notes))
            h1 { "Confirm it's you" }
            p class="sub" {
                "You signed in " (ago(since)) ". To " (pending.described())
                ", enter your password again."
            }
            form method="post" action="/reauthenticate" id="reauth-form" {
                (csrf_field(&csrf))
                input type="hidden" name="action" value=(pending.action());
                @if let Some(id) = &id { input type="hidden" name="id" value=(id); }
                // For password managers: whose password this is.
                input type="hidden" name="username" autocomplete="username" value=(user);
                label for="reauth-password" { "Password" }
                input type="password" id="reauth-password" name="password"
                    autocomplete="current-password" required autofocus;
                div class="row" {
                    button type="submit" id="reauth" { "Confirm" }
                    a href="/sessions" class="button secondary" id="reauth-cancel" { "Cancel" }
                }
            }
        }
    };
    let mut res = (status, Html(layout("Confirm it's you", Some(user), body))).into_response();
    res.headers_mut().insert(
        HeaderName::from_static(REAUTHENTICATION_REQUIRED),
        HeaderValue::from_static("1"),
    );
    res
}

/// "25 min ago", "3 h ago".
fn ago(since: Duration) -> String {
    let minutes = since.as_secs() / 60;
    match minutes {
        0 => "moments ago".into(),
        1..=119 => format!("{minutes} min ago"),
        _ => format!("{} h ago", minutes / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_actions_round_trip_through_the_form_and_nothing_else_parses() {
        let id = SessionId::generate();
        for pending in [SignOut::Device(id), SignOut::Others, SignOut::Everywhere] {
            let field = match pending {
                SignOut::Device(id) => id.to_string(),
                _ => String::new(),
            };
            assert_eq!(SignOut::from_form(pending.action(), &field), Some(pending));
        }
        for (action, id) in [
            ("sign-out-device", ""),
            ("sign-out-device", "not-an-id"),
            ("change-password", ""),
            ("", ""),
        ] {
            assert_eq!(SignOut::from_form(action, id), None, "{action:?} {id:?}");
        }
    }
}
