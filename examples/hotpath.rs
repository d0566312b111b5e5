//! A fixed number of requests through `SessionLayer`, for instruction counts under callgrind:
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath stateless 20000
//! ```
//!
//! Cases: `bare` (the handler alone), `stateless` (a ~200-byte session, read), `registry` (the
//! same, user-bound and validated by `SqliteRegistry` from its cache), `write` (the handler
//! changes the session: re-seal and render). It prints nothing timing-related: divide the
//! instruction count of a run by its requests, and subtract a run with 0 requests for the setup.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
use tower::{Layer, Service};

type Req = Request<String>;
type Res = Response<String>;

async fn handler(req: Req) -> Result<Res, Infallible> {
    if let Some(session) = req.extensions().get::<Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").ok());
            }
            "/write" => {
                let n = session.get::<u64>("visits").ok().flatten().unwrap_or(0);
                session.insert("visits", &(n + 1)).ok();
            }
            "/setup" => {
                session.insert("visits", &1u64).ok();
                session
                    .insert("cart", &["apple", "pear", "plum", "fig"])
                    .ok();
                session
                    .insert("csrf", "q3JmZ1dU6yXk0p4Vw8Ns2Lh5RtYb7GcE")
                    .ok();
                session.insert("theme", "dark").ok();
                session.insert("locale", "en-GB").ok();
            }
            "/login" => session.login("alice").await.unwrap(),
            _ => {}
        }
    }
    Ok(Response::new(String::new()))
}

fn request(path: &str, cookie: Option<&HeaderValue>) -> Req {
    let mut req = Request::get(path)
        .header("user-agent", "hotpath/1")
        .body(String::new())
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    req
}

fn now_or_never<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the request waited"),
    }
}

fn cookie_of(res: &Res) -> HeaderValue {
    let line = res.headers()[SET_COOKIE].to_str().unwrap();
    HeaderValue::from_str(line.split(';').next().unwrap()).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "stateless".into());
    let n: usize = args.next().map_or(10_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut builder = SessionConfig::builder(KeyRing::new(Key::generate()));
    let registry = (case == "registry")
        .then(|| Arc::new(SqliteRegistry::open(dir.path().join("hot.db")).unwrap()));
    if let Some(r) = &registry {
        builder = builder.registry(r.clone());
    }
    let mut svc = SessionLayer::new(builder.build().unwrap()).layer(tower::service_fn(handler));
    let mut cookie = cookie_of(&rt.block_on(svc.call(request("/setup", None))).unwrap());
    if registry.is_some() {
        cookie = cookie_of(
            &rt.block_on(svc.call(request("/login", Some(&cookie))))
                .unwrap(),
        );
    }
    let path = if case == "write" { "/write" } else { "/read" };
    let mut bare = tower::service_fn(handler);
    for _ in 0..n {
        let req = request(path, Some(&cookie));
        let res = if case == "bare" {
            now_or_never(bare.call(req)).unwrap()
        } else {
            now_or_never(svc.call(req)).unwrap()
        };
        assert_eq!(res.headers().contains_key(SET_COOKIE), case == "write");
    }
    if let Some(r) = registry {
        r.stop();
    }
}
