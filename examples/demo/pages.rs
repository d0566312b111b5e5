//! The demo's HTML: one layout, the sign-in and home pages, messages and the refusals; no
//! external assets. The devices page is `devices.rs`, the password prompt `sudo.rs`, the
//! change-password page `password_change.rs`.
//!
//! Pages are maud templates: every value spliced into one is escaped unless it is wrapped in
//! `PreEscaped`, which only the stylesheet is.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sealed_sessions::Flash;

use crate::style::STYLE;

/// The page around `body`; `user` is who is signed in, for the navigation.
pub fn layout(title: &str, user: Option<&str>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sealed-sessions demo" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span class="logo" {}
                    strong { "sealed-sessions demo" }
                    @if user.is_some() {
                        nav {
                            a href="/" { "Home" } a href="/sessions" { "Your devices" }
                            a href="/password" { "Password" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

pub fn flashes(list: &[Flash]) -> Markup {
    html! {
        @for f in list {
            div class={ "flash " (f.level) } { (f.message) }
        }
    }
}

/// The hidden field that carries the session's CSRF token in every form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// The sign-in page; `username` is what the visitor typed before, kept after a failed try.
pub fn signed_out(csrf: &str, notes: &[Flash], username: &str) -> String {
    let retry = !username.is_empty();
    let body = html! {
        div class="card" {
            (flashes(notes))
            h1 { "Sign in" }
            p class="sub" {
                "Try " code { "alice" } " / " code { "correct-horse" } " or "
                code { "bob" } " / " code { "battery-staple" } "."
            }
            form method="post" action="/login" id="login-form" {
                (csrf_field(csrf))
                label for="username" { "Username" }
                input type="text" id="username" name="username" autocomplete="username"
                    required value=[retry.then_some(username)] autofocus[!retry];
                label for="password" { "Password" }
                input type="password" id="password" name="password"
                    autocomplete="current-password" required autofocus[retry];
                label class="check" {
                    input type="checkbox" name="remember" value="1";
                    " Remember me on this device"
                }
                div class="row" { button type="submit" id="login" { "Sign in" } }
            }
        }
        div class="card" {
            p class="muted" {
                "Your session lives in a cookie sealed with XAES-256-GCM; the server keeps only a \
                 list of signed-in sessions, so you can see and sign out your devices."
            }
        }
    };
    layout("Sign in", None, body)
}

pub fn signed_in(user: &str, csrf: &str, notes: &[Flash]) -> String {
    let body = html! {
        div class="card" {
            (flashes(notes))
            h1 { "Signed in as " (user) }
            p class="sub" {
                "This page is served from a sealed cookie session checked against the registry \
                 on every request."
            }
            div class="row" {
                a href="/sessions" class="button secondary" id="devices" { "Your devices" }
                a href="/password" class="button secondary" id="password" { "Change password" }
                form method="post" action="/logout" {
                    (csrf_field(csrf))
                    button type="submit" id="logout" { "Sign out" }
                }
            }
        }
    };
    layout("Home", Some(user), body)
}

pub fn message(title: &str, text: &str) -> String {
    let body = html! {
        div class="card" {
            h1 { (title) }
            p class="sub" { (text) }
            div class="row" { a href="/" class="button secondary" { "Back" } }
        }
    };
    layout(title, None, body)
}

pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(message(
            "Request refused",
            "The form's security token is missing or out of date. Go back, reload and try again.",
        )),
    )
        .into_response()
}

pub fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(message(
            "Session not found",
            "There is no active session with that id among yours.",
        )),
    )
        .into_response()
}

pub fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Html(message(
            "Try again",
            "The session registry could not be reached. Nothing was lost; please retry.",
        )),
    )
        .into_response()
}

pub fn too_many_failures(wait: Duration) -> Response {
    // Whole seconds, rounded up: a client retrying after the rounded-down value would be refused.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let minutes = secs.div_ceil(60);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Html(message(
            "Too many failed sign-ins",
            &format!(
                "Sign-ins for this account or from this address are paused. Try again in {minutes} min."
            ),
        )),
    )
        .into_response()
}

pub fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "2")],
        Html(message(
            "Try again",
            "Too many sign-ins at once. Please retry in a moment.",
        )),
    )
        .into_response()
}

pub fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(message("Something went wrong", "Please reload the page.")),
    )
        .into_response()
}
