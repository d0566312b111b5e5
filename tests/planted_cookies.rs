//! Cookies of our name planted by a sibling subdomain (any name without `__Host-`, so every
//! configuration with a `Domain`) must not lock a session out: the planted cookies and the
//! browser's own in one `Cookie` header, in the orders a browser sends them (longer paths first,
//! then older), through the middleware. See the module documentation of `src/load.rs`.
#![cfg(feature = "hyper")]

use std::convert::Infallible;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionConfigBuilder, SessionLayer};
use tower::{Layer, Service, ServiceExt};

/// The name every configuration with a `Domain` gets, and that a sibling can set.
const NAME: &str = "__Secure-session";

fn builder() -> SessionConfigBuilder {
    builder_with(&Key::generate())
}

fn builder_with(key: &Key) -> SessionConfigBuilder {
    SessionConfig::builder(KeyRing::new(key.clone()))
        .domain("example.com")
        .max_cookie_size(32 * 1024)
}

/// `/fill/N` stores N bytes under "big"; `/len` answers its length (or `none`); `/login/U`,
/// `/logout`; `/user` answers the user (or `anonymous`).
async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let session = req.extensions().get::<Session>().cloned().unwrap();
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = match parts.as_slice() {
        ["fill", n] => {
            session
                .insert("big", &"x".repeat(n.parse().unwrap()))
                .unwrap();
            "ok".to_owned()
        }
        ["len"] => match session.get::<String>("big").unwrap() {
            Some(s) => s.len().to_string(),
            None => "none".to_owned(),
        },
        ["login", user] => {
            session.login(*user).await.unwrap();
            "signed in".to_owned()
        }
        ["logout"] => {
            session.logout().await.unwrap();
            "bye".to_owned()
        }
        ["user"] => session.user().unwrap_or_else(|| "anonymous".into()),
        _ => "nothing".to_owned(),
    };
    Ok(Response::new(body))
}

type Svc = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

fn service(b: SessionConfigBuilder) -> Svc {
    let layer = SessionLayer::new(b.build().unwrap());
    tower::util::BoxCloneService::new(layer.layer(tower::service_fn(handler)))
}

struct Reply {
    status: StatusCode,
    body: String,
    /// `name=value` of every cookie set (not removed), in order.
    set: Vec<String>,
    /// Names of the cookies removed.
    removed: Vec<String>,
}

async fn send(svc: &Svc, path: &str, cookies: &[String]) -> Reply {
    let mut req = Request::get(path).body(String::new()).unwrap();
    if !cookies.is_empty() {
        let header = HeaderValue::from_str(&cookies.join("; ")).unwrap();
        req.headers_mut().insert(COOKIE, header);
    }
    let res = svc.clone().ready().await.unwrap().call(req).await.unwrap();
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    for line in res.headers().get_all(SET_COOKIE) {
        let c = cookie::Cookie::parse(line.to_str().unwrap().to_owned()).unwrap();
        if c.max_age() == Some(cookie::time::Duration::ZERO) {
            removed.push(c.name().to_owned());
        } else {
            set.push(format!("{}={}", c.name(), c.value()));
        }
    }
    Reply {
        status: res.status(),
        body: res.into_body(),
        set,
        removed,
    }
}

/// A sealed-looking value of `len` characters that opens under no key: base64url of a v1
/// private header and random-looking bytes.
fn junk(seed: usize, len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % 64) as usize] as char
        })
        .collect()
}

/// The browser's own large session: `NAME`, `NAME.1` .. `NAME.3`.
async fn own_session(svc: &Svc) -> Vec<String> {
    let r = send(svc, "/fill/9000", &[]).await;
    assert_eq!(r.body, "ok");
    assert_eq!(
        r.set.len(),
        4,
        "the session takes four cookies: {:?}",
        r.set
    );
    assert!(r.set[0].starts_with(&format!("{NAME}=4.")));
    r.set
}

/// What the issue measured: seven planted cookies on two paths, a first cookie announcing four
/// chunks and two copies of `.1` to `.3`. `a` holds the cookies of the longer path (`/a/b`),
/// `b` those of `/a`; which of them holds the head is `head_in_a`.
fn planted(head_in_a: bool) -> (Vec<String>, Vec<String>) {
    let head = format!("{NAME}=4.{}", junk(1, 4000));
    let chunks = |seed: usize| -> Vec<String> {
        (1..4)
            .map(|k| format!("{NAME}.{k}={}", junk(seed + k, 4000)))
            .collect()
    };
    let (mut a, mut b) = (chunks(10), chunks(20));
    if head_in_a {
        a.insert(0, head);
    } else {
        b.insert(0, head);
    }
    (a, b)
}

/// The orders a browser can send the planted cookies and its own in (RFC 6265bis 5.8.3: longer
/// paths first, then older first), named for the test's messages.
fn orders(own: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let cat = |parts: &[&[String]]| parts.concat();
    let mut out = Vec::new();
    for head_in_a in [true, false] {
        let (a, b) = planted(head_in_a);
        // Planted on longer paths, or at ours for another domain before ours was set
        // (older): all before ours.
        out.push(("longer paths or older", cat(&[&a, &b, own])));
        // Planted at our path after ours was set: newer, so after ours.
        out.push(("newer, same path", cat(&[&a, own, &b])));
        out.push(("all newer", cat(&[own, &a, &b])));
    }
    // Only the chunks planted, two copies of `.1` to `.3` before our own.
    let (a, b) = planted(true);
    out.push(("chunks only", cat(&[&a[1..], &b, own])));
    // Two planted copies of `NAME.1` before ours.
    let ones = [a[1].clone(), b[0].clone()];
    out.push(("two copies of .1", cat(&[&ones, own])));
    out
}

#[tokio::test]
async fn planted_chunks_do_not_hide_the_browsers_own_session() {
    let svc = service(builder());
    let own = own_session(&svc).await;
    assert_eq!(send(&svc, "/len", &own).await.body, "9000");
    let mut failed = Vec::new();
    for (what, cookies) in orders(&own) {
        let r = send(&svc, "/len", &cookies).await;
        if (r.status, r.body.as_str()) != (StatusCode::OK, "9000") || !r.removed.is_empty() {
            failed.push(format!(
                "{what}: {} {:?}, removed {:?}",
                r.status, r.body, r.removed
            ));
        }
    }
    assert!(failed.is_empty(), "the session did not load: {failed:#?}");
}

/// A planted first cookie and chunks set at our path for the parent domain between the time our
/// head was set and the time our chunks were (its chunks sort between ours): tried after the
/// nearest set, within the same request.
#[tokio::test]
async fn chunks_planted_between_a_head_and_its_chunks_are_passed_over() {
    let svc = service(builder());
    let own = own_session(&svc).await;
    let (a, b) = planted(false);
    let cookies = [&a[..], &b[..1], &own[..1], &b[1..], &own[1..]].concat();
    let r = send(&svc, "/len", &cookies).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "9000"));
    // One planted chunk between our head and our `.2`.
    let cookies = [
        &own[..2],
        &[format!("{NAME}.2={}", junk(7, 4000))][..],
        &own[2..],
    ]
    .concat();
    assert_eq!(send(&svc, "/len", &cookies).await.body, "9000");
}

/// Small sessions too: planted values that do not open cost one fresh open each (of eight per
/// request), so seven before a session opened afresh leave it its open, and eight before one in
/// the cache of opened values (which costs none) leave it found.
#[tokio::test]
async fn planted_single_cookies_do_not_hide_a_small_session() {
    let key = Key::generate();
    let svc = service(builder_with(&key));
    let own = send(&svc, "/fill/10", &[]).await.set;
    assert_eq!(own.len(), 1);
    let planted = |n: usize| -> Vec<String> {
        let mut cookies: Vec<String> = (0..n)
            .map(|i| format!("{NAME}={}", junk(100 + i, 300)))
            .collect();
        cookies.extend(own.iter().cloned());
        cookies
    };
    // Sealed for a visitor without a cookie, so not yet in the cache: opened afresh.
    assert_eq!(send(&svc, "/len", &planted(7)).await.body, "10");
    // Opened once, so now in the cache.
    assert_eq!(send(&svc, "/len", &planted(8)).await.body, "10");
    // Another host (a cache of its own): eight that do not open use up its opens.
    let other = service(builder_with(&key));
    let r = send(&other, "/len", &planted(8)).await;
    assert_eq!((r.body.as_str(), r.removed.len()), ("none", 0));
}

/// Sessions of an attacker's own account, signed out (so the registry refuses them), planted
/// before the victim's: each costs a table read the first time, at most `MAX_TABLE_READS` (4)
/// are read per request, and the registry remembers its refusals for 30 s, during which they
/// cost no read and no open. Eight of them before a session the registry knows from memory hold
/// it back for one request. (Before, the eight, refused from memory, used up the eight values
/// opened per request on every request, and the session never loaded.)
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn planted_refused_sessions_hold_a_session_back_for_one_request_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(
        sealed_sessions::registry::SqliteRegistry::open(dir.path().join("r.db")).unwrap(),
    );
    // A clock that stands still: the 30 s a refusal is remembered cannot run out mid-test.
    let now = std::time::SystemTime::now();
    let svc = service(builder().registry(registry).clock(move || now));
    let mut planted = Vec::new();
    for _ in 0..8 {
        let cookie = send(&svc, "/login/mallory", &[]).await.set;
        assert_eq!(send(&svc, "/logout", &cookie).await.body, "bye");
        planted.extend(cookie);
    }
    let own = send(&svc, "/login/alice", &[]).await.set;
    assert_eq!(send(&svc, "/user", &own).await.body, "alice");
    let cookies = [&planted[..], &own[..]].concat();
    let first = send(&svc, "/user", &cookies).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.removed.is_empty(),
        "not all were looked at: no removal"
    );
    let second = send(&svc, "/user", &cookies).await;
    assert_eq!(second.body, "alice", "the second request loads the session");
    assert!(second.removed.is_empty());
}
