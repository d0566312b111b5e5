//! The devices page's actions: sign out one device, all the others, or everywhere. Each asks
//! for the password first when the sign-in is older than the window (`sudo.rs`); the prompt's
//! form comes back to [`confirm`], which re-authenticates and then does what was asked.
//! Signing out this device only (its own row's button, or "Sign out" on the home page) never
//! asks: ending one's own session is never the harmful part.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sealed_sessions::{Flash, Session, SessionError, SessionId};
use serde::Deserialize;

use crate::app::{signed_in_form, App, AppState, Checked};
use crate::pages::{not_found, unavailable};
use crate::revoked;
use crate::sudo::{self, SignOut};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeForm {
    id: String,
    csrf_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn revoke(
    State(app): AppState,
    Extension(session): Extension<Session>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let user = match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(id) = form.id.parse::<SessionId>() else {
        return not_found();
    };
    if id == session.id() {
        return match session.logout().await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(_) => unavailable(),
        };
    }
    guarded(&app, &session, &user, SignOut::Device(id)).await
}

pub async fn revoke_others(
    State(app): AppState,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => guarded(&app, &session, &user, SignOut::Others).await,
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn revoke_all(
    State(app): AppState,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => guarded(&app, &session, &user, SignOut::Everywhere).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// The password prompt's form: the password and the pending action.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    csrf_token: String,
    password: String,
    action: String,
    id: String,
}

/// `POST /reauthenticate`: checks the password (throttled as sign-ins are), re-authenticates
/// the session and does the pending action. A wrong password shows the prompt again, 401.
pub async fn confirm(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(session): Extension<Session>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let user = match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(pending) = SignOut::from_form(&form.action, &form.id) else {
        return not_found();
    };
    match app.check_password(&user, form.password, peer.ip()).await {
        Err(refusal) => return refusal,
        Ok(Checked::Wrong) => {
            let note = Flash {
                level: "error".into(),
                message: "Wrong password.".into(),
            };
            return sudo::prompt(StatusCode::UNAUTHORIZED, &session, &user, pending, &[note]);
        }
        Ok(Checked::Right { slot, .. }) => drop(slot),
    }
    match session.reauthenticate().await {
        Ok(()) => act(&app, &session, &user, pending).await,
        // Signed out from elsewhere while the password was checked: that stands.
        Err(SessionError::NotActive | SessionError::NotSignedIn) => {
            revoked::tell_next_page(&session);
            Redirect::to("/").into_response()
        }
        Err(_) => unavailable(),
    }
}

/// Does `pending` if the user authenticated within the window, else asks for the password.
async fn guarded(app: &App, session: &Session, user: &str, pending: SignOut) -> Response {
    match sudo::ask_if_needed(session, user, pending) {
        Some(prompt) => prompt,
        None => act(app, session, user, pending).await,
    }
}

/// Does `pending`, now that the user authenticated recently enough.
async fn act(app: &App, session: &Session, user: &str, pending: SignOut) -> Response {
    match pending {
        // Scoped to the signed-in user: someone else's session id is "not found" and untouched.
        SignOut::Device(id) => match app.registry.revoke(user, id).await {
            Ok(true) => {
                // A message is a nicety: a full session refuses it, and the action stands.
                let _ = session.flash("info", "That device is signed out.");
                Redirect::to("/sessions").into_response()
            }
            Ok(false) => not_found(),
            Err(_) => unavailable(),
        },
        SignOut::Others => match app.registry.revoke_user(user, Some(session.id())).await {
            Ok(n) => {
                let _ = session.flash("info", format!("Signed out {n} other {}.", devices(n)));
                Redirect::to("/sessions").into_response()
            }
            Err(_) => unavailable(),
        },
        SignOut::Everywhere => {
            let Ok(n) = app.registry.revoke_user(user, None).await else {
                return unavailable();
            };
            // Already revoked above; this drops the data and removes this browser's cookie.
            if session.logout().await.is_err() {
                return unavailable();
            }
            let _ = session.flash(
                "info",
                format!("Signed out everywhere ({n} {}).", devices(n)),
            );
            Redirect::to("/").into_response()
        }
    }
}

pub fn devices(n: u64) -> &'static str {
    if n == 1 {
        "device"
    } else {
        "devices"
    }
}
