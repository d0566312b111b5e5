//! The devices page: the signed-in user's sessions, this device first, each with a button
//! that signs it out.
//!
//! A table on a wide screen; on a narrow one the stylesheet (`style.rs`) turns each row into a
//! small card, which is why every cell but the browser and the button carries its column's
//! name in `data-label`.

use std::time::SystemTime;

use maud::{html, Markup};
use sealed_sessions::registry::SessionInfo;
use sealed_sessions::{Flash, SessionId};

use crate::browsers;
use crate::pages::{csrf_field, flashes, layout};

/// The one name of the action, on every button that ends a session.
pub const SIGN_OUT: &str = "Sign out";

pub fn page(
    user: &str,
    csrf: &str,
    current: SessionId,
    sessions: &[SessionInfo],
    notes: &[Flash],
    now: SystemTime,
) -> String {
    let this_first = sessions
        .iter()
        .filter(|s| s.id == current)
        .chain(sessions.iter().filter(|s| s.id != current));
    let count = sessions.len();
    let body = html! {
        div class="card" {
            (flashes(notes))
            h1 { "Your devices" }
            p class="sub" {
                (count) " active session" @if count != 1 { "s" } " for " strong { (user) } ". "
                "Signing a device out ends its session on its very next request."
            }
            table id="sessions" {
                thead { tr {
                    th { "Browser" } th { "IP address" } th { "Signed in" } th { "Last seen" }
                    th { "Action" }
                } }
                tbody {
                    @for s in this_first {
                        (row(s, s.id == current, csrf, now))
                    }
                }
            }
            div class="row" {
                form method="post" action="/sessions/revoke-others" {
                    (csrf_field(csrf))
                    button type="submit" class="secondary" id="revoke-others" {
                        (SIGN_OUT) " all other devices"
                    }
                }
                form method="post" action="/sessions/revoke-all" {
                    (csrf_field(csrf))
                    button type="submit" class="danger" id="revoke-all" { (SIGN_OUT) " everywhere" }
                }
            }
        }
    };
    layout("Your devices", Some(user), body)
}

fn row(s: &SessionInfo, this: bool, csrf: &str, now: SystemTime) -> Markup {
    let agent = s.user_agent.as_deref();
    html! {
        tr data-session-id=(s.id) class=[this.then_some("this-device")] {
            td class="agent" {
                span class="browser" title=[agent] { (browsers::name(agent)) }
                @if this { span class="badge" { "This device" } }
            }
            td data-label="IP address" {
                @match s.ip { Some(ip) => (ip), None => "unknown" }
            }
            td data-label="Signed in" title=(httpdate::fmt_http_date(s.created_at)) {
                (ago(s.created_at, now))
            }
            td data-label="Last seen" title=(httpdate::fmt_http_date(s.last_seen_at)) {
                (ago(s.last_seen_at, now))
            }
            td class="action" {
                form method="post" action="/sessions/revoke" {
                    (csrf_field(csrf))
                    input type="hidden" name="id" value=(s.id);
                    button type="submit" class="secondary revoke" { (SIGN_OUT) }
                }
            }
        }
    }
}

/// "3 min ago", or an absolute date for anything older than a day.
fn ago(t: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(t).map_or(0, |d| d.as_secs());
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => httpdate::fmt_http_date(t),
    }
}
