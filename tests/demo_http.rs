//! Every route of the demo over real HTTP, against the real example binary.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
mod support;

use std::time::{Duration, Instant, SystemTime};

use demo_support::{
    csrf_in, header, post_login, revoke_all, session_ids, Client, Demo, COOKIE_NAME,
};
use http::StatusCode;
use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer};
use sha2::{Digest, Sha256};
use support::Reply;

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
    assert!(!r.body.contains(SIGNED_OUT_ELSEWHERE), "not revoked, junk");
    assert!(a.me().await.is_none());
}

/// What a browser whose session was revoked elsewhere is told.
const SIGNED_OUT_ELSEWHERE: &str = "You were signed out from another device.";

#[tokio::test]
async fn a_revoked_browser_is_told_why_once() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    let csrf = a.csrf("/sessions").await;
    let r = a
        .post("/sessions/revoke-others", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    let page = b.get("/").await;
    assert!(page.body.contains(r#"name="password""#));
    assert!(page.body.contains(SIGNED_OUT_ELSEWHERE), "{}", page.body);
    let page = b.get("/").await;
    assert!(!page.body.contains(SIGNED_OUT_ELSEWHERE), "told once");

    // Arriving at the devices page: redirected, and told on the page it lands on.
    b.login("alice", "correct-horse").await;
    revoke_all(demo.db(), "alice");
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = b.get("/sessions").await;
        if r.status != StatusCode::OK {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "still signed in after revoke_all"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");
    assert!(b.get("/").await.body.contains(SIGNED_OUT_ELSEWHERE));

    // A form sent from a page that was open when the session ended: not "refused", told why.
    b.login("alice", "correct-horse").await;
    let csrf = b.csrf("/sessions").await;
    a.login("alice", "correct-horse").await;
    let csrf_a = a.csrf("/sessions").await;
    a.post("/sessions/revoke-others", &[("csrf_token", &csrf_a)])
        .await;
    let r = b
        .post("/sessions/revoke-all", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");
    assert!(a.me().await.is_some(), "the stale form did nothing");
    assert!(b.get("/").await.body.contains(SIGNED_OUT_ELSEWHERE));

    // Signing out here is not being signed out from elsewhere.
    let csrf = a.csrf("/").await;
    a.post("/logout", &[("csrf_token", &csrf)]).await;
    assert!(!a.get("/").await.body.contains(SIGNED_OUT_ELSEWHERE));
}

#[tokio::test]
async fn an_expired_session_is_not_said_to_be_signed_out_elsewhere() {
    let demo = Demo::start();
    let long_ago = SystemTime::now() - Duration::from_secs(3 * 3600);
    let mut claims = Claims::new(long_ago, Duration::from_secs(3600), Duration::from_secs(60));
    claims.set_user("alice", long_ago);
    let value = sealer(&demo).seal(COOKIE_NAME, &claims).unwrap();
    let mut a = Client::new(demo.addr, "agent-a");
    a.cookie = Some(format!("{COOKIE_NAME}={value}"));
    let page = a.get("/").await;
    assert!(page.body.contains(r#"name="password""#));
    assert!(!page.body.contains(SIGNED_OUT_ELSEWHERE), "{}", page.body);
}

#[tokio::test]
async fn a_failed_sign_in_keeps_the_username_and_pages_escape_what_they_show() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let csrf = a.csrf("/").await;
    let r = post_login(&mut a, "alice", "wrong", &csrf).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains(r#"value="alice""#), "{}", r.body);
    assert!(r.body.contains("Wrong username or password."));

    let r = post_login(&mut a, r#"<b>"al&ice"</b>"#, "wrong", &csrf).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body
            .contains(r#"value="&lt;b&gt;&quot;al&amp;ice&quot;&lt;/b&gt;""#),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<b>"));
}

#[tokio::test]
async fn devices_are_named_as_people_name_them_this_one_first() {
    const LINUX_CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    let demo = Demo::start();
    let mut laptop = Client::new(demo.addr, LINUX_CHROME);
    let mut phone = Client::new(demo.addr, IPHONE_SAFARI);
    laptop.login("alice", "correct-horse").await;
    phone.login("alice", "correct-horse").await;
    let laptop_id = laptop.me().await.unwrap()["session_id"].clone();

    // The registry lists the newest first; this device comes first all the same.
    let page = laptop.get("/sessions").await;
    let ids = session_ids(&page.body);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], laptop_id.as_str().unwrap());
    for text in [
        "Chrome on Linux",
        "Safari on iPhone",
        &format!(r#"title="{LINUX_CHROME}""#),
        &format!(r#"title="{IPHONE_SAFARI}""#),
    ] {
        assert!(page.body.contains(text), "{text} missing");
    }
    // One name for the action: each row's button, and the two for several devices.
    assert_eq!(page.body.matches(">Sign out</button>").count(), 2);
    assert!(page.body.contains(">Sign out all other devices</button>"));
    assert!(page.body.contains(">Sign out everywhere</button>"));
    assert!(!page.body.contains("Revoke"), "{}", page.body);
}

/// Whether some `<a>` element of `html` holds a `<button>` (invalid HTML: interactive content
/// inside a link).
fn a_link_holds_a_button(html: &str) -> bool {
    html.split("<a ").skip(1).any(|link| {
        link.split("</a>")
            .next()
            .unwrap_or(link)
            .contains("<button")
    })
}

#[tokio::test]
async fn no_link_holds_a_button() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    a.login("alice", "correct-horse").await;
    let home = a.get("/").await;
    assert!(home.body.contains(r#"href="/sessions""#));
    let refused = a.post("/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let devices = a.get("/sessions").await;
    for (what, page) in [
        ("home", &home),
        ("refusal", &refused),
        ("devices", &devices),
    ] {
        assert!(page.body.contains("<a "), "{what}: no link at all");
        assert!(!a_link_holds_a_button(&page.body), "{what}: {}", page.body);
    }
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

    let out = revoke_all(demo.db(), "alice");
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

fn assert_security_headers(reply: &Reply, what: &str) {
    assert_eq!(header(reply, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(reply, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(reply, "referrer-policy"), "same-origin", "{what}");
    let csp = header(reply, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: {directive} missing in {csp}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let home = a.get("/").await;
    assert_security_headers(&home, "GET /");
    // The pages' only inline content is one <style> element: the policy allows exactly that
    // text by its hash, so an injected style or script would not run.
    let style = home
        .body
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .expect("a <style> element")
        .0;
    let hash = base64_simd::STANDARD.encode_to_string(Sha256::digest(style));
    let csp = header(&home, "content-security-policy");
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let csrf = csrf_in(&home.body).unwrap();
    let r = post_login(&mut a, "alice", "wrong", &csrf).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_security_headers(&r, "failed login");
    let r = post_login(&mut a, "alice", "correct-horse", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_security_headers(&r, "login redirect");
    let r = a.post("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_security_headers(&r, "refused form");
    let r = a.get("/no-such-page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_security_headers(&r, "unknown path");
}

#[tokio::test]
async fn api_me_is_never_stored_by_a_cache() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let r = a.get("/api/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "cache-control"), "no-store", "signed out");
    a.login("alice", "correct-horse").await;
    // Not the first request after the sign-in: a request that sets no cookie.
    a.get("/").await;
    let r = a.get("/api/me").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.cookie(COOKIE_NAME).is_none(),
        "no Set-Cookie to explain it"
    );
    assert_eq!(header(&r, "cache-control"), "no-store", "signed in");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

#[cfg(unix)]
fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The registry holds users' addresses and browsers, the key file forges any session.
#[cfg(unix)]
#[tokio::test]
async fn the_database_and_key_files_are_private_to_their_owner() {
    let demo = Demo::start();
    // A write, so that the -wal has been used, not just opened.
    let mut bob = Client::new(demo.addr, "bob");
    bob.login("bob", "battery-staple").await;
    for suffix in ["", "-wal", "-shm"] {
        let path = with_suffix(&demo.db(), suffix);
        assert_eq!(mode(&path), 0o600, "{}: {:o}", path.display(), mode(&path));
    }
    let key = demo.dir.path().join("session.key");
    assert_eq!(mode(&key), 0o600, "{:o}", mode(&key));
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_keeps_the_mode_its_owner_gave_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let demo = Demo::start_in(dir);
    let mut a = Client::new(demo.addr, "agent-a");
    assert_eq!(a.get("/").await.status, StatusCode::OK);
    for suffix in ["", "-wal"] {
        let path = with_suffix(&demo.db(), suffix);
        assert_eq!(mode(&path), 0o640, "{}: {:o}", path.display(), mode(&path));
    }
}
