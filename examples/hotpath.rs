//! A fixed number of requests through `SessionLayer`, for instruction counts under callgrind:
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath stateless 20000
//! ```
//!
//! Cases: `bare` (the handler alone), `stateless` (a ~200-byte session, read), `registry` (the
//! same, user-bound and validated by `SqliteRegistry` from its cache), `write` (the handler
//! changes the session: re-seal and render; every request sends the same cookie), `chain` (the
//! same, each request sending the cookie the previous response set, as a browser does). It prints nothing timing-related: divide the
//! instruction count of a run by its requests, and subtract a run with 0 requests for the setup.

use std::sync::Arc;

use http::header::SET_COOKIE;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use tower::{Layer, Service};
use workload::{cookie_of, handler, now_or_never, request};

#[path = "../benches/common/workload.rs"]
mod workload;

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
    let mut svc =
        SessionLayer::new(builder.build().unwrap()).layer(tower::service_fn(handler::<String>));
    let mut cookie = cookie_of(&rt.block_on(svc.call(request("/setup", None))).unwrap());
    if registry.is_some() {
        cookie = cookie_of(
            &rt.block_on(svc.call(request("/login", Some(&cookie))))
                .unwrap(),
        );
    }
    let writes = case == "write" || case == "chain";
    let path = if writes { "/write" } else { "/read" };
    let mut bare = tower::service_fn(handler::<String>);
    for _ in 0..n {
        let req = request(path, Some(&cookie));
        let res = if case == "bare" {
            now_or_never(bare.call(req)).unwrap()
        } else {
            now_or_never(svc.call(req)).unwrap()
        };
        assert_eq!(res.headers().contains_key(SET_COOKIE), writes);
        if case == "chain" {
            cookie = cookie_of(&res);
        }
    }
    if let Some(r) = registry {
        r.stop();
    }
}
