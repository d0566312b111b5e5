//! The one request workload every hot-path measurement sends through `SessionLayer`:
//! `benches/middleware.rs` (time), `examples/hotpath.rs` (instructions under callgrind) and
//! `tests/allocations.rs` (allocation counts). Included with `#[path]`, so the three measure the
//! same handler, the same ~200-byte session and the same request; the `benches/peers` crate
//! includes it too, for the same requests and sign-in.
#![allow(dead_code)] // each includer uses a different part

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use sealed_sessions::Session;

/// Reads a value (`/read`), changes it (`/write`), writes the sample session (`/setup`), signs
/// in (`/login`), or does nothing.
pub async fn handler<B: Default>(req: Request<B>) -> Result<Response<B>, Infallible> {
    if let Some(session) = req.extensions().get::<Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").ok());
            }
            "/write" => {
                let n = session.get::<u64>("visits").ok().flatten().unwrap_or(0);
                session.insert("visits", &(n + 1)).unwrap();
            }
            "/setup" => {
                session.insert("visits", &1u64).unwrap();
                session
                    .insert("cart", &["apple", "pear", "plum", "fig"])
                    .unwrap();
                session
                    .insert("csrf", "q3JmZ1dU6yXk0p4Vw8Ns2Lh5RtYb7GcE")
                    .unwrap();
                session.insert("theme", "dark").unwrap();
                session.insert("locale", "en-GB").unwrap();
            }
            "/login" => session.login("alice").await.unwrap(),
            _ => {}
        }
    }
    // With a content type, as every real handler's response has (axum's `String` does): the
    // header map then exists before the middleware adds its headers, as in a real server.
    let mut res = Response::new(B::default());
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(res)
}

/// `GET path` with a user agent and, if given, the session cookie.
///
/// The user agent is a static value: cloning it (the registry cases keep it for a sign-in)
/// allocates nothing, as cloning a header hyper parsed costs a reference count. (Built by
/// `Request::builder` from a string, the value was a copy of its own, whose first clone
/// allocated: about 240 instructions that only the registry cases paid, and no server does.)
pub fn request<B: Default>(path: &str, cookie: Option<&HeaderValue>) -> Request<B> {
    let mut req = Request::get(path)
        .header(
            http::header::USER_AGENT,
            HeaderValue::from_static("workload/1"),
        )
        .body(B::default())
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    req
}

/// The `name=value` part of the response's `Set-Cookie`, to send back.
pub fn cookie_of<B>(res: &Response<B>) -> HeaderValue {
    let line = res.headers()[SET_COOKIE].to_str().unwrap();
    HeaderValue::from_str(line.split(';').next().unwrap()).unwrap()
}

/// Signs in through `svc` (`/login`) and returns the cookie it set, after checking that a read
/// with that cookie succeeds without setting another (what every read case then measures).
pub async fn signed_in<S, B, RB>(svc: &S) -> HeaderValue
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Clone,
    S::Error: std::fmt::Debug,
    B: Default,
{
    use tower::ServiceExt;
    let res = svc.clone().oneshot(request("/login", None)).await.unwrap();
    let cookie = cookie_of(&res);
    let res = svc
        .clone()
        .oneshot(request("/read", Some(&cookie)))
        .await
        .unwrap();
    assert!(res.status().is_success() && res.headers().get(SET_COOKIE).is_none());
    cookie
}

/// Polls `fut` once with a no-op waker: every request measured this way completes without
/// waiting (no registry I/O).
pub fn now_or_never<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the request waited"),
    }
}
