//! The harness of the metric tests (`tests/metrics.rs` on SQLite, `tests/metrics_postgres.rs`):
//! an app whose handles (the middleware's and its registry's) are taken under a debugging
//! recorder of its own (`metrics::with_local_recorder`), as an application takes them under its
//! global one, so that tests run in parallel without sharing counts; and what changed since the
//! last look.
#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Request, Response};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sealed_sessions::registry::Registry;
use sealed_sessions::{KeyRing, Session, SessionConfig, SessionConfigBuilder, SessionLayer};
use tower::{Layer, Service, ServiceExt};

pub type Req = Request<String>;
pub type Res = Response<String>;

async fn handler(req: Req) -> Result<Res, Infallible> {
    let session = req.extensions().get::<Session>().unwrap().clone();
    let path = req.uri().path().to_owned();
    let mut body = String::new();
    if let Some(user) = path.strip_prefix("/login/") {
        session.login(user).await.unwrap();
    } else {
        match path.as_str() {
            "/write" => session.insert("n", &1u32).unwrap(),
            "/read" => body = format!("{:?}", session.get::<u32>("n").ok().flatten()),
            "/clear" => session.clear(),
            "/logout" => session.logout().await.unwrap(),
            "/renew" => body = format!("{:?}", session.renew().await.err()),
            // Signs the user out everywhere through the registry after the middleware validated
            // the request, then renews: the old id is no longer active.
            "/revoke-then-renew" => {
                let RevokeFirst(registry) = req.extensions().get::<RevokeFirst>().unwrap();
                let user = session.user().unwrap();
                registry.revoke_user(&user, None).await.unwrap();
                body = format!("{:?}", session.renew().await.err());
            }
            "/id" => body = session.id().to_string(),
            _ => {}
        }
    }
    Ok(Response::new(body))
}

/// The registry `/revoke-then-renew` revokes through (a request extension).
#[derive(Clone)]
pub struct RevokeFirst(pub Arc<dyn Registry>);

/// A clock the test moves: seconds added to the real time.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

pub struct App<S, R> {
    pub svc: S,
    pub snapshots: Snapshotter,
    pub registry: Option<Arc<R>>,
    pub clock: Clock,
    // Dropped last: an SQLite registry's file lives here.
    pub _dir: tempfile::TempDir,
}

/// The app, its handles taken under a recorder of its own; `open` opens its registry (if any)
/// in the temp dir, under that recorder too.
pub fn app_with<R: Registry + 'static>(
    ring: KeyRing,
    open: Option<impl FnOnce(&std::path::Path) -> R>,
    configure: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
) -> App<impl Service<Req, Response = Res, Error = Infallible> + Clone, R> {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let (svc, registry) = metrics::with_local_recorder(&recorder, || {
        let registry = open.map(|open| Arc::new(open(dir.path())));
        let for_clock = clock.clone();
        let mut builder = SessionConfig::builder(ring).clock(move || for_clock.now());
        if let Some(reg) = &registry {
            builder = builder.registry(reg.clone() as Arc<dyn Registry>);
        }
        let config = configure(builder).build().unwrap();
        let svc = SessionLayer::new(config).layer(tower::service_fn(handler));
        (svc, registry)
    });
    App {
        svc,
        snapshots,
        registry,
        clock,
        _dir: dir,
    }
}

/// What changed since the last call: counters' increments and histograms' samples by
/// `name{label=value,...}`, gauges' values.
pub fn changes(snapshots: &Snapshotter) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshots.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        if value != 0.0 {
            out.insert(name, value);
        }
    }
    out
}

/// The samples `histogram` (spelled as `changes` spells it) got since the last snapshot, with
/// what else changed.
pub fn samples(snapshots: &Snapshotter, histogram: &str) -> (Vec<f64>, BTreeMap<String, f64>) {
    let mut found = Vec::new();
    let mut others = BTreeMap::new();
    for (key, _, _, value) in snapshots.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Histogram(s) if name == histogram => {
                found.extend(s.into_iter().map(|v| v.into_inner()))
            }
            DebugValue::Counter(n) if n != 0 => drop(others.insert(name, n as f64)),
            DebugValue::Gauge(g) => drop(others.insert(name, g.into_inner())),
            DebugValue::Histogram(s) if !s.is_empty() => drop(others.insert(name, s.len() as f64)),
            _ => {}
        }
    }
    (found, others)
}

/// The gauges: a snapshot gives their value, not a change.
const GAUGES: [&str; 4] = [
    "sealed_sessions_feed_fresh",
    "sealed_sessions_feed_last_confirmed_timestamp_seconds",
    "sealed_sessions_feed_seconds_since_confirmed",
    "sealed_sessions_registry_pending_touches",
];

/// Polls `snapshots` (at most 30 s: a limit on waiting, never a timing target) until `metric`
/// has moved; returns everything that moved meanwhile.
pub async fn wait_for(snapshots: &Snapshotter, metric: &str) -> BTreeMap<String, f64> {
    let mut seen = BTreeMap::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        for (name, value) in changes(snapshots) {
            // Counters and histograms add up across looks; gauges keep their last value.
            let gauge = GAUGES.iter().any(|g| name.starts_with(g));
            let entry = seen.entry(name).or_insert(0.0);
            *entry = if gauge { value } else { *entry + value };
        }
        if seen.contains_key(metric) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{metric} did not move in 30 s; what did: {seen:#?}");
}

impl<S: Service<Req, Response = Res, Error = Infallible> + Clone, R> App<S, R> {
    pub async fn get(&self, path: &str, cookies: &[&str]) -> Res {
        let mut req = Request::get(path)
            .header(USER_AGENT, "metrics-test/1")
            .body(String::new())
            .unwrap();
        if !cookies.is_empty() {
            let header = HeaderValue::from_str(&cookies.join("; ")).unwrap();
            req.headers_mut().insert(COOKIE, header);
        }
        self.request(req).await
    }

    pub async fn request(&self, req: Req) -> Res {
        self.svc.clone().oneshot(req).await.unwrap()
    }

    /// The changes since the last call.
    pub fn changes(&self) -> BTreeMap<String, f64> {
        changes(&self.snapshots)
    }

    /// The count of `metric` (with its labels, as `changes` spells them) since the last call.
    pub fn moved(&self, metric: &str) -> f64 {
        let changes = self.changes();
        changes
            .get(metric)
            .copied()
            .unwrap_or_else(|| panic!("{metric} did not move; what did: {changes:#?}"))
    }

    /// Waits (bounded) until `metric` moves; everything that moved meanwhile.
    pub async fn wait_for(&self, metric: &str) -> BTreeMap<String, f64> {
        wait_for(&self.snapshots, metric).await
    }
}

/// `name=value` of the session cookie a response set.
pub fn cookie(res: &Res) -> String {
    let line = res.headers()[SET_COOKIE].to_str().unwrap();
    line.split(';').next().unwrap().to_owned()
}

pub const REFUSED: &str = "sealed_sessions_cookies_refused_total";
pub const SET: &str = "sealed_sessions_set_cookies_total";
pub const LAG: &str = "sealed_sessions_revocation_propagation_seconds{}";

pub fn refused(reason: &str) -> String {
    format!("{REFUSED}{{reason={reason}}}")
}

pub fn set(why: &str) -> String {
    format!("{SET}{{why={why}}}")
}
