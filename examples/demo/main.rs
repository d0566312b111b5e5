//! The sealed-sessions demo: sign in, see your devices, sign them out — with nothing to set up.
//!
//! ```text
//! cargo run --example demo            # then open http://127.0.0.1:3000
//! cargo run --example demo -- --help
//! ```
//!
//! Sessions are sealed cookies (XAES-256-GCM); the embedded SQLite registry lists each user's
//! sessions and revokes them, effective on the very next request. Every form carries a
//! synchronizer CSRF token kept in the session and compared in constant time. Signing other
//! devices out asks for the password again once the sign-in is older than 20 minutes (sudo
//! mode, `sudo.rs`); the password can be changed (`password_change.rs`).

mod app;
mod browsers;
mod clock;
mod devices;
mod gate;
mod ops;
mod pages;
mod password_change;
mod passwords;
mod revoked;
mod setup;
mod sign_outs;
mod style;
mod sudo;
mod throttle;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Extension, Form, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sealed_sessions::registry::Location;
use sealed_sessions::{Flash, KeyRing, Mode, PeerAddr, Session, SessionConfig, SessionLayer};
use serde::Deserialize;

use app::{App, AppState, Checked};
use clock::Clock;
use pages::{forbidden, server_error, unavailable};
use passwords::{Accounts, Hashing};
use revoked::SignedOutElsewhere;
use setup::{Args, KeySource};
use throttle::{Limits, Throttle};

const COOKIE_NAME: &str = "demo_session";
const MODE: Mode = Mode::Private;

/// How long failed sign-ins count together, and how long a pause lasts.
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

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
    // Before the registry and the configuration take their metric handles.
    let metrics = ops::install_recorder()?;
    let registry = setup::open_registry(&args.db)?;
    let clock = Arc::new(Clock::new(args.clock_offset_file.clone()));
    let session_clock = clock.clone();
    let config = SessionConfig::builder(KeyRing::new(key))
        .cookie_name(COOKIE_NAME)
        .mode(MODE)
        // The demo serves plain http on loopback, where a browser would not send a `Secure`
        // cookie back. Anything reachable by others must use https and keep the default.
        .insecure_http_for_development()
        .lifetime(Duration::from_secs(8 * 3600))
        .idle_timeout(Duration::from_secs(30 * 60))
        .registry(registry.clone())
        .reauthentication_window(args.reauthenticate_after)
        .clock(move || session_clock.now())
        .build()?;

    let csp = HeaderValue::try_from(style::content_security_policy())?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions))
        .route("/sessions/revoke", post(sign_outs::revoke))
        .route("/sessions/revoke-others", post(sign_outs::revoke_others))
        .route("/sessions/revoke-all", post(sign_outs::revoke_all))
        .route("/reauthenticate", post(sign_outs::confirm))
        .route(
            "/password",
            get(password_change::page).post(password_change::change),
        )
        .route("/api/me", get(me))
        // Inside the session layer: it reads the request's session.
        .layer(axum::middleware::from_fn(revoked::tell))
        .layer(SessionLayer::new(config))
        // Before the session layer: tells it the client's address, for the devices page.
        .layer(axum::middleware::map_request(peer_addr))
        .with_state(Arc::new(App {
            registry: registry.clone(),
            accounts: Accounts::new(),
            hashing: Hashing::new(),
            throttle: Mutex::new(Throttle::new(Limits {
                pair: args.account_failures,
                address: args.address_failures,
                account: args.account_total_failures,
                window: LOGIN_WINDOW,
            })),
            clock,
        }));

    // The probes and the scrape carry no session: merged outside the session layer. The security
    // headers go on last, around everything: the session layer's own refusals (503), the
    // probes, and the fallback's 404.
    let app = app.merge(ops::routes(registry.clone(), metrics)).layer(
        axum::middleware::map_response_with_state(csp, security_headers),
    );

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
    println!("  registry:  {}", Location::of(&args.db));
    println!("  key:       {key_note}");
    println!(
        "  note:      cookies are not marked Secure because this serves plain http on loopback"
    );
    println!(
        "  sudo:      signing out other devices asks for the password {} min after sign-in",
        args.reauthenticate_after.as_secs_f64() / 60.0
    );
    if let Some(file) = &args.clock_offset_file {
        println!(
            "  clock:     FOR TESTS ONLY: the system clock plus the seconds in {}",
            file.display()
        );
    }
    println!(
        "  revoke:    cargo run --features cli --bin sealed-sessions -- revoke alice --yes --db {}",
        Location::of(&args.db)
    );

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // The last handle: dropping it stops the registry after its queued work.
    drop(registry);
    Ok(())
}

// ---- handlers ----

/// Hands the connection's peer address to the session layer (the crate reads axum's
/// `ConnectInfo` by itself only under its `axum` feature, which the demo does not need).
async fn peer_addr(ConnectInfo(addr): ConnectInfo<SocketAddr>, mut req: Request) -> Request {
    req.extensions_mut().insert(PeerAddr(addr));
    req
}

/// Keeps the pages out of other sites' frames (clickjacking), stops browsers from guessing
/// content types or running anything the pages did not ship, and keeps the pages' addresses
/// from other sites that a page links to.
async fn security_headers(State(csp): State<HeaderValue>, mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin` rather than `no-referrer`: the session layer reads a same-origin `Referer`
    // when a request has no `Origin` (its plain-http warning).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    res
}

async fn home(
    Extension(session): Extension<Session>,
    revoked: Option<Extension<SignedOutElsewhere>>,
) -> Response {
    let Ok(csrf) = session.csrf_token() else {
        return server_error();
    };
    let mut notes = session.take_flashes();
    if revoked.is_some() {
        notes.push(revoked::note());
    }
    let page = match session.user() {
        Some(user) => pages::signed_in(&user, &csrf, &notes),
        None => pages::signed_out(&csrf, &notes, ""),
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

async fn login(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(session): Extension<Session>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !session.verify_csrf_token(&form.csrf_token) {
        return forbidden();
    }
    let wrong = |session: &Session| {
        let Ok(csrf) = session.csrf_token() else {
            return server_error();
        };
        let note = Flash {
            level: "error".into(),
            message: "Wrong username or password.".into(),
        };
        (
            StatusCode::UNAUTHORIZED,
            Html(pages::signed_out(&csrf, &[note], &form.username)),
        )
            .into_response()
    };
    let checked = match app
        .check_password(&form.username, form.password, peer.ip())
        .await
    {
        Err(refusal) => return refusal,
        Ok(Checked::Right { slot, phc }) => {
            drop(slot);
            phc
        }
        Ok(Checked::Wrong) => return wrong(&session),
    };
    // "Keep me signed in": chosen before login, which fixes the session's lifetime (30 days
    // instead of 8 hours, 7 days idle instead of 30 minutes).
    session.set_persistent(form.remember.is_some());
    // New session id (and CSRF token), bound to the user and registered before the cookie is
    // sent. On a registry failure the middleware answers 503 and sends no cookie.
    if session.login(form.username.as_str()).await.is_err() {
        return unavailable();
    }
    // The password was checked against `checked`; if a password change replaced it since, the
    // change's "sign out all other devices" may have run before this session was registered:
    // undo the sign-in (see `password_change.rs`).
    if app.accounts.hash_of(&form.username).as_deref() != Some(checked.as_str()) {
        if session.logout().await.is_err() {
            return unavailable();
        }
        return wrong(&session);
    }
    // A message is a nicety: a full session refuses it, and the action stands.
    let _ = session.flash("info", format!("Welcome, {}.", form.username));
    Redirect::to("/").into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf_token: String,
}

async fn logout(Extension(session): Extension<Session>, Form(form): Form<CsrfForm>) -> Response {
    if !session.verify_csrf_token(&form.csrf_token) {
        return forbidden();
    }
    match session.logout().await {
        Ok(()) => Redirect::to("/").into_response(),
        // The cookie is removed either way; say that copies elsewhere may still work.
        Err(_) => unavailable(),
    }
}

async fn sessions(
    State(app): AppState,
    Extension(session): Extension<Session>,
    revoked: Option<Extension<SignedOutElsewhere>>,
) -> Response {
    let Some(user) = session.user() else {
        if revoked.is_some() {
            revoked::tell_next_page(&session);
        }
        return Redirect::to("/").into_response();
    };
    let Ok(csrf) = session.csrf_token() else {
        return server_error();
    };
    let now = app.clock.now();
    let Ok(list) = app.registry.list_for_user(&user, now).await else {
        return unavailable();
    };
    let notes = session.take_flashes();
    Html(devices::page(
        &user,
        &csrf,
        session.id(),
        &list,
        &notes,
        now,
    ))
    .into_response()
}

/// Who is signed in, as JSON. `no-store`: the answer names the user and the session, and no
/// cache (a shared proxy's, or the browser's own after sign-out) should keep it.
async fn me(Extension(session): Extension<Session>) -> Response {
    let mut res = who(&session);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn who(session: &Session) -> Response {
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
