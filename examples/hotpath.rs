//! A fixed number of requests through `SessionLayer`, for instruction counts under callgrind:
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind --separate-threads=yes target/release/examples/hotpath stateless 20000
//! ```
//!
//! Cases: `bare` (the handler alone), `floor` (the handler behind a layer that only inserts one
//! `Arc` into the request's extensions: the yardstick, `benches/common/floor.rs`), `stateless`
//! (a ~200-byte session, read), `registry` or `registry-sqlite` (the same, user-bound and
//! validated by `SqliteRegistry` from its cache), `registry-postgres` (the same with
//! `PostgresRegistry`: needs the `postgres` feature and `SEALED_SESSIONS_POSTGRES_URL`; a fresh
//! schema, dropped at the end), `write` or `stateless-write` (the handler changes the session:
//! re-seal and render; every request sends the same cookie), `chain` (the same, each request sending the cookie
//! the previous response set, as a browser does). It prints nothing timing-related: divide the
//! instruction count of a run by its requests, and subtract a run with 0 requests for the
//! setup. `loadgen --callgrind` does that for every case.

use std::sync::Arc;

use floor::{read_floor, FloorLayer};
use http::header::SET_COOKIE;
use sealed_sessions::registry::{Registry, SqliteRegistry};
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use tower::{Layer, Service};
use workload::{cookie_of, handler, now_or_never, request};

#[path = "../benches/common/floor.rs"]
mod floor;
#[cfg(feature = "postgres")]
#[path = "../benches/common/pg.rs"]
mod pg;
#[path = "../benches/common/workload.rs"]
mod workload;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "stateless".into());
    let n: usize = args.next().map_or(10_000, |s| s.parse().unwrap());
    // With the `metrics` feature, `SEALED_SESSIONS_HOTPATH_PROMETHEUS=1` installs the
    // Prometheus recorder first (before the configuration and registry take their handles),
    // to measure what recording costs. Its installation's instruction count varies from run
    // to run: leave it out of per-request figures (`docs/operations.md`, "What recording costs").
    #[cfg(feature = "metrics")]
    let _prometheus = std::env::var_os("SEALED_SESSIONS_HOTPATH_PROMETHEUS").map(|_| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .unwrap()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut builder = SessionConfig::builder(KeyRing::new(Key::generate()));
    let mut postgres = None;
    let registry: Option<Arc<dyn Registry>> = match case.as_str() {
        "registry" | "registry-sqlite" => Some(Arc::new(
            SqliteRegistry::open(dir.path().join("hot.db")).unwrap(),
        )),
        "registry-postgres" => {
            let pg = postgres_registry();
            let r: Arc<dyn Registry> = pg.0.clone();
            postgres = Some(pg);
            Some(r)
        }
        _ => None,
    };
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
        // The first read after the sign-in fills the validation cache, so that every counted
        // request is a cache hit.
        rt.block_on(svc.call(request("/read", Some(&cookie))))
            .unwrap();
    }
    let writes = matches!(case.as_str(), "write" | "stateless-write" | "chain");
    let path = if writes { "/write" } else { "/read" };
    let mut bare = tower::service_fn(handler::<String>);
    let mut floor = FloorLayer.layer(tower::service_fn(|req: http::Request<String>| {
        read_floor(&req);
        handler(req)
    }));
    for _ in 0..n {
        let req = request(path, Some(&cookie));
        let res = match case.as_str() {
            "bare" => now_or_never(bare.call(req)).unwrap(),
            "floor" => now_or_never(floor.call(req)).unwrap(),
            _ => now_or_never(svc.call(req)).unwrap(),
        };
        assert_eq!(res.headers().contains_key(SET_COOKIE), writes);
        if case == "chain" {
            cookie = cookie_of(&res);
        }
    }
    drop(svc);
    drop(registry);
    if let Some((registry, drop_schema)) = postgres {
        registry.stop();
        drop_schema();
    }
}

/// A `PostgresRegistry` in a fresh schema, and what drops the schema afterwards.
#[cfg(feature = "postgres")]
fn postgres_registry() -> (
    Arc<sealed_sessions::registry::PostgresRegistry>,
    Box<dyn FnOnce()>,
) {
    let url = std::env::var("SEALED_SESSIONS_POSTGRES_URL")
        .expect("registry-postgres needs SEALED_SESSIONS_POSTGRES_URL=postgres://...");
    let pg = pg::FreshSchema::open(&url, "hotpath_");
    (pg.registry.clone(), Box::new(move || pg.close()))
}

#[cfg(not(feature = "postgres"))]
fn postgres_registry() -> (Arc<SqliteRegistry>, Box<dyn FnOnce()>) {
    panic!("registry-postgres needs the postgres feature: --features postgres");
}
