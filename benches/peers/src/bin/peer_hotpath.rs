//! `peer_hotpath CASE N`: N signed-in reads through a peer, in process, for instruction counts
//! under callgrind, as `examples/hotpath.rs` of sealed-sessions does for its own cases (the
//! same request, the same `now_or_never` poll, so the counts compare):
//!
//! ```text
//! valgrind --tool=callgrind --separate-threads=yes target/release/peer_hotpath private-cookie-jar 4000
//! ```
//!
//! Cases: `floor` (the same as hotpath's, to tie the two harnesses), `private-cookie-jar`
//! (axum-extra), `tower-sessions-memory`; each also as `CASE-write`, every request changing the
//! session. Divide a run's instructions by N after subtracting a run with N = 0; `loadgen
//! --callgrind` does that.

use axum::handler::Handler;
use http::header::SET_COOKIE;
use sealed_sessions_peers::{
    now_or_never, ours, peer, private_jar, request, signed_in, Body, FloorLayer,
};
use tower::{Layer, Service};
use tower_sessions::{MemoryStore, SessionManagerLayer};

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "private-cookie-jar".into());
    let n: usize = args.next().map_or(10_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    // `CASE-write`: the same, each request changing the session (`/write`).
    let (case, path) = match case.strip_suffix("-write") {
        Some(base) => (base, "/write"),
        None => (case.as_str(), "/read"),
    };
    match case {
        "floor" => {
            let svc = FloorLayer.layer(tower::service_fn(ours::<Body>));
            run(&rt, svc, n, false, path);
        }
        "private-cookie-jar" => {
            let svc = private_jar.with_state(axum_extra::extract::cookie::Key::generate());
            run(&rt, svc, n, true, path);
        }
        "tower-sessions-memory" => {
            let svc = SessionManagerLayer::new(MemoryStore::default())
                .with_secure(false)
                .layer(tower::service_fn(peer::<Body>));
            run(&rt, svc, n, true, path);
        }
        other => panic!("unknown case {other}"),
    }
}

fn run<S, RB>(rt: &tokio::runtime::Runtime, mut svc: S, n: usize, sign_in: bool, path: &str)
where
    S: Service<http::Request<Body>, Response = http::Response<RB>> + Clone,
    S::Error: std::fmt::Debug,
{
    let cookie = if sign_in {
        rt.block_on(signed_in::<_, Body, _>(&svc))
    } else {
        // A cookie of the sealed one's size, which nothing reads.
        http::HeaderValue::from_str(&format!("session={}", "A".repeat(330))).unwrap()
    };
    for _ in 0..n {
        let res = now_or_never(svc.call(request(path, Some(&cookie)))).unwrap();
        if path == "/read" {
            assert!(!res.headers().contains_key(SET_COOKIE));
        }
    }
}
