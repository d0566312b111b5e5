//! The session middleware with a registry: login, logout, revocation and registry failures,
//! over real HTTP on 127.0.0.1.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use sealed_sessions::registry::{
    BoxFuture, NewSession, Registry, RegistryError, SessionInfo, SqliteRegistry,
};
use sealed_sessions::{
    Key, KeyRing, RegistryErrorPolicy, Session, SessionConfig, SessionConfigBuilder, SessionId,
    SessionLayer,
};
use support::{get, get_with, serve, serve_fn};

const NAME: &str = "__Host-session";

fn builder(registry: Arc<dyn Registry>) -> SessionConfigBuilder {
    SessionConfig::builder(KeyRing::new(Key::generate())).registry(registry)
}

async fn server(b: SessionConfigBuilder) -> std::net::SocketAddr {
    serve(SessionLayer::new(b.build().unwrap())).await
}

fn sqlite() -> (tempfile::TempDir, Arc<SqliteRegistry>) {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::open(dir.path().join("sessions.db")).unwrap();
    (dir, Arc::new(reg))
}

#[tokio::test]
async fn login_registers_and_logout_revokes_so_a_copied_cookie_is_refused() {
    let (_dir, reg) = sqlite();
    let addr = server(builder(reg.clone())).await;
    let r = get_with(
        addr,
        "/login/alice",
        &[],
        &[("user-agent", "TestBrowser/1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let id: SessionId = r.body.parse().unwrap();
    let jar = r.cookie_pair(NAME);

    let listed = reg.list_for_user("alice", SystemTime::now()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].user_agent.as_deref(), Some("TestBrowser/1"));
    assert_eq!(listed[0].ip, Some("127.0.0.1".parse().unwrap()));

    let copy = jar.clone();
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "alice");
    let r = get(addr, "/logout", Some(&jar)).await;
    assert_eq!(r.body, "bye");
    assert_eq!(r.cookie(NAME).unwrap().value(), "", "removal cookie");
    // The copy still opens (it is sealed correctly) but the registry refuses it.
    assert_eq!(get(addr, "/user", Some(&copy)).await.body, "anonymous");
    assert!(reg
        .list_for_user("alice", SystemTime::now())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sign_out_everywhere_refuses_every_cookie_of_the_user() {
    let (_dir, reg) = sqlite();
    let addr = server(builder(reg.clone())).await;
    let a = get(addr, "/login/bob", None).await.cookie_pair(NAME);
    let b = get(addr, "/login/bob", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/user", Some(&a)).await.body, "bob");
    assert_eq!(get(addr, "/user", Some(&b)).await.body, "bob");
    assert_eq!(reg.revoke_user("bob", None).await.unwrap(), 2);
    assert_eq!(get(addr, "/user", Some(&a)).await.body, "anonymous");
    assert_eq!(get(addr, "/user", Some(&b)).await.body, "anonymous");
}

#[tokio::test]
async fn renewal_registers_the_new_id_and_revokes_the_old_one() {
    let (_dir, reg) = sqlite();
    let addr = server(builder(reg.clone())).await;
    let old = get(addr, "/login/carol", None).await.cookie_pair(NAME);
    let r = get(addr, "/renew", Some(&old)).await;
    let new = r.cookie_pair(NAME);
    assert_eq!(get(addr, "/user", Some(&new)).await.body, "carol");
    assert_eq!(get(addr, "/user", Some(&old)).await.body, "anonymous");
    let listed = reg.list_for_user("carol", SystemTime::now()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id.to_string(), r.body);
}

/// An in-memory registry that can be told to fail.
#[derive(Default)]
struct Flaky {
    sessions: Mutex<HashMap<SessionId, String>>,
    fail_validate: AtomicBool,
    /// Validation fails for these ids only.
    fail_ids: Mutex<Vec<SessionId>>,
    fail_register: AtomicBool,
    calls: AtomicUsize,
}

impl Registry for Flaky {
    fn register(&self, s: NewSession) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = self.fail_register.load(Ordering::SeqCst);
        if !fail {
            self.sessions.lock().unwrap().insert(s.id, s.user_id);
        }
        Box::pin(async move {
            if fail {
                Err(RegistryError::Busy)
            } else {
                Ok(())
            }
        })
    }

    fn rotate<'a>(
        &'a self,
        user: &'a str,
        old: SessionId,
        new: NewSession,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = self.fail_register.load(Ordering::SeqCst);
        let mut map = self.sessions.lock().unwrap();
        let active = map.get(&old).map(String::as_str) == Some(user);
        if !fail && active {
            map.remove(&old);
            map.insert(new.id, new.user_id);
        }
        Box::pin(async move {
            if fail {
                Err(RegistryError::Busy)
            } else {
                Ok(active)
            }
        })
    }

    fn validate<'a>(
        &'a self,
        id: SessionId,
        user: &'a str,
        _now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = if self.fail_validate.load(Ordering::SeqCst)
            || self.fail_ids.lock().unwrap().contains(&id)
        {
            Err(RegistryError::Busy)
        } else {
            Ok(self.sessions.lock().unwrap().get(&id).map(String::as_str) == Some(user))
        };
        Box::pin(async move { answer })
    }

    fn list_for_user<'a>(
        &'a self,
        _user: &'a str,
        _now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, RegistryError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn revoke<'a>(
        &'a self,
        user: &'a str,
        id: SessionId,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut map = self.sessions.lock().unwrap();
        let hit = map.get(&id).map(String::as_str) == Some(user);
        if hit {
            map.remove(&id);
        }
        Box::pin(async move { Ok(hit) })
    }

    fn revoke_id(&self, id: SessionId) -> BoxFuture<'_, Result<bool, RegistryError>> {
        let hit = self.sessions.lock().unwrap().remove(&id).is_some();
        Box::pin(async move { Ok(hit) })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<SessionId>,
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        let mut map = self.sessions.lock().unwrap();
        let before = map.len();
        map.retain(|id, u| u != user || Some(*id) == except);
        let n = (before - map.len()) as u64;
        Box::pin(async move { Ok(n) })
    }

    fn touch(&self, _id: SessionId, _now: SystemTime) {}

    fn delete_expired(&self, _now: SystemTime) -> BoxFuture<'_, Result<u64, RegistryError>> {
        Box::pin(async { Ok(0) })
    }
}

#[tokio::test]
async fn registry_down_answers_503_and_keeps_the_cookie() {
    let reg = Arc::new(Flaky::default());
    let addr = server(builder(reg.clone())).await;
    let jar = get(addr, "/login/dave", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "dave");

    reg.fail_validate.store(true, Ordering::SeqCst);
    let r = get(addr, "/set/a/1", Some(&jar)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[RETRY_AFTER], "5");
    assert!(r.set_cookies(NAME).is_empty(), "the cookie is kept");

    // Back up: the same cookie still works, nothing was lost.
    reg.fail_validate.store(false, Ordering::SeqCst);
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "dave");
}

#[tokio::test]
async fn signed_out_policy_serves_an_anonymous_session_when_the_registry_is_down() {
    let reg = Arc::new(Flaky::default());
    let b = builder(reg.clone()).on_registry_error(RegistryErrorPolicy::SignedOut);
    let addr = server(b).await;
    let jar = get(addr, "/login/erin", None).await.cookie_pair(NAME);
    reg.fail_validate.store(true, Ordering::SeqCst);
    let r = get(addr, "/user", Some(&jar)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));
    assert!(r.set_cookies(NAME).is_empty());
}

/// [`support::routes`], and `/csrf`: the session's CSRF token, as a page with a form asks.
async fn routes_with_csrf(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/csrf" {
        return support::routes(req).await;
    }
    let session = req.extensions().get::<Session>().cloned().unwrap();
    let body = match session.csrf_token() {
        Ok(_) => "token".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Under `SignedOut`, a request during an outage is served signed out, but what its handler
/// writes into that stand-in session must not replace the user's cookie: a page with a form
/// (`csrf_token()` stores a token), an insert, a flash, or a logout of the stand-in would
/// otherwise sign the user out for good (issue 21). Signing a user in still sets a cookie.
#[tokio::test]
async fn signed_out_policy_never_replaces_the_users_cookie_during_an_outage() {
    let reg = Arc::new(Flaky::default());
    let b = builder(reg.clone()).on_registry_error(RegistryErrorPolicy::SignedOut);
    let addr = serve_fn(SessionLayer::new(b.build().unwrap()), routes_with_csrf).await;
    let jar = get(addr, "/login/erin", None).await.cookie_pair(NAME);
    reg.fail_validate.store(true, Ordering::SeqCst);
    for (path, body) in [
        ("/csrf", "token"),
        ("/set/a/1", "ok"),
        ("/flash/hi", "ok"),
        ("/logout", "bye"),
    ] {
        let r = get(addr, path, Some(&jar)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, body),
            "{path}"
        );
        assert!(
            r.set_cookies(NAME).is_empty(),
            "{path}: the signed-in cookie is kept"
        );
    }
    // A sign-in is a new session of its own: its cookie goes out.
    let r = get(addr, "/login/frank", Some(&jar)).await;
    let frank = r.cookie_pair(NAME);
    reg.fail_validate.store(false, Ordering::SeqCst);
    assert_eq!(get(addr, "/user", Some(&jar)).await.body, "erin");
    assert_eq!(get(addr, "/user", Some(&frank)).await.body, "frank");
}

#[tokio::test]
async fn a_refused_stale_cookie_is_not_removed_when_the_registry_fails_on_the_next() {
    let reg = Arc::new(Flaky::default());
    let b = builder(reg.clone()).on_registry_error(RegistryErrorPolicy::SignedOut);
    let addr = server(b).await;
    let stale = get(addr, "/login/erin", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/logout", Some(&stale)).await.body, "bye");
    let r = get(addr, "/login/erin", None).await;
    let current = r.cookie_pair(NAME);
    reg.fail_ids.lock().unwrap().push(r.body.parse().unwrap());
    let r = get_with(addr, "/user", &[stale.as_bytes(), current.as_bytes()], &[]).await;
    assert_eq!(r.body, "anonymous");
    assert!(
        r.set_cookies(NAME).is_empty(),
        "the current cookie is kept while the registry cannot answer for it"
    );
    // Without the failure, the stale one alone is refused and removed.
    let r = get(addr, "/user", Some(&stale)).await;
    assert_eq!(
        r.cookie(NAME).map(|c| c.value().to_owned()),
        Some(String::new())
    );
}

#[tokio::test]
async fn failed_registration_at_login_is_a_503_without_a_cookie() {
    let reg = Arc::new(Flaky::default());
    let addr = server(builder(reg.clone())).await;
    let jar = get(addr, "/set/cart/apple", None).await.cookie_pair(NAME);
    reg.fail_register.store(true, Ordering::SeqCst);
    let r = get(addr, "/login/frank", Some(&jar)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.get(RETRY_AFTER).is_some());
    assert!(
        r.set_cookies(NAME).is_empty(),
        "no cookie the registry does not know"
    );
    assert!(
        !r.body.contains("login failed"),
        "the handler's body is replaced"
    );
    // The anonymous session the browser holds is intact.
    assert_eq!(get(addr, "/get/cart", Some(&jar)).await.body, "apple");
}

#[tokio::test]
async fn anonymous_sessions_never_touch_the_registry() {
    let reg = Arc::new(Flaky::default());
    reg.fail_validate.store(true, Ordering::SeqCst);
    let addr = server(builder(reg.clone())).await;
    let jar = get(addr, "/set/a/1", None).await.cookie_pair(NAME);
    let r = get(addr, "/get/a", Some(&jar)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "1"));
    assert_eq!(reg.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_revoked_duplicate_does_not_hide_a_valid_cookie() {
    let reg = Arc::new(Flaky::default());
    let addr = server(builder(reg.clone())).await;
    let revoked = get(addr, "/login/gina", None).await.cookie_pair(NAME);
    let valid = get(addr, "/login/gina", None).await.cookie_pair(NAME);
    assert!(get(addr, "/logout", Some(&revoked))
        .await
        .status
        .is_success());
    let both = format!("{revoked}; {valid}");
    assert_eq!(get(addr, "/user", Some(&both)).await.body, "gina");
}

#[tokio::test]
async fn duplicates_are_settled_in_order_from_the_cache_and_from_the_table() {
    let (dir, reg) = sqlite();
    let key = Key::generate();
    let config = |reg: Arc<dyn Registry>| {
        SessionConfig::builder(KeyRing::new(key.clone()))
            .registry(reg)
            .build()
            .unwrap()
    };
    let warm = serve(SessionLayer::new(config(reg.clone()))).await;
    let revoked = get(warm, "/login/jo", None).await.cookie_pair(NAME);
    let r = get(warm, "/login/jo", None).await;
    let valid = r.cookie_pair(NAME);
    let r = get(warm, "/set/k/kept", Some(&valid)).await;
    let valid = if r.set_cookies(NAME).is_empty() {
        valid
    } else {
        r.cookie_pair(NAME)
    };
    assert_eq!(get(warm, "/logout", Some(&revoked)).await.body, "bye");
    let both = format!("{revoked}; {valid}");
    let reversed = format!("{valid}; {revoked}");

    // A server whose registry already knows both answers (its cache).
    for cookies in [&both, &reversed] {
        assert_eq!(get(warm, "/user", Some(cookies)).await.body, "jo");
        assert_eq!(get(warm, "/get/k", Some(cookies)).await.body, "kept");
    }

    // Another process on the same database, whose cache is cold: both cookies wait for a
    // table read, in order; the revoked one must not win and the valid one's data must read.
    let cold = Arc::new(SqliteRegistry::open(dir.path().join("sessions.db")).unwrap());
    let cold = serve(SessionLayer::new(config(cold))).await;
    assert_eq!(get(cold, "/get/k", Some(&both)).await.body, "kept");
    assert_eq!(get(cold, "/user", Some(&both)).await.body, "jo");
    // Only the revoked one: signed out.
    assert_eq!(get(cold, "/user", Some(&revoked)).await.body, "anonymous");
}

#[tokio::test]
async fn revocation_takes_effect_with_and_without_the_cache_of_opened_values() {
    for entries in [2048, 0] {
        let (_dir, reg) = sqlite();
        let addr = server(builder(reg.clone()).opened_cookie_cache(entries)).await;
        let jar = get(addr, "/login/kim", None).await.cookie_pair(NAME);
        // Signed in from an anonymous session: the value the login sets is remembered as
        // opened when it is sealed (this visitor returns cookies), not first opened.
        let anonymous = get(addr, "/set/a/1", None).await.cookie_pair(NAME);
        let returning = get(addr, "/login/kim", Some(&anonymous))
            .await
            .cookie_pair(NAME);
        for _ in 0..3 {
            assert_eq!(get(addr, "/user", Some(&jar)).await.body, "kim");
            assert_eq!(get(addr, "/user", Some(&returning)).await.body, "kim");
        }
        reg.revoke_user("kim", None).await.unwrap();
        for jar in [&jar, &returning] {
            assert_eq!(
                get(addr, "/user", Some(jar)).await.body,
                "anonymous",
                "cache {entries}"
            );
        }
    }
}

#[tokio::test]
async fn forwarded_for_is_recorded_only_from_trusted_proxies() {
    let (_dir, reg) = sqlite();
    let loopback = "127.0.0.1".parse().unwrap();
    let trusting = server(builder(reg.clone()).trust_forwarded_for([loopback])).await;
    let xff = [("x-forwarded-for", "198.51.100.7, 127.0.0.1")];
    assert!(get_with(trusting, "/login/hank", &[], &xff)
        .await
        .status
        .is_success());
    let listed = reg.list_for_user("hank", SystemTime::now()).await.unwrap();
    assert_eq!(listed[0].ip, Some("198.51.100.7".parse().unwrap()));

    // By default the header is ignored: the peer address is recorded.
    let default = server(builder(reg.clone())).await;
    assert!(get_with(default, "/login/ivy", &[], &xff)
        .await
        .status
        .is_success());
    let listed = reg.list_for_user("ivy", SystemTime::now()).await.unwrap();
    assert_eq!(listed[0].ip, Some(loopback));
}

/// A registry that counts the validations that had to read the table.
struct CountingReads {
    inner: Arc<SqliteRegistry>,
    reads: AtomicUsize,
}

impl Registry for CountingReads {
    fn register(&self, s: NewSession) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.inner.register(s)
    }
    fn rotate<'a>(
        &'a self,
        user: &'a str,
        old: SessionId,
        new: NewSession,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        self.inner.rotate(user, old, new)
    }
    fn validate_cached(&self, id: SessionId, user: &str, now: SystemTime) -> Option<bool> {
        self.inner.validate_cached(id, user, now)
    }
    fn validate<'a>(
        &'a self,
        id: SessionId,
        user: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        if self.inner.validate_cached(id, user, now).is_none() {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.validate(id, user, now)
    }
    fn list_for_user<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, RegistryError>> {
        self.inner.list_for_user(user, now)
    }
    fn revoke<'a>(
        &'a self,
        user: &'a str,
        id: SessionId,
    ) -> BoxFuture<'a, Result<bool, RegistryError>> {
        self.inner.revoke(user, id)
    }
    fn revoke_id(&self, id: SessionId) -> BoxFuture<'_, Result<bool, RegistryError>> {
        self.inner.revoke_id(id)
    }
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<SessionId>,
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        self.inner.revoke_user(user, except)
    }
    fn touch(&self, id: SessionId, now: SystemTime) {
        self.inner.touch(id, now)
    }
    fn delete_expired(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, RegistryError>> {
        self.inner.delete_expired(now)
    }
}

#[tokio::test]
async fn many_copies_of_a_revoked_cookie_cost_one_table_read_and_are_removed() {
    const COPIES: usize = 1000;
    let (_dir, inner) = sqlite();
    let reg = Arc::new(CountingReads {
        inner: inner.clone(),
        reads: AtomicUsize::new(0),
    });
    let addr = server(builder(reg.clone())).await;
    let jar = get(addr, "/login/mallory", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/logout", Some(&jar)).await.body, "bye");

    // One request, one header, a thousand copies of the revoked cookie.
    let header = vec![jar.as_str(); COPIES].join("; ");
    let before = reg.reads.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    let r = get_with(addr, "/user", &[header.as_bytes()], &[]).await;
    let took = started.elapsed();
    let reads = reg.reads.load(Ordering::SeqCst) - before;
    println!(
        "{COPIES} copies of a revoked cookie ({} KB): {reads} table reads, {took:?}",
        header.len() / 1024
    );
    assert_eq!(r.body, "anonymous");
    assert!(reads <= 1, "{reads} table reads");
    // Cut short by the cap on cookies looked at: a valid cookie may hide behind the copies, and
    // a removal would delete it too.
    assert!(r.set_cookies(NAME).is_empty());

    // The refusal is remembered: the browser that did not drop it costs no read, and is told
    // to drop it.
    let r = get(addr, "/user", Some(&jar)).await;
    assert_eq!(r.body, "anonymous");
    assert_eq!(reg.reads.load(Ordering::SeqCst) - before, reads);
    assert_eq!(
        r.cookie(NAME).map(|c| c.value().to_owned()),
        Some(String::new())
    );

    // Distinct values beyond the first eight are not even opened: a valid cookie after eight
    // junk ones is ignored, and nothing is removed (the removal would remove it too).
    let good = get(addr, "/login/mallory", None).await.cookie_pair(NAME);
    let junk: Vec<String> = (0..8).map(|n| format!("{NAME}=junk{n}")).collect();
    let mut cookies: Vec<&[u8]> = junk.iter().map(|j| j.as_bytes()).collect();
    cookies.push(good.as_bytes());
    let r = get_with(addr, "/user", &cookies, &[]).await;
    assert_eq!(r.body, "anonymous", "past the cap of opens");
    assert!(r.set_cookies(NAME).is_empty());
    cookies.remove(0);
    assert_eq!(get_with(addr, "/user", &cookies, &[]).await.body, "mallory");
}

#[tokio::test]
async fn planted_refused_cookies_hold_a_valid_one_back_once_and_never_remove_it() {
    // Without the __Host- prefix (here: a Domain cookie), a sibling subdomain can plant cookies
    // of our name that the browser sends before the real one (a longer Path): here four of the
    // attacker's own revoked sessions, as many as the table reads allowed per request.
    let (_dir, reg) = sqlite();
    let addr = server(builder(reg.clone()).domain("example.com")).await;
    let name = "__Secure-session";
    let mut planted = Vec::new();
    for _ in 0..4 {
        let jar = get(addr, "/login/mallory", None).await.cookie_pair(name);
        assert_eq!(get(addr, "/logout", Some(&jar)).await.body, "bye");
        planted.push(jar);
    }
    let victim = get(addr, "/login/alice", None).await.cookie_pair(name);
    let mut cookies: Vec<&[u8]> = planted.iter().map(|c| c.as_bytes()).collect();
    cookies.push(victim.as_bytes());
    let r = get_with(addr, "/user", &cookies, &[]).await;
    assert!(
        r.set_cookies(name).is_empty(),
        "a removal would delete the victim's valid cookie: {:?}",
        r.set_cookies(name)
    );
    // The refusals are remembered: from the next request on, the planted cookies cost no read
    // and the victim's cookie is reached.
    let r = get_with(addr, "/user", &cookies, &[]).await;
    assert_eq!(r.body, "alice");
    assert!(r.set_cookies(name).is_empty());
}
