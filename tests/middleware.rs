//! The session middleware over real HTTP on 127.0.0.1, without a registry.
#![cfg(feature = "hyper")]

mod support;

use std::time::Duration;

use http::header::{CACHE_CONTROL, VARY};
use http::StatusCode;
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionConfigBuilder, SessionLayer};
use support::{get, get_with, serve, TestClock};

/// The default name: `__Host-` is taken because the default cookie is `Secure`, `Path=/`.
const NAME: &str = "__Host-session";

fn builder(key: &Key) -> SessionConfigBuilder {
    SessionConfig::builder(KeyRing::new(key.clone()))
}

async fn server(b: SessionConfigBuilder) -> std::net::SocketAddr {
    serve(SessionLayer::new(b.build().unwrap())).await
}

#[tokio::test]
async fn new_visitor_gets_no_cookie_until_data_is_written() {
    let addr = server(builder(&Key::generate())).await;
    let r = get(addr, "/nothing", None).await;
    assert!(r.set_cookies(NAME).is_empty());
    assert!(r.headers.get(VARY).is_none(), "the session was not used");
    for path in ["/get/a", "/id", "/user", "/flashes", "/remove/a"] {
        let r = get(addr, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.set_cookies(NAME).is_empty(), "{path} set {:?}", r.headers);
        // The answer depends on the (absent) cookie, so no shared cache may reuse it for a
        // request that has one; its caching is otherwise the handler's business.
        assert_eq!(r.headers[VARY], "Cookie", "{path}");
        assert!(r.headers.get(CACHE_CONTROL).is_none(), "{path}");
    }
    let r = get(addr, "/set/a/1", None).await;
    assert_eq!(r.set_cookies(NAME).len(), 1);
    assert_eq!(r.headers[VARY], "Cookie");
    assert_eq!(r.headers[CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn data_round_trips_and_reads_set_no_cookie() {
    let addr = server(builder(&Key::generate())).await;
    let jar = get(addr, "/set/fruit/pear", None).await.cookie_pair(NAME);
    let r = get(addr, "/get/fruit", Some(&jar)).await;
    assert_eq!(r.body, "pear");
    assert!(r.set_cookies(NAME).is_empty(), "a read changes nothing");

    let jar2 = get(addr, "/set/veg/leek", Some(&jar))
        .await
        .cookie_pair(NAME);
    assert_eq!(get(addr, "/get/fruit", Some(&jar2)).await.body, "pear");
    assert_eq!(get(addr, "/get/veg", Some(&jar2)).await.body, "leek");

    // Emptying the session deletes the cookie.
    let r = get(addr, "/clear", Some(&jar2)).await;
    let removal = r.cookie(NAME).expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
}

#[tokio::test]
async fn tampered_expired_and_foreign_key_cookies_give_an_empty_session() {
    let key = Key::generate();
    let clock = TestClock::default();
    let addr = server(clock.install(builder(&key))).await;
    let jar = get(addr, "/set/a/secret", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "secret");

    // Flip one character in the middle of the value.
    let mut tampered = jar.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = get(addr, "/get/a", Some(&tampered)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"));
    assert!(r.set_cookies(NAME).is_empty());

    // Sealed by another server's key.
    let other = server(builder(&Key::generate())).await;
    let foreign = get(other, "/set/a/mallory", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/get/a", Some(&foreign)).await.body, "none");

    // Garbage and an empty value.
    for junk in ["session=%%%", "session=", "session=AAAA"] {
        let r = get(addr, "/get/a", Some(junk)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "none"),
            "{junk}"
        );
    }

    // Expired: past the (default 2 h) idle timeout.
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "none");
}

/// `jar` (`name=value`) with one character of the value changed, at every `step`-th position,
/// with that position.
fn tamperings(jar: &str, step: usize) -> Vec<(usize, String)> {
    let value_at = jar.find('=').unwrap() + 1;
    (value_at..jar.len())
        .step_by(step)
        .map(|i| {
            let mut tampered = jar.as_bytes().to_vec();
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            (i, String::from_utf8(tampered).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_value_that_opened_before_is_reused_only_when_equal_and_unexpired() {
    // The layer remembers values that opened (`opened_cookie_cache`): the jar's value below is
    // served from that cache after its first request. Nothing but the very same value may be.
    let clock = TestClock::default();
    for entries in [2048, 0] {
        let b = clock.install(builder(&Key::generate()).opened_cookie_cache(entries));
        let addr = server(b).await;
        let jar = get(addr, "/set/a/secret", None).await.cookie_pair(NAME);
        for _ in 0..2 {
            assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "secret");
        }
        // One character changed, at every fifth position of the value (the part that selects
        // a cache slot is its end, so most of these land in the same slot as the original).
        for (i, tampered) in tamperings(&jar, 5) {
            let r = get(addr, "/get/a", Some(&tampered)).await;
            assert_eq!(r.body, "none", "cache {entries}, position {i}");
        }
        // A prefix or an extension of it.
        for other in [&jar[..jar.len() - 1], &format!("{jar}A")] {
            assert_eq!(get(addr, "/get/a", Some(other)).await.body, "none");
        }
        assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "secret");
        // Expiry is checked again on every request.
        clock.advance(Duration::from_secs(2 * 3600));
        assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "none");
    }
}

#[tokio::test]
async fn a_value_sealed_for_a_returning_visitor_opens_like_any_other() {
    // A value sealed in answer to a request whose cookie opened is remembered as opened (the
    // visitor sends it next). It must be accepted and refused exactly as opening it would be.
    let clock = TestClock::default();
    for entries in [2048, 0] {
        let b = clock.install(builder(&Key::generate()).opened_cookie_cache(entries));
        let addr = server(b).await;
        let first = get(addr, "/set/a/1", None).await.cookie_pair(NAME);
        let second = get(addr, "/set/a/2", Some(&first)).await.cookie_pair(NAME);
        assert_ne!(first, second);
        assert_eq!(get(addr, "/get/a", Some(&second)).await.body, "2");
        // Sessions are stateless: the older value still opens, to its own data.
        assert_eq!(get(addr, "/get/a", Some(&first)).await.body, "1");
        for (i, tampered) in tamperings(&second, 7) {
            let r = get(addr, "/get/a", Some(&tampered)).await;
            assert_eq!(r.body, "none", "cache {entries}, position {i}");
        }
        clock.advance(Duration::from_secs(2 * 3600));
        assert_eq!(get(addr, "/get/a", Some(&second)).await.body, "none");
    }
}

#[tokio::test]
async fn non_utf8_cookie_header_is_not_an_error() {
    let addr = server(builder(&Key::generate())).await;
    let jar = get(addr, "/set/a/ok", None).await.cookie_pair(NAME);
    let mut header = b"x=\xff\xfe; ".to_vec();
    header.extend_from_slice(jar.as_bytes());
    let r = get_with(addr, "/get/a", &[b"session=\xc3\x28", &header], &[]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn duplicate_cookie_names_junk_first_valid_second() {
    let addr = server(builder(&Key::generate())).await;
    let jar = get(addr, "/set/a/mine", None).await.cookie_pair(NAME);
    // In one header.
    let both = format!("session=junk; {jar}");
    assert_eq!(get(addr, "/get/a", Some(&both)).await.body, "mine");
    // Across two headers.
    let r = get_with(addr, "/get/a", &[b"session=junk", jar.as_bytes()], &[]).await;
    assert_eq!(r.body, "mine");
    assert!(r.set_cookies(NAME).is_empty());
}

#[tokio::test]
async fn sessions_larger_than_the_inline_buffer_round_trip() {
    // The middleware decodes cookies of up to 512 bytes into the session's own allocation and
    // larger ones into a `Vec`; both must read and re-seal the same way, in either order.
    let addr = server(builder(&Key::generate())).await;
    let long = "v".repeat(1500);
    let big = get(addr, &format!("/set/a/{long}"), None)
        .await
        .cookie_pair(NAME);
    assert!(big.len() > 2000, "{} bytes", big.len());
    let small = get(addr, "/set/a/short", None).await.cookie_pair(NAME);
    assert_eq!(get(addr, "/get/a", Some(&big)).await.body, long);
    for (first, second, want) in [(&small, &big, "short"), (&big, &small, long.as_str())] {
        let both = format!("{first}; {second}");
        assert_eq!(get(addr, "/get/a", Some(&both)).await.body, want);
    }
    // Junk, then the big one: the failed decode leaves nothing behind.
    let both = format!("session=junk; {big}");
    assert_eq!(get(addr, "/get/a", Some(&both)).await.body, long);
    // A change re-seals from whichever buffer the cookie was decoded into.
    let r = get(addr, "/set/b/x", Some(&big)).await;
    let again = r.cookie_pair(NAME);
    assert_eq!(get(addr, "/get/a", Some(&again)).await.body, long);
    assert_eq!(get(addr, "/get/b", Some(&again)).await.body, "x");
}

#[tokio::test]
async fn login_renews_the_id_and_logout_removes_the_cookie() {
    let addr = server(builder(&Key::generate())).await;
    let r = get(addr, "/set/cart/apple", None).await;
    let jar = r.cookie_pair(NAME);
    let before = get(addr, "/id", Some(&jar)).await.body;

    let r = get(addr, "/login/alice", Some(&jar)).await;
    let after = r.body.clone();
    assert_ne!(before, after, "login must issue a new id");
    let jar2 = r.cookie_pair(NAME);
    assert_eq!(get(addr, "/id", Some(&jar2)).await.body, after);
    assert_eq!(get(addr, "/user", Some(&jar2)).await.body, "alice");
    assert_eq!(
        get(addr, "/get/cart", Some(&jar2)).await.body,
        "apple",
        "data kept"
    );

    let r = get(addr, "/renew", Some(&jar2)).await;
    assert_ne!(r.body, after, "renew issues a new id");
    let jar3 = r.cookie_pair(NAME);
    assert_eq!(get(addr, "/user", Some(&jar3)).await.body, "alice");

    let r = get(addr, "/logout", Some(&jar3)).await;
    let removal = r.cookie(NAME).expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
}

#[tokio::test]
async fn idle_timeout_and_absolute_lifetime_follow_the_clock() {
    let clock = TestClock::default();
    let b = clock.install(
        builder(&Key::generate())
            .lifetime(Duration::from_secs(3600))
            .idle_timeout(Duration::from_secs(600)),
    );
    let addr = server(b).await;
    let mut jar = get(addr, "/set/a/1", None).await.cookie_pair(NAME);

    // Activity every 5 minutes keeps the session alive past the idle timeout ...
    for _ in 0..11 {
        clock.advance(Duration::from_secs(300));
        let r = get(addr, "/get/a", Some(&jar)).await;
        assert_eq!(r.body, "1", "alive at {:?}", clock.now());
        if let Some(c) = r.cookie(NAME) {
            jar = format!("{NAME}={}", c.value());
        }
    }
    // ... but not past the absolute lifetime (55 min so far, 60 min lifetime).
    clock.advance(Duration::from_secs(300));
    assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "none");

    // Without activity, the idle timeout ends it.
    let jar = get(addr, "/set/a/2", None).await.cookie_pair(NAME);
    clock.advance(Duration::from_secs(599));
    assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "2");
    clock.advance(Duration::from_secs(1));
    assert_eq!(get(addr, "/get/a", Some(&jar)).await.body, "none");
}

#[tokio::test]
async fn a_lifetime_shortened_by_a_redeploy_ends_the_sessions_sealed_before() {
    let clock = TestClock::default();
    let key = Key::generate();
    let config = |lifetime: u64| {
        let secs = Duration::from_secs;
        clock.install(
            builder(&key)
                .lifetime(secs(lifetime))
                .idle_timeout(secs(lifetime.min(2 * 3600))),
        )
    };
    // Sealed under a 3-hour lifetime (and a 2-hour idle timeout) ...
    let before = server(config(3 * 3600)).await;
    let jar = get(before, "/set/a/1", None).await.cookie_pair(NAME);
    // ... and read after a redeploy that shortened the lifetime to one hour.
    let after = server(config(3600)).await;
    clock.advance(Duration::from_secs(50 * 60));
    assert_eq!(get(after, "/get/a", Some(&jar)).await.body, "1");
    clock.advance(Duration::from_secs(11 * 60));
    // 61 minutes: over, from the cache of opened values (the read above put it there) ...
    assert_eq!(get(after, "/get/a", Some(&jar)).await.body, "none");
    // ... and opened afresh by another process with the same configuration.
    let another = server(config(3600)).await;
    assert_eq!(get(another, "/get/a", Some(&jar)).await.body, "none");
    // The old configuration still has two hours to go.
    assert_eq!(get(before, "/get/a", Some(&jar)).await.body, "1");
}

#[tokio::test]
async fn renewal_keeps_the_absolute_end_and_login_restarts_it() {
    let clock = TestClock::default();
    let b = clock.install(
        builder(&Key::generate())
            .lifetime(Duration::from_secs(3600))
            .idle_timeout(Duration::from_secs(3000)),
    );
    let addr = server(b).await;
    let jar = get(addr, "/set/a/1", None).await.cookie_pair(NAME);
    clock.advance(Duration::from_secs(2900));
    let renewed = get(addr, "/renew", Some(&jar)).await.cookie_pair(NAME);
    let logged_in = get(addr, "/login/alice", Some(&jar))
        .await
        .cookie_pair(NAME);
    clock.advance(Duration::from_secs(700));
    // 60 minutes after the session began: a renewal must not have extended it ...
    assert_eq!(get(addr, "/get/a", Some(&renewed)).await.body, "none");
    // ... while a login began a new session with a full lifetime.
    assert_eq!(get(addr, "/get/a", Some(&logged_in)).await.body, "1");
    assert_eq!(get(addr, "/user", Some(&logged_in)).await.body, "alice");
}

#[tokio::test]
async fn idle_refresh_is_throttled() {
    let clock = TestClock::default();
    let b = clock.install(builder(&Key::generate()).idle_timeout(Duration::from_secs(400)));
    let addr = server(b).await;
    let jar = get(addr, "/set/a/1", None).await.cookie_pair(NAME);
    // Default throttle: a quarter of the idle timeout, 100 s.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(30));
        assert!(get(addr, "/get/a", Some(&jar))
            .await
            .set_cookies(NAME)
            .is_empty());
    }
    clock.advance(Duration::from_secs(10));
    let r = get(addr, "/get/a", Some(&jar)).await;
    assert_eq!(r.set_cookies(NAME).len(), 1, "refresh due after 100 s");
    let jar = r.cookie_pair(NAME);
    clock.advance(Duration::from_secs(10));
    assert!(get(addr, "/get/a", Some(&jar))
        .await
        .set_cookies(NAME)
        .is_empty());
}

#[tokio::test]
async fn key_rotation_reseals_with_the_new_key() {
    let old = Key::generate();
    let new = Key::generate();
    let before = server(builder(&old)).await;
    let jar = get(before, "/set/a/kept", None).await.cookie_pair(NAME);

    let mut ring = KeyRing::new(old.clone());
    ring.rotate(new.clone()).unwrap();
    let rotated = serve(SessionLayer::new(
        SessionConfig::builder(ring).build().unwrap(),
    ))
    .await;
    // Twice: the second time the old-key cookie is served from the cache of opened values,
    // and must still be re-sealed with the new key.
    let mut resealed = String::new();
    for _ in 0..2 {
        let r = get(rotated, "/get/a", Some(&jar)).await;
        assert_eq!(r.body, "kept");
        resealed = r.cookie_pair(NAME);
        assert_ne!(resealed, jar);
    }

    // The re-sealed cookie opens with the new key alone; the old one does not.
    let new_only = server(builder(&new)).await;
    assert_eq!(get(new_only, "/get/a", Some(&resealed)).await.body, "kept");
    assert_eq!(get(new_only, "/get/a", Some(&jar)).await.body, "none");
    // And once re-sealed, nothing more to send.
    assert!(get(rotated, "/get/a", Some(&resealed))
        .await
        .set_cookies(NAME)
        .is_empty());
}

#[tokio::test]
async fn remember_me_sets_max_age_and_default_has_none() {
    let addr = server(builder(&Key::generate()).idle_timeout(Duration::from_secs(3600))).await;
    let r = get(addr, "/set/a/1", None).await;
    let c = r.cookie(NAME).unwrap();
    assert_eq!(c.max_age(), None);
    assert_eq!(c.expires(), None);

    // A persistent session has its own idle timeout (7 days by default; tests/remember_me.rs).
    let r = get(addr, "/remember", Some(&r.cookie_pair(NAME))).await;
    let c = r.cookie(NAME).unwrap();
    assert_eq!(c.max_age(), Some(cookie::time::Duration::days(7)));
}

#[tokio::test]
async fn cookie_attributes_default_to_secure_ones() {
    let addr = server(builder(&Key::generate())).await;
    let r = get(addr, "/set/a/1", None).await;
    let c = r.cookie(NAME).unwrap();
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.domain(), None);

    let addr = server(builder(&Key::generate()).cookie_name("sid").host_prefix()).await;
    let r = get(addr, "/set/a/1", None).await;
    assert_eq!(r.cookie("__Host-sid").unwrap().secure(), Some(true));

    let addr = server(builder(&Key::generate()).insecure_http_for_development()).await;
    let r = get(addr, "/set/a/1", None).await;
    assert_eq!(r.cookie("session").unwrap().secure(), None, "no prefix");
}

#[tokio::test]
async fn flash_messages_show_once_on_a_later_request() {
    let addr = server(builder(&Key::generate())).await;
    let r = get(addr, "/flash/saved", None).await;
    let jar = r.cookie_pair(NAME);
    let r = get(addr, "/flashes", Some(&jar)).await;
    assert_eq!(r.body, "saved");
    let jar2 = r.cookie(NAME).expect("taking flashes empties the session");
    assert_eq!(jar2.value(), "", "nothing left: the cookie is removed");
    // The old cookie would still show them, but the browser now holds the removal.
    assert_eq!(get(addr, "/flashes", None).await.body, "");
}

#[tokio::test]
async fn too_large_a_session_is_refused_at_insert_not_a_500_nor_a_dropped_cookie() {
    // 5,000 bytes of data seal to about 6,800 characters: over the default 6 KiB of cookies.
    // (tests/large_sessions.rs has the chunked sessions under the limit.)
    let addr = server(builder(&Key::generate())).await;
    let r = get(addr, "/big", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.starts_with("error: the session would hold"),
        "{}",
        r.body
    );
    assert!(r.set_cookies(NAME).is_empty(), "nothing was stored");
}

#[tokio::test]
async fn signed_mode_round_trips_and_refuses_private_cookies() {
    let key = Key::generate();
    let signed = server(builder(&key).mode(sealed_sessions::Mode::Signed)).await;
    let jar = get(signed, "/set/a/visible", None).await.cookie_pair(NAME);
    assert_eq!(get(signed, "/get/a", Some(&jar)).await.body, "visible");
    // The same key in private mode does not accept a signed cookie, nor the reverse.
    let private = server(builder(&key)).await;
    assert_eq!(get(private, "/get/a", Some(&jar)).await.body, "none");
    let jar = get(private, "/set/a/hidden", None).await.cookie_pair(NAME);
    assert_eq!(get(signed, "/get/a", Some(&jar)).await.body, "none");
}

/// A response that sets the session cookie is `no-store` whatever the handler put in its
/// `Cache-Control`: `*` is a `Vary` value, not a cache directive, and a directive's quoted
/// argument is not a directive (RFC 9111 5.2).
#[tokio::test]
async fn a_response_that_sets_the_cookie_is_no_store_whatever_the_handler_said() {
    use std::convert::Infallible;

    use http::{Request, Response};
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use sealed_sessions::Session;

    // Writes the session, and answers with the `Cache-Control` the request's `x-cc` asks for.
    async fn handler(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let session = req.extensions().get::<Session>().cloned().unwrap();
        session.insert("a", &1).unwrap();
        let mut res = Response::new(Full::new(Bytes::new()));
        if let Some(cc) = req.headers().get("x-cc") {
            res.headers_mut().insert(CACHE_CONTROL, cc.clone());
        }
        Ok(res)
    }
    let layer = SessionLayer::new(builder(&Key::generate()).build().unwrap());
    let addr = support::serve_fn(layer, handler).await;
    for (said, sent) in [
        ("*", "no-store"),
        ("public, *, max-age=60", "no-store"),
        ("no-cache=\"set-cookie, no-store\"", "no-store"),
        ("no-store=\"x\"", "no-store"),
        ("public, max-age=60", "no-store"),
        ("NO-STORE", "NO-STORE"),
        ("private, no-store", "private, no-store"),
        ("no-cache=\"a, b\", no-store", "no-cache=\"a, b\", no-store"),
    ] {
        let r = get_with(addr, "/", &[], &[("x-cc", said)]).await;
        assert_eq!(r.set_cookies(NAME).len(), 1, "{said}");
        let all: Vec<_> = r.headers.get_all(CACHE_CONTROL).iter().collect();
        assert_eq!(all, [sent], "the handler said {said:?}");
    }
}
