//! The demo's HTML: one layout, three pages and the refusals, no external assets.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use sealed_sessions::registry::SessionInfo;
use sealed_sessions::{Flash, SessionId};
use sha2::{Digest, Sha256};

const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#3056d3; --danger:#c0392b; --bg:#f6f7fb; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:14px 28px; display:flex; align-items:center; gap:10px; }
header .logo { width:26px; height:26px; border-radius:7px; background:linear-gradient(135deg,#3056d3,#7c4dff); }
header strong { font-size:16px; }
header nav { margin-left:auto; display:flex; gap:16px; }
header nav a { color:var(--muted); text-decoration:none; }
main { max-width:860px; margin:36px auto; padding:0 20px; }
.card { background:#fff; border:1px solid var(--line); border-radius:12px; padding:28px; box-shadow:0 1px 2px rgba(16,24,40,.05); }
.card + .card { margin-top:20px; }
h1 { font-size:22px; margin:0 0 6px; }
p.sub { color:var(--muted); margin:0 0 22px; }
label { display:block; font-weight:600; margin:14px 0 6px; }
input[type=text], input[type=password] { width:100%; max-width:360px; padding:9px 12px; border:1px solid #cfd4dc; border-radius:8px; font:inherit; }
.check { font-weight:400; display:flex; gap:8px; align-items:center; }
button { font:inherit; border:0; border-radius:8px; padding:9px 16px; cursor:pointer; background:var(--accent); color:#fff; font-weight:600; }
button.secondary { background:#eef1f6; color:var(--ink); }
button.danger { background:var(--danger); }
.row { display:flex; gap:10px; flex-wrap:wrap; align-items:center; margin-top:18px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:12px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
td.agent { max-width:320px; word-break:break-word; }
.badge { display:inline-block; font-size:12px; font-weight:600; padding:2px 8px; border-radius:999px; background:#e7f6ec; color:#1e7b3c; margin-left:6px; }
.flash { padding:10px 14px; border-radius:8px; margin-bottom:16px; background:#eef4ff; color:#213e8f; }
.flash.error { background:#fdecea; color:#8e2a1f; }
.muted { color:var(--muted); font-size:13px; }
code { background:#f2f4f7; padding:1px 5px; border-radius:4px; }
"#;

/// The Content-Security-Policy for every response. The pages have no scripts and no `style=`
/// attributes; their one inline element is `<style>{STYLE}</style>`, allowed by its hash rather
/// than by `'unsafe-inline'`, so a style or script injected into a page would not apply.
pub fn content_security_policy() -> String {
    let style = base64_simd::STANDARD.encode_to_string(Sha256::digest(STYLE));
    format!(
        "default-src 'self'; style-src 'sha256-{style}'; frame-ancestors 'none'; \
         form-action 'self'; base-uri 'none'"
    )
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, user: Option<&str>, body: &str) -> String {
    let nav = match user {
        Some(_) => r#"<nav><a href="/">Home</a><a href="/sessions">Your devices</a></nav>"#,
        None => "",
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · sealed-sessions demo</title><style>{STYLE}</style></head>
<body><header><span class="logo"></span><strong>sealed-sessions demo</strong>{nav}</header>
<main>{body}</main></body></html>"#,
        title = escape(title),
    )
}

fn flashes(list: &[Flash]) -> String {
    list.iter()
        .map(|f| {
            format!(
                r#"<div class="flash {}">{}</div>"#,
                escape(&f.level),
                escape(&f.message)
            )
        })
        .collect()
}

fn csrf_field(token: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf_token" value="{}">"#,
        escape(token)
    )
}

pub fn signed_out(csrf: &str, notes: &[Flash]) -> String {
    let body = format!(
        r#"<div class="card">{flashes}
<h1>Sign in</h1>
<p class="sub">Try <code>alice</code> / <code>correct-horse</code> or <code>bob</code> / <code>battery-staple</code>.</p>
<form method="post" action="/login" id="login-form">
{csrf}
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<label class="check"><input type="checkbox" name="remember" value="1"> Remember me on this device</label>
<div class="row"><button type="submit" id="login">Sign in</button></div>
</form></div>
<div class="card"><p class="muted">Your session lives in a cookie sealed with XAES-256-GCM; the server keeps
only a list of signed-in sessions, so you can see and sign out your devices.</p></div>"#,
        flashes = flashes(notes),
        csrf = csrf_field(csrf),
    );
    layout("Sign in", None, &body)
}

pub fn signed_in(user: &str, csrf: &str, notes: &[Flash]) -> String {
    let body = format!(
        r#"<div class="card">{flashes}
<h1>Signed in as {user}</h1>
<p class="sub">This page is served from a sealed cookie session checked against the registry on every request.</p>
<div class="row">
<a href="/sessions"><button type="button" class="secondary" id="devices">Your devices</button></a>
<form method="post" action="/logout">{csrf}<button type="submit" id="logout">Sign out</button></form>
</div></div>"#,
        flashes = flashes(notes),
        user = escape(user),
        csrf = csrf_field(csrf),
    );
    layout("Home", Some(user), &body)
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

pub fn devices(
    user: &str,
    csrf: &str,
    current: SessionId,
    sessions: &[SessionInfo],
    notes: &[Flash],
    now: SystemTime,
) -> String {
    let mut rows = String::new();
    for s in sessions {
        let this = s.id == current;
        let _ = write!(
            rows,
            r#"<tr data-session-id="{id}"{class}>
<td class="agent">{agent}{badge}</td><td>{ip}</td>
<td title="{created_full}">{created}</td><td title="{seen_full}">{seen}</td>
<td><form method="post" action="/sessions/revoke">{csrf}<input type="hidden" name="id" value="{id}">
<button type="submit" class="secondary revoke">{label}</button></form></td></tr>"#,
            id = s.id,
            class = if this { r#" class="this-device""# } else { "" },
            agent = escape(s.user_agent.as_deref().unwrap_or("Unknown browser")),
            badge = if this {
                r#"<span class="badge">This device</span>"#
            } else {
                ""
            },
            ip =
                s.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            created_full = httpdate::fmt_http_date(s.created_at),
            created = ago(s.created_at, now),
            seen_full = httpdate::fmt_http_date(s.last_seen_at),
            seen = ago(s.last_seen_at, now),
            csrf = csrf_field(csrf),
            label = if this { "Sign out" } else { "Revoke" },
        );
    }
    let body = format!(
        r#"<div class="card">{flashes}
<h1>Your devices</h1>
<p class="sub">{count} active session{plural} for <strong>{user}</strong>. Revoking one signs that device out on its very next request.</p>
<table id="sessions"><thead><tr><th>Browser</th><th>IP address</th><th>Signed in</th><th>Last seen</th><th></th></tr></thead>
<tbody>{rows}</tbody></table>
<div class="row">
<form method="post" action="/sessions/revoke-others">{csrf}<button type="submit" class="secondary" id="revoke-others">Sign out all other devices</button></form>
<form method="post" action="/sessions/revoke-all">{csrf}<button type="submit" class="danger" id="revoke-all">Sign out everywhere</button></form>
</div></div>"#,
        flashes = flashes(notes),
        count = sessions.len(),
        plural = if sessions.len() == 1 { "" } else { "s" },
        user = escape(user),
        csrf = csrf_field(csrf),
    );
    layout("Your devices", Some(user), &body)
}

pub fn message(title: &str, text: &str) -> String {
    let body = format!(
        r#"<div class="card"><h1>{}</h1><p class="sub">{}</p><div class="row"><a href="/"><button type="button" class="secondary">Back</button></a></div></div>"#,
        escape(title),
        escape(text)
    );
    layout(title, None, &body)
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
