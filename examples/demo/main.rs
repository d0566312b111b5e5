//! The sealed-sessions demo: sign in, see your devices, sign them out — with nothing to set up.
//!
//! ```text
//! cargo run --example demo            # then open http://127.0.0.1:3000
//! cargo run --example demo -- --help
//! ```
//!
//! Sessions are sealed cookies (XAES-256-GCM); the embedded SQLite registry lists each user's
//! sessions and revokes them, effective on the very next request. Every form carries a
//! synchronizer CSRF token kept in the session and compared in constant time.

mod pages;
mod setup;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::extract::{ConnectInfo, Extension, Form, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sealed_sessions::registry::{Registry, SqliteRegistry};
use sealed_sessions::{Flash, KeyRing, PeerAddr, Session, SessionConfig, SessionId, SessionLayer};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use setup::{Args, KeySource};

/// The demo accounts. Only Argon2id hashes are kept (made with argon2's defaults).
const ACCOUNTS: [(&str, &str); 2] = [
    ("alice", "$argon2id$v=19$m=19456,t=2,p=1$oLvEojZ9v6JT/4qrtN/Yug$tqVz50YwE5uVlFFawC5/qGm57jSsa2WN7/QJzNeesbs"),
    ("bob", "$argon2id$v=19$m=19456,t=2,p=1$qj143PMHh8DaOMGsIjyjcQ$opymVQUrWsY0tCi+a2ciOeTv/lJA+6CXgoB4UGN9Oko"),
];
/// Checked for unknown usernames, so that they take as long as wrong passwords.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$f8+mbB3EOuHVVkywM5ldPA$kzaGHGfkBDJ9OIJro4ZArmg+kNnTIwCOrrQyoBml6hw";

const CSRF_KEY: &str = "csrf";

struct App {
    registry: Arc<SqliteRegistry>,
}

type AppState = State<Arc<App>>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) if problem.is_empty() => {
            println!("{}", setup::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("demo: {problem}\n\n{}", setup::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (key, key_source) = setup::load_key(&args.key_file)?;
    let registry = Arc::new(
        SqliteRegistry::open(&args.db)
            .map_err(|e| format!("session registry {}: {e}", args.db.display()))?,
    );
    let config = SessionConfig::builder(KeyRing::new(key))
        .cookie_name("demo_session")
        // The demo serves plain http on loopback, where a browser would not send a `Secure`
        // cookie back. Anything reachable by others must use https and keep the default.
        .insecure_http_for_development()
        .lifetime(Duration::from_secs(8 * 3600))
        .idle_timeout(Duration::from_secs(30 * 60))
        .registry(registry.clone())
        .build()?;

    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions))
        .route("/sessions/revoke", post(revoke))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/sessions/revoke-all", post(revoke_all))
        .route("/api/me", get(me))
        .layer(SessionLayer::new(config))
        // Outermost: tells the session layer the client's address, for the devices page.
        .layer(axum::middleware::map_request(peer_addr))
        .with_state(Arc::new(App {
            registry: registry.clone(),
        }));

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    let key_note = match key_source {
        KeySource::Environment => "from SESSION_KEY".to_owned(),
        KeySource::File => format!("from {}", args.key_file.display()),
        KeySource::NewFile => format!("new, saved to {}", args.key_file.display()),
    };
    println!("sealed-sessions demo listening on http://{addr}");
    println!("  accounts:  alice / correct-horse    bob / battery-staple");
    println!("  registry:  {}", args.db.display());
    println!("  key:       {key_note}");
    println!(
        "  note:      cookies are not marked Secure because this serves plain http on loopback"
    );
    println!(
        "  revoke:    cargo run --example revoke_all -- --db {} alice",
        args.db.display()
    );

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    registry.stop();
    Ok(())
}

// ---- handlers ----

/// Hands the connection's peer address to the session layer (the crate reads axum's
/// `ConnectInfo` by itself only under its `axum` feature, which the demo does not need).
async fn peer_addr(ConnectInfo(addr): ConnectInfo<SocketAddr>, mut req: Request) -> Request {
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

async fn home(Extension(session): Extension<Session>) -> Response {
    let Ok(csrf) = csrf_token(&session) else {
        return server_error();
    };
    let notes = session.take_flashes();
    let page = match session.user() {
        Some(user) => pages::signed_in(&user, &csrf, &notes),
        None => pages::signed_out(&csrf, &notes),
    };
    Html(page).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
    remember: Option<String>,
}

async fn login(Extension(session): Extension<Session>, Form(form): Form<LoginForm>) -> Response {
    if !csrf_ok(&session, &form.csrf_token) {
        return forbidden();
    }
    if !password_ok(form.username.clone(), form.password).await {
        let Ok(csrf) = csrf_token(&session) else {
            return server_error();
        };
        let note = Flash {
            level: "error".into(),
            message: "Wrong username or password.".into(),
        };
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::signed_out(&csrf, &[note])),
        )
            .into_response();
    }
    // New session id, bound to the user and registered before the cookie is sent. On a registry
    // failure the middleware answers 503 and sends no cookie.
    if session.login(form.username.as_str()).await.is_err() {
        return unavailable();
    }
    session.set_persistent(form.remember.is_some());
    // A fresh CSRF token for the signed-in session.
    if session.insert(CSRF_KEY, &new_token()).is_err() {
        return server_error();
    }
    session.flash("info", format!("Welcome, {}.", form.username));
    Redirect::to("/").into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf_token: String,
}

async fn logout(Extension(session): Extension<Session>, Form(form): Form<CsrfForm>) -> Response {
    if !csrf_ok(&session, &form.csrf_token) {
        return forbidden();
    }
    match session.logout().await {
        Ok(()) => Redirect::to("/").into_response(),
        // The cookie is removed either way; say that copies elsewhere may still work.
        Err(_) => unavailable(),
    }
}

async fn sessions(State(app): AppState, Extension(session): Extension<Session>) -> Response {
    let Some(user) = session.user() else {
        return Redirect::to("/").into_response();
    };
    let Ok(csrf) = csrf_token(&session) else {
        return server_error();
    };
    let now = SystemTime::now();
    let Ok(list) = app.registry.list_for_user(&user, now).await else {
        return unavailable();
    };
    let notes = session.take_flashes();
    Html(pages::devices(
        &user,
        &csrf,
        session.id(),
        &list,
        &notes,
        now,
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RevokeForm {
    id: String,
    csrf_token: String,
}

async fn revoke(
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
    // Scoped to the signed-in user: someone else's session id is "not found" and untouched.
    match app.registry.revoke(&user, id).await {
        Ok(true) => {
            session.flash("info", "That device is signed out.");
            Redirect::to("/sessions").into_response()
        }
        Ok(false) => not_found(),
        Err(_) => unavailable(),
    }
}

async fn revoke_others(
    State(app): AppState,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let user = match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    match app.registry.revoke_user(&user, Some(session.id())).await {
        Ok(n) => {
            session.flash("info", format!("Signed out {n} other {}.", devices(n)));
            Redirect::to("/sessions").into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn revoke_all(
    State(app): AppState,
    Extension(session): Extension<Session>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let user = match signed_in_form(&session, &form.csrf_token) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(n) = app.registry.revoke_user(&user, None).await else {
        return unavailable();
    };
    // Already revoked above; this drops the data and removes this browser's cookie.
    if session.logout().await.is_err() {
        return unavailable();
    }
    session.flash(
        "info",
        format!("Signed out everywhere ({n} {}).", devices(n)),
    );
    Redirect::to("/").into_response()
}

async fn me(Extension(session): Extension<Session>) -> Response {
    match session.user() {
        Some(user) => {
            let expires_at = session
                .expires_at()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Json(serde_json::json!({
                "user": user,
                "session_id": session.id().to_string(),
                "expires_at": expires_at,
            }))
            .into_response()
        }
        None => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "not signed in" })),
        )
            .into_response(),
    }
}

// ---- helpers ----

fn devices(n: u64) -> &'static str {
    if n == 1 {
        "device"
    } else {
        "devices"
    }
}

/// 32 random bytes from the OS, as unpadded base64url.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator works");
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// The session's CSRF token, made on first use (synchronizer-token pattern).
fn csrf_token(session: &Session) -> Result<String, sealed_sessions::SessionError> {
    if let Some(token) = session.get::<String>(CSRF_KEY)? {
        return Ok(token);
    }
    let token = new_token();
    session.insert(CSRF_KEY, &token)?;
    Ok(token)
}

/// Why a form post that needs a signed-in user is refused.
enum Refusal {
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
fn signed_in_form(session: &Session, submitted: &str) -> Result<String, Refusal> {
    if !csrf_ok(session, submitted) {
        return Err(Refusal::BadToken);
    }
    session.user().ok_or(Refusal::SignedOut)
}

/// Whether the submitted token is the session's, compared in constant time.
fn csrf_ok(session: &Session, submitted: &str) -> bool {
    match session.get::<String>(CSRF_KEY) {
        Ok(Some(expected)) => {
            !submitted.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
        }
        _ => false,
    }
}

/// Checks the password against the account's Argon2id hash, off the async runtime. Unknown users
/// are checked against a dummy hash so that both failures take the same time.
async fn password_ok(username: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let (known, phc) = match ACCOUNTS.iter().find(|(name, _)| *name == username) {
            Some((_, phc)) => (true, *phc),
            None => (false, DUMMY_HASH),
        };
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(pages::message(
            "Request refused",
            "The form's security token is missing or out of date. Go back, reload and try again.",
        )),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::message(
            "Session not found",
            "There is no active session with that id among yours.",
        )),
    )
        .into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        Html(pages::message(
            "Try again",
            "The session registry could not be reached. Nothing was lost; please retry.",
        )),
    )
        .into_response()
}

fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(pages::message(
            "Something went wrong",
            "Please reload the page.",
        )),
    )
        .into_response()
}
