//! What an axum app gets from the handle, as a user writes it: the extractor, `?` on
//! `SessionError` (errors become responses that leak nothing), the user's devices and the
//! sign-out actions scoped to them, and the CSRF token helper. Over real HTTP on 127.0.0.1.
#![cfg(all(feature = "axum", feature = "sqlite"))]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::routing::{get as route, post};
use axum::Router;
use http::StatusCode;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::SessionLayer;
use sealed_sessions::{Key, Session, SessionConfig, SessionConfigBuilder, SessionError, SessionId};
use support::{get, get_with, send};

const NAME: &str = "__Host-session";

async fn login(session: Session, Path(user): Path<String>) -> Result<String, SessionError> {
    session.login(user).await?;
    Ok(session.id().to_string())
}

async fn me(session: Session) -> Result<String, SessionError> {
    session.user().ok_or(SessionError::NotSignedIn)
}

async fn devices(session: Session) -> Result<String, SessionError> {
    let lines: Vec<String> = session
        .devices()
        .await?
        .into_iter()
        .map(|d| {
            let ua = d.info.user_agent.unwrap_or_default();
            format!("{} {} {ua}", d.info.id, d.current)
        })
        .collect();
    Ok(lines.join("\n"))
}

async fn revoke(session: Session, Path(id): Path<String>) -> Result<String, SessionError> {
    let id: SessionId = id.parse().map_err(|_| SessionError::NotActive)?;
    Ok(session.revoke_device(id).await?.to_string())
}

async fn others(session: Session) -> Result<String, SessionError> {
    Ok(session.sign_out_other_devices().await?.to_string())
}

async fn everywhere(session: Session) -> Result<String, SessionError> {
    Ok(session.sign_out_everywhere().await?.to_string())
}

async fn was_revoked(session: Session) -> String {
    session.was_revoked().to_string()
}

async fn csrf(session: Session) -> Result<String, SessionError> {
    session.csrf_token()
}

#[derive(serde::Deserialize)]
struct Check {
    token: String,
}

async fn check(session: Session, Query(q): Query<Check>) -> StatusCode {
    if session.verify_csrf_token(&q.token) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::FORBIDDEN
    }
}

async fn serve(b: SessionConfigBuilder) -> SocketAddr {
    let app = Router::new()
        .route("/login/{user}", route(login))
        .route("/me", route(me))
        .route("/devices", route(devices))
        .route("/revoke/{id}", post(revoke))
        .route("/sign-out-others", post(others))
        .route("/sign-out-everywhere", post(everywhere))
        .route("/csrf", route(csrf))
        .route("/was-revoked", route(was_revoked))
        .route("/check", route(check))
        .layer(SessionLayer::new(b.build().unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn with_registry() -> (tempfile::TempDir, SessionConfigBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(SqliteRegistry::open(dir.path().join("sessions.db")).unwrap());
    (dir, SessionConfig::builder(Key::generate()).registry(reg))
}

/// Signs `user` in with this user agent; returns the cookie pair and the session id.
async fn sign_in(addr: SocketAddr, user: &str, ua: &str) -> (String, String) {
    let r = get_with(addr, &format!("/login/{user}"), &[], &[("user-agent", ua)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (r.cookie_pair(NAME), r.body)
}

async fn post_as(addr: SocketAddr, path: &str, jar: &str) -> support::Reply {
    send(addr, "POST", path, &[jar.as_bytes()], &[], None).await
}

#[tokio::test]
async fn devices_list_this_one_first_and_sign_outs_stay_within_the_user() {
    let (_dir, b) = with_registry();
    let addr = serve(b).await;
    let (a, _a_id) = sign_in(addr, "alice", "Browser-A").await;
    let (b_jar, b_id) = sign_in(addr, "alice", "Browser-B").await;
    let (c, _) = sign_in(addr, "alice", "Browser-C").await;
    let (bob, bob_id) = sign_in(addr, "bob", "Browser-Bob").await;

    let listed = get(addr, "/devices", Some(&b_jar)).await.body;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert_eq!(
        lines[0],
        format!("{b_id} true Browser-B"),
        "this device first"
    );
    assert!(lines[1..].iter().all(|l| l.contains(" false ")), "{listed}");
    assert!(!listed.contains(&bob_id), "only alice's");

    // Alice cannot revoke bob's session, by id or otherwise.
    assert_eq!(
        post_as(addr, &format!("/revoke/{bob_id}"), &a).await.body,
        "false"
    );
    assert_eq!(get(addr, "/me", Some(&bob)).await.body, "bob");

    // A revokes B: B is refused on its next request, with a 401 and nothing more.
    assert_eq!(
        post_as(addr, &format!("/revoke/{b_id}"), &a).await.body,
        "true"
    );
    let r = get(addr, "/me", Some(&b_jar)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    );
    // ...and the page it gets can tell it why; a browser that was not revoked is not told so.
    assert_eq!(get(addr, "/was-revoked", Some(&b_jar)).await.body, "true");
    assert_eq!(get(addr, "/was-revoked", Some(&a)).await.body, "false");
    assert_eq!(get(addr, "/was-revoked", None).await.body, "false");
    let mut forged = b_jar.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(get(addr, "/was-revoked", Some(&forged)).await.body, "false");

    // Sign out the others: C goes, A stays, bob is untouched.
    assert_eq!(post_as(addr, "/sign-out-others", &a).await.body, "1");
    assert_eq!(
        get(addr, "/me", Some(&c)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(addr, "/me", Some(&a)).await.body, "alice");
    assert_eq!(get(addr, "/me", Some(&bob)).await.body, "bob");

    // Everywhere: A too, and A's cookie is removed in that response.
    let r = post_as(addr, "/sign-out-everywhere", &a).await;
    assert_eq!(r.body, "1");
    assert_eq!(r.cookie(NAME).expect("a removal cookie").value(), "");
    assert_eq!(
        get(addr, "/me", Some(&a)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(addr, "/me", Some(&bob)).await.body, "bob");

    // Revoking this very device signs out here too.
    let (d, d_id) = sign_in(addr, "alice", "Browser-D").await;
    let r = post_as(addr, &format!("/revoke/{d_id}"), &d).await;
    assert_eq!(r.body, "true");
    assert_eq!(r.cookie(NAME).expect("a removal cookie").value(), "");
}

#[tokio::test]
async fn errors_become_responses_that_say_no_more_than_their_status() {
    let (_dir, b) = with_registry();
    let addr = serve(b).await;
    let r = get(addr, "/devices", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    );
    let r = post_as(addr, "/sign-out-everywhere", "x=y").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Without a registry there are no devices to list: a server misconfiguration, a bare 500.
    let addr = serve(SessionConfig::builder(Key::generate())).await;
    let (jar, _) = sign_in(addr, "alice", "Browser-A").await;
    let r = get(addr, "/devices", Some(&jar)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    );
}

#[tokio::test]
async fn the_csrf_token_is_bound_to_the_session_and_renewed_at_login() {
    let (_dir, b) = with_registry();
    let addr = serve(b).await;
    // A visitor's login form needs a token before anyone signs in: it makes the session.
    let r = get(addr, "/csrf", None).await;
    let token = r.body.clone();
    assert_eq!(
        token.len(),
        86,
        "32 bytes and their mask, base64url: {token}"
    );
    let jar = r.cookie_pair(NAME);
    let check = |jar: Option<String>, token: String| async move {
        get(addr, &format!("/check?token={token}"), jar.as_deref())
            .await
            .status
    };
    assert_eq!(
        check(Some(jar.clone()), token.clone()).await,
        StatusCode::NO_CONTENT
    );
    let r = get(addr, "/csrf", Some(&jar)).await;
    // Masked afresh each time (BREACH), and every mask verifies.
    assert_ne!(r.body, token, "masked afresh");
    assert!(
        r.set_cookies(NAME).is_empty(),
        "reading it again writes nothing"
    );
    assert_eq!(
        check(Some(jar.clone()), r.body.clone()).await,
        StatusCode::NO_CONTENT
    );
    // Half a token (the length of the stored one) is not a token.
    assert_eq!(
        check(Some(jar.clone()), token[..43].to_owned()).await,
        StatusCode::FORBIDDEN
    );

    // A forged post: no session, or another session, or a wrong or empty token.
    assert_eq!(check(None, token.clone()).await, StatusCode::FORBIDDEN);
    let other = get(addr, "/csrf", None).await.cookie_pair(NAME);
    assert_eq!(
        check(Some(other), token.clone()).await,
        StatusCode::FORBIDDEN
    );
    let mut wrong = token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert_eq!(check(Some(jar.clone()), wrong).await, StatusCode::FORBIDDEN);
    assert_eq!(
        check(Some(jar.clone()), String::new()).await,
        StatusCode::FORBIDDEN
    );

    // Login: the token learnt before no longer works; a new one does.
    let r = get(addr, "/login/alice", Some(&jar)).await;
    let signed_in = r.cookie_pair(NAME);
    assert_eq!(
        check(Some(signed_in.clone()), token.clone()).await,
        StatusCode::FORBIDDEN
    );
    let fresh = get(addr, "/csrf", Some(&signed_in)).await;
    assert_ne!(fresh.body, token);
    let signed_in = fresh.cookie_pair(NAME);
    assert_eq!(
        check(Some(signed_in), fresh.body).await,
        StatusCode::NO_CONTENT
    );
}
