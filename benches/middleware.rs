//! Per-request overhead of `SessionLayer` over a bare service, calling the tower services
//! directly with in-memory requests (no sockets), on a current-thread tokio runtime.
//!
//! - `bare`: the inner service alone.
//! - `layer/anonymous`: no cookie, the handler does not touch the session (no Set-Cookie).
//! - `layer/stateless`: a ~200-byte anonymous session cookie; the handler reads one value.
//! - `layer/registry`: the same session bound to a user and validated by `SqliteRegistry`
//!   (an in-memory cache hit, the steady state).
//! - `layer/write`: the handler changes the session, so the cookie is re-sealed and rendered.
//!
//! `cargo bench --bench middleware`; ratios are in docs/middleware.md.

use std::convert::Infallible;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Bytes;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
use tower::{Layer, Service, ServiceExt};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

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
            "/login" => {
                session.login("alice").await.ok();
            }
            _ => {}
        }
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn request(path: &str, cookie: Option<&HeaderValue>) -> Req {
    let mut req = Request::get(path)
        .header("user-agent", "bench/1")
        .body(Full::default())
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    req
}

fn cookie_of(res: &Res) -> HeaderValue {
    let line = res.headers()[SET_COOKIE].to_str().unwrap();
    HeaderValue::from_str(line.split(';').next().unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(SqliteRegistry::open(dir.path().join("bench.db")).unwrap());

    let stateless = SessionLayer::new(
        SessionConfig::builder(KeyRing::new(Key::generate()))
            .build()
            .unwrap(),
    )
    .layer(tower::service_fn(handler));
    let bound = SessionLayer::new(
        SessionConfig::builder(KeyRing::new(Key::generate()))
            .registry(registry.clone())
            .build()
            .unwrap(),
    )
    .layer(tower::service_fn(handler));
    let bare = tower::service_fn(handler);

    let (anon_cookie, user_cookie) = rt.block_on(async {
        let res = stateless
            .clone()
            .oneshot(request("/setup", None))
            .await
            .unwrap();
        let anon = cookie_of(&res);
        let res = bound
            .clone()
            .oneshot(request("/setup", None))
            .await
            .unwrap();
        let res = bound
            .clone()
            .oneshot(request("/login", Some(&cookie_of(&res))))
            .await
            .unwrap();
        (anon, cookie_of(&res))
    });
    // Sanity: the cookies open (the read path must not set a cookie or fail).
    rt.block_on(async {
        for (svc, cookie) in [(&stateless, &anon_cookie), (&bound, &user_cookie)] {
            let res = svc
                .clone()
                .oneshot(request("/read", Some(cookie)))
                .await
                .unwrap();
            assert!(res.status().is_success() && res.headers().get(SET_COOKIE).is_none());
        }
    });

    let mut g = c.benchmark_group("middleware");
    macro_rules! case {
        ($name:expr, $svc:expr, $path:expr, $cookie:expr) => {{
            let mut svc = $svc.clone();
            g.bench_function($name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = request($path, $cookie);
                        svc.ready().await.unwrap().call(req).await.unwrap()
                    })
                })
            });
        }};
    }
    case!("bare", bare, "/read", Some(&anon_cookie));
    case!("layer/anonymous", stateless, "/none", None);
    case!("layer/stateless", stateless, "/read", Some(&anon_cookie));
    case!("layer/registry", bound, "/read", Some(&user_cookie));
    case!("layer/write", stateless, "/write", Some(&anon_cookie));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
