//! Sessions too large for one cookie, over real HTTP on 127.0.0.1: split over `NAME`,
//! `NAME.1`, ... (src/cookie_header/chunks.rs), refused at `insert` past the maximum, and read
//! back under the input rules (bounded, never a panic).
#![cfg(feature = "hyper")]

mod support;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use proptest::prelude::*;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionConfigBuilder, SessionLayer};
use support::{get, get_with, serve_fn, Reply};
use tower::{Layer, ServiceExt};

const NAME: &str = "__Host-session";

fn builder(key: &Key) -> SessionConfigBuilder {
    SessionConfig::builder(KeyRing::new(key.clone()))
}

/// `/fill/N` stores N bytes of text under "big" (answering `ok` or the error), `/len` answers
/// its length (or `none`), `/shrink` replaces it with 10 bytes, `/clear`, `/logout`,
/// `/room` answers `remaining_bytes`.
async fn handler(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = req.extensions().get::<Session>().cloned().unwrap();
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = match parts.as_slice() {
        ["fill", n] => {
            let text = "x".repeat(n.parse().unwrap());
            match session.insert("big", &text) {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("error: {e}"),
            }
        }
        ["len"] => match session.get::<String>("big").unwrap() {
            Some(s) => s.len().to_string(),
            None => "none".to_owned(),
        },
        ["shrink"] => {
            session.insert("big", &"y".repeat(10)).unwrap();
            "ok".to_owned()
        }
        ["clear"] => {
            session.clear();
            "ok".to_owned()
        }
        ["logout"] => {
            session.logout().await.unwrap();
            "bye".to_owned()
        }
        ["room"] => session.remaining_bytes().to_string(),
        ["login", u] => match session.login(*u).await {
            Ok(()) => "signed in".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        _ => "nothing".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

async fn server(b: SessionConfigBuilder) -> std::net::SocketAddr {
    serve_fn(SessionLayer::new(b.build().unwrap()), handler).await
}

/// Every `Set-Cookie` line of the response for our name or one of its chunks, in order.
fn lines(r: &Reply) -> Vec<cookie::Cookie<'static>> {
    r.headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .filter(|c| c.name().starts_with(NAME))
        .collect()
}

/// The `Cookie` header a browser would send after this response (all lines set, none removed).
fn jar(r: &Reply) -> String {
    lines(r)
        .iter()
        .filter(|c| c.max_age() != Some(cookie::time::Duration::ZERO))
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn removed(r: &Reply) -> Vec<String> {
    lines(r)
        .iter()
        .filter(|c| c.max_age() == Some(cookie::time::Duration::ZERO) && c.value().is_empty())
        .map(|c| c.name().to_owned())
        .collect()
}

#[tokio::test]
async fn a_12_kb_session_round_trips_split_over_cookies() {
    let addr = server(builder(&Key::generate()).max_cookie_size(32 * 1024)).await;
    let r = get(addr, "/fill/12288", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"));
    let set = lines(&r);
    let names: Vec<&str> = set.iter().map(|c| c.name()).collect();
    let want: Vec<String> = std::iter::once(NAME.to_owned())
        .chain((1..set.len()).map(|k| format!("{NAME}.{k}")))
        .collect();
    assert_eq!(names, want, "NAME, then NAME.1 ...");
    assert!(
        set.len() >= 4,
        "12 KB of data is over 16 KB sealed: {}",
        set.len()
    );
    assert!(set[0].value().starts_with(&format!("{}.", set.len())));
    for (line, c) in r.headers.get_all(http::header::SET_COOKIE).iter().zip(&set) {
        assert!(line.len() <= 4096, "{} is {} bytes", c.name(), line.len());
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.path(), Some("/"));
    }
    let cookies = jar(&r);
    let r = get(addr, "/len", Some(&cookies)).await;
    assert_eq!(r.body, "12288");
    assert!(lines(&r).is_empty(), "a read sets nothing");

    // The chunks arrive in any order, in several headers: they are found by name.
    let mut parts: Vec<&str> = cookies.split("; ").collect();
    parts.reverse();
    let headers: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    assert_eq!(get_with(addr, "/len", &headers, &[]).await.body, "12288");

    // Without one chunk, or with one cut short, there is no session.
    for drop in 0..parts.len() {
        let some: Vec<&[u8]> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, h)| *h)
            .collect();
        assert_eq!(get_with(addr, "/len", &some, &[]).await.body, "none");
    }
    let short = format!("{}; {}", cookies, &format!("{NAME}.1=AAAA"));
    assert_eq!(
        get(addr, "/len", Some(&short)).await.body,
        "12288",
        "a second copy of a chunk does not hide the first"
    );
}

#[tokio::test]
async fn past_the_maximum_insert_is_a_typed_error_and_the_response_is_not_a_500() {
    let addr = server(builder(&Key::generate())).await;
    let first = get(addr, "/fill/100", None).await;
    let cookies = jar(&first);
    let room: usize = get(addr, "/room", Some(&cookies))
        .await
        .body
        .parse()
        .unwrap();
    assert!((4000..6144).contains(&room), "{room}");

    let r = get(addr, "/fill/8000", Some(&cookies)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.starts_with("error: the session would hold") && r.body.contains("max_cookie_size"),
        "{}",
        r.body
    );
    assert!(lines(&r).is_empty(), "nothing changed, nothing sent");
    assert_eq!(get(addr, "/len", Some(&cookies)).await.body, "100");

    // What `remaining_bytes` says is exact: the replaced value had 100 bytes of text, so the
    // new one may have `room + 100`, less the byte its length prefix grows by (its JSON is
    // now 128 bytes or longer), and not one more.
    let most = room + 100 - 1;
    let r = get(addr, &format!("/fill/{}", most + 1), Some(&cookies)).await;
    assert!(r.body.starts_with("error:"), "{}", r.body);
    let r = get(addr, &format!("/fill/{most}"), Some(&cookies)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(lines(&r).len(), 2, "two cookies");
    let cookies = jar(&r);
    assert!(
        cookies.len() <= 6144,
        "{} bytes of Cookie header",
        cookies.len()
    );
    assert!(
        cookies.len() > 6100,
        "the budget is used: {}",
        cookies.len()
    );
    assert_eq!(
        get(addr, "/len", Some(&cookies)).await.body,
        most.to_string()
    );
    assert_eq!(get(addr, "/room", Some(&cookies)).await.body, "0");
}

#[tokio::test]
async fn a_login_that_would_overflow_the_session_is_a_typed_error_not_a_500() {
    let addr = server(builder(&Key::generate())).await;
    let cookies = jar(&get(addr, "/fill/100", None).await);
    let room: usize = get(addr, "/room", Some(&cookies))
        .await
        .body
        .parse()
        .unwrap();
    let r = get(addr, &format!("/fill/{}", room + 100 - 1), Some(&cookies)).await;
    assert_eq!(r.body, "ok");
    let full = jar(&r);
    assert_eq!(get(addr, "/room", Some(&full)).await.body, "0");
    // The user id does not fit: the login fails at the call, and the session is as it was.
    let r = get(addr, "/login/alice@example.com", Some(&full)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.starts_with("error: the session would hold"),
        "{}",
        r.body
    );
    assert!(lines(&r).is_empty(), "nothing changed, nothing sent");
    assert_eq!(
        get(addr, "/len", Some(&full)).await.body,
        (room + 99).to_string()
    );
}

#[tokio::test]
async fn mixed_chunks_of_two_seals_are_refused() {
    let addr = server(builder(&Key::generate())).await;
    let a = jar(&get(addr, "/fill/4000", None).await);
    let b = jar(&get(addr, "/fill/4000", None).await);
    assert_eq!(get(addr, "/len", Some(&a)).await.body, "4000");
    assert_eq!(get(addr, "/len", Some(&b)).await.body, "4000");
    let (a_head, a_rest) = a.split_once("; ").unwrap();
    let (b_head, b_rest) = b.split_once("; ").unwrap();
    assert!(a_rest.starts_with(&format!("{NAME}.1=")) && a_head.starts_with("__Host-session=2."));
    for mixed in [format!("{a_head}; {b_rest}"), format!("{b_head}; {a_rest}")] {
        let r = get(addr, "/len", Some(&mixed)).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"));
        assert!(lines(&r).is_empty());
    }
    // The other seal's chunk first: the combinations are tried, and the right one opens.
    let both = format!("{a_head}; {b_rest}; {a_rest}");
    assert_eq!(get(addr, "/len", Some(&both)).await.body, "4000");
}

#[tokio::test]
async fn a_shrinking_session_removes_its_stale_chunks() {
    let addr = server(builder(&Key::generate()).max_cookie_size(32 * 1024)).await;
    let big = jar(&get(addr, "/fill/8000", None).await);
    assert_eq!(big.matches("; ").count(), 2, "three cookies: {}", big.len());

    let r = get(addr, "/shrink", Some(&big)).await;
    assert_eq!(
        removed(&r),
        [format!("{NAME}.1"), format!("{NAME}.2")],
        "{:?}",
        r.headers
    );
    let small = jar(&r);
    assert!(!small.contains("; ") && !small.contains("=1."), "{small}");
    assert_eq!(get(addr, "/len", Some(&small)).await.body, "10");
    // Chunks a browser still sends next to a single cookie go with the next write.
    let stale = format!("{small}; {}", big.split_once("; ").unwrap().1);
    let r = get(addr, "/shrink", Some(&stale)).await;
    assert_eq!(removed(&r), [format!("{NAME}.1"), format!("{NAME}.2")]);

    // From three cookies to two: only NAME.2 goes.
    let r = get(addr, "/fill/4000", Some(&big)).await;
    assert_eq!(removed(&r), [format!("{NAME}.2")]);
    assert_eq!(jar(&r).matches("; ").count(), 1);

    // Emptied or signed out: every cookie goes.
    for path in ["/clear", "/logout"] {
        let r = get(addr, path, Some(&big)).await;
        assert_eq!(
            removed(&r),
            [NAME.to_owned(), format!("{NAME}.1"), format!("{NAME}.2")],
            "{path}"
        );
    }
}

#[tokio::test]
async fn chunk_input_is_capped() {
    let addr = server(builder(&Key::generate())).await;
    let good = jar(&get(addr, "/fill/4000", None).await);
    let (head, chunk) = good.split_once("; ").unwrap();
    let junk1 = format!("{NAME}.1=AAAA");
    // The three copies of a chunk nearest to its first cookie are tried: the real one third
    // still opens...
    let three = format!("{head}; {junk1}; {junk1}x; {chunk}");
    assert_eq!(get(addr, "/len", Some(&three)).await.body, "4000");
    // ...fourth, it is not looked at, and no removal is sent for what was not examined.
    let four = format!("{head}; {junk1}; {junk1}x; {junk1}y; {chunk}");
    let r = get(addr, "/len", Some(&four)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"));
    assert!(removed(&r).is_empty());

    // Counts this version does not write make the first cookie malformed.
    for count in ["1", "9", "0"] {
        let bad = format!("{NAME}={count}.{}; {chunk}", &head[NAME.len() + 3..]);
        assert_eq!(get(addr, "/len", Some(&bad)).await.body, "none", "{count}");
    }

    // A flood: 32 first cookies claiming 8 chunks, and many copies of every chunk name
    // (2^7 combinations each if nothing capped them). Answered, quickly, with no session.
    let value = "A".repeat(40);
    let mut flood = Vec::new();
    for i in 0..40 {
        flood.push(format!("{NAME}=8.{value}{i}"));
        for k in 1..8 {
            flood.push(format!("{NAME}.{k}={value}{i}"));
        }
    }
    let flood = flood.join("; ");
    let started = Instant::now();
    let r = get(addr, "/len", Some(&flood)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn chunk_like_cookie() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        NAME.to_owned(),
        format!("{NAME}.1"),
        format!("{NAME}.2"),
        format!("{NAME}.7"),
        format!("{NAME}.8"),
        format!("{NAME}.0"),
        format!("{NAME}."),
        format!("{NAME}.11"),
        format!("{NAME}x"),
        "other".to_owned(),
    ]);
    (names, "[0-9A-Za-z._\\-]{0,40}", "(| |;|=|\")").prop_map(|(n, v, sep)| format!("{n}={v}{sep}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary `Cookie` headers of chunk-like names, some with real chunks of a real session
    /// among them: never a panic, never a 500, and the session read is the real one or none.
    #[test]
    fn chunk_like_cookie_headers_never_panic(
        junk in prop::collection::vec(chunk_like_cookie(), 0..24),
        real in prop::collection::vec(0usize..3, 0..4),
        split in 0usize..3,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let key = Key::generate();
            let layer = SessionLayer::new(builder(&key).build().unwrap());
            let svc = layer.layer(tower::service_fn(|req: Request<String>| async move {
                let session = req.extensions().get::<Session>().cloned().unwrap();
                if req.uri().path() == "/fill" {
                    session.insert("big", &"x".repeat(4000)).unwrap();
                }
                let body = match session.get::<String>("big").unwrap() {
                    Some(s) => s.len().to_string(),
                    None => "none".to_owned(),
                };
                Ok::<_, Infallible>(Response::new(body))
            }));
            let res = svc.clone().oneshot(Request::get("/fill").body(String::new()).unwrap()).await.unwrap();
            let pieces: Vec<String> = res
                .headers()
                .get_all(http::header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
                .collect();
            prop_assert_eq!(pieces.len(), 2);
            let mut all = junk.clone();
            for (i, which) in real.iter().enumerate() {
                if let Some(p) = pieces.get(*which) {
                    all.insert((i * 7) % (all.len() + 1), format!("{p};"));
                }
            }
            let mut req = Request::get("/read").body(String::new()).unwrap();
            let text = all.join(" ");
            let at = (text.len() * split / 3).min(text.len());
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            for part in [&text[..at], &text[at..]] {
                if let Ok(v) = http::HeaderValue::from_str(part) {
                    req.headers_mut().append(http::header::COOKIE, v);
                }
            }
            let res = svc.oneshot(req).await.unwrap();
            prop_assert_eq!(res.status(), StatusCode::OK);
            let body = res.into_body();
            prop_assert!(body == "none" || body == "4000", "{}", body);
            Ok(())
        })?;
    }
}
