//! Every route of the demo over real HTTP, against the real example binary.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
mod support;

use std::time::{Duration, Instant, SystemTime};

use demo_support::{csrf_in, revoke_all, session_ids, Client, Demo, COOKIE_NAME};
use http::StatusCode;
use sealed_sessions::{Key, KeyRing, Mode, Sealer};

fn sealer(demo: &Demo) -> Sealer {
    let text = std::fs::read_to_string(demo.dir.path().join("session.key")).unwrap();
    Sealer::new(
        KeyRing::new(Key::from_base64(&text).unwrap()),
        Mode::Private,
    )
}

/// The session id sealed in a client's cookie.
fn sealed_id(demo: &Demo, client: &Client) -> String {
    let pair = client.cookie.as_deref().expect("a cookie");
    let value = pair.strip_prefix("demo_session=").unwrap();
    let opened = sealer(demo)
        .open(COOKIE_NAME, value, SystemTime::now())
        .unwrap();
    opened.claims.id().to_string()
}

#[tokio::test]
async fn signed_out_home_has_the_login_form_and_a_csrf_cookie() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let r = a.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    for field in [
        r#"name="username""#,
        r#"name="password""#,
        r#"name="csrf_token""#,
    ] {
        assert!(r.body.contains(field), "{field} missing");
    }
    let line = &r.set_cookies(COOKIE_NAME)[0];
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attr), "{attr} missing in {line}");
    }
    assert!(!line.contains("Secure"), "plain-http demo: {line}");
    assert!(a.me().await.is_none());
}

#[tokio::test]
async fn login_renews_the_id_and_checks_password_and_csrf() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let csrf = a.csrf("/").await;
    let anonymous_id = sealed_id(&demo, &a);

    for (user, password, token, status) in [
        ("alice", "correct-horse", "", StatusCode::FORBIDDEN),
        ("alice", "correct-horse", "forged", StatusCode::FORBIDDEN),
        ("alice", "wrong", csrf.as_str(), StatusCode::UNAUTHORIZED),
        (
            "mallory",
            "correct-horse",
            csrf.as_str(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "bob",
            "correct-horse",
            csrf.as_str(),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let r = a
            .post(
                "/login",
                &[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", token),
                ],
            )
            .await;
        assert_eq!(r.status, status, "{user}/{password}/{token:?}");
        assert!(a.me().await.is_none());
    }
    // No token at all is as bad as a wrong one.
    let r = a
        .post(
            "/login",
            &[("username", "alice"), ("password", "correct-horse")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    a.login("alice", "correct-horse").await;
    let me = a.me().await.unwrap();
    assert_eq!(me["user"], "alice");
    assert_ne!(
        me["session_id"],
        anonymous_id.as_str(),
        "login renews the id"
    );
    assert_eq!(me["session_id"], sealed_id(&demo, &a).as_str());
    let expires = me["expires_at"].as_u64().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires > now && expires <= now + 8 * 3600 + 1, "{expires}");

    let home = a.get("/").await;
    assert!(home.body.contains("Signed in as alice"));
    assert!(home.body.contains(r#"action="/logout""#));
    assert!(home.body.contains(r#"href="/sessions""#));
}

#[tokio::test]
async fn logout_needs_csrf_and_refuses_a_copied_cookie_afterwards() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    a.login("alice", "correct-horse").await;
    let copy = a.cookie.clone();

    let r = a.post("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(a.me().await.is_some(), "still signed in");

    let csrf = a.csrf("/").await;
    let r = a.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");
    assert!(a.cookie.is_none(), "the cookie is removed");

    let mut thief = Client::new(demo.addr, "agent-thief");
    thief.cookie = copy;
    assert!(thief.me().await.is_none(), "a copied cookie is refused");
    assert!(thief.get("/").await.body.contains(r#"name="password""#));
}

#[tokio::test]
async fn devices_page_lists_revokes_one_and_guards_other_users() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "Browser-A/1.0");
    let mut b = Client::new(demo.addr, "Browser-B/2.0");
    let mut bob = Client::new(demo.addr, "Bob-Browser");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    bob.login("bob", "battery-staple").await;

    let mut signed_out = Client::new(demo.addr, "x");
    let r = signed_out.get("/sessions").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");

    let page = a.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    let ids = session_ids(&page.body);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let a_id = a.me().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_id = b.me().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = bob.me().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ids.contains(&a_id) && ids.contains(&b_id));
    for text in ["Browser-A/1.0", "Browser-B/2.0", "127.0.0.1", "This device"] {
        assert!(page.body.contains(text), "{text} missing");
    }
    assert!(page
        .body
        .contains(&format!(r#"data-session-id="{a_id}" class="this-device""#)));
    assert!(!page.body.contains("Bob-Browser"));

    let csrf = csrf_in(&page.body).unwrap();
    // Someone else's session, or junk: 404, nothing changes.
    for id in [bob_id.as_str(), "not-an-id", ""] {
        let r = a
            .post("/sessions/revoke", &[("id", id), ("csrf_token", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id:?}");
    }
    assert!(bob.me().await.is_some(), "bob is untouched");
    let r = a.post("/sessions/revoke", &[("id", &b_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no csrf");
    assert!(b.me().await.is_some());

    let r = a
        .post("/sessions/revoke", &[("id", &b_id), ("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/sessions");
    assert!(b.me().await.is_none(), "revoked on the very next request");
    assert!(a.me().await.is_some());
    let page = a.get("/sessions").await;
    assert_eq!(session_ids(&page.body), [a_id]);
    assert!(page.body.contains("That device is signed out."));
}

#[tokio::test]
async fn revoke_others_and_revoke_all() {
    let demo = Demo::start();
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::new(demo.addr, &format!("agent-{i}")))
        .collect();
    for c in &mut clients {
        c.login("alice", "correct-horse").await;
    }
    let mut bob = Client::new(demo.addr, "bob");
    bob.login("bob", "battery-staple").await;

    let csrf = clients[0].csrf("/sessions").await;
    let r = clients[0].post("/sessions/revoke-others", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = clients[0]
        .post("/sessions/revoke-others", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(clients[0].me().await.is_some());
    assert!(clients[1].me().await.is_none());
    assert!(clients[2].me().await.is_none());
    let page = clients[0].get("/sessions").await;
    assert!(page.body.contains("Signed out 2 other devices."));
    assert_eq!(session_ids(&page.body).len(), 1);

    clients[1].login("alice", "correct-horse").await;
    let csrf = clients[0].csrf("/sessions").await;
    let r = clients[0]
        .post("/sessions/revoke-all", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");
    assert!(clients[0].me().await.is_none());
    assert!(clients[1].me().await.is_none());
    assert!(bob.me().await.is_some(), "another user is untouched");
}

#[tokio::test]
async fn a_tampered_cookie_is_a_signed_out_visitor() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    a.login("alice", "correct-horse").await;
    let pair = a.cookie.clone().unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    a.cookie = Some(format!("{name}={}", String::from_utf8(bytes).unwrap()));
    let r = a.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(r#"name="password""#));
    assert!(a.me().await.is_none());
}

#[tokio::test]
async fn revoke_all_tool_signs_a_user_out_of_a_running_demo() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    let mut bob = Client::new(demo.addr, "bob");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    bob.login("bob", "battery-staple").await;

    let out = revoke_all(&demo.db(), "alice");
    assert_eq!(out.trim(), "revoked 2 sessions of alice");
    let revoked_at = Instant::now();
    // The registry's documented propagation bound is its 20 ms poll interval; allow slack for a
    // loaded machine, and report what it took.
    let deadline = revoked_at + Duration::from_secs(5);
    while a.me().await.is_some() || b.me().await.is_some() {
        assert!(
            Instant::now() < deadline,
            "still signed in 5 s after revoke_all"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("revoke_all took effect after {:?}", revoked_at.elapsed());
    assert!(bob.me().await.is_some());
}

#[tokio::test]
async fn a_restart_keeps_the_key_and_the_sessions() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    a.login("alice", "correct-horse").await;
    let dir = demo.stop();
    let demo = Demo::start_in(dir);
    a.addr = demo.addr;
    assert_eq!(a.me().await.unwrap()["user"], "alice");
}
