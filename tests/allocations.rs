//! Heap allocations per request through `SessionLayer`, counted by a counting global allocator.
//!
//! Counts are deterministic where time is not, so these are upper bounds that a change to the
//! hot path must not exceed. Each case is the number of allocations the middleware adds to the
//! same request through the bare handler: the request is built before counting starts, the
//! futures are polled once with a no-op waker (every case here completes without waiting), and
//! only allocations made on the test's own thread are counted (tests run in parallel threads, and
//! the registry has threads of its own). See docs/performance.md for what each one is.
#![cfg(feature = "hyper")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use http::header::SET_COOKIE;
use http::{HeaderValue, Request, Response};
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use tower::{Layer, Service};
use workload::{cookie_of, handler, now_or_never, request};

#[path = "../benches/common/workload.rs"]
mod workload;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the bookkeeping touches only
// `const`-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note() {
    // `try_with`: thread locals may already be gone while a thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations (and reallocations) made on this thread while `f` runs.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (COUNT.with(Cell::get), out)
}

type Req = Request<String>;
type Res = Response<String>;

/// Runs a request to completion on a tokio runtime (for setup steps that wait, like a login).
fn block_on<S: Service<Req, Response = Res>>(svc: &mut S, req: Req) -> Res
where
    S::Error: std::fmt::Debug,
{
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(svc.call(req))
        .unwrap()
}

/// Allocations the service adds over the bare handler for `path` with `cookie`, after warming
/// up (lazy one-time initialisation is not per request). Checks that the count is stable, and
/// that the response sets no cookie.
fn added_allocations<S, B>(
    svc: &mut S,
    bare: &mut B,
    path: &str,
    cookie: Option<&HeaderValue>,
) -> usize
where
    S: Service<Req, Response = Res>,
    S::Error: std::fmt::Debug,
    B: Service<Req, Response = Res, Error = Infallible>,
{
    added_allocations_setting(svc, bare, path, cookie)
}

/// [`added_allocations`], after three requests of each.
fn added_allocations_setting<S, B>(
    svc: &mut S,
    bare: &mut B,
    path: &str,
    cookie: Option<&HeaderValue>,
) -> usize
where
    S: Service<Req, Response = Res>,
    S::Error: std::fmt::Debug,
    B: Service<Req, Response = Res, Error = Infallible>,
{
    let run = |svc: &mut S| {
        let req = request(path, cookie);
        let (n, res) = allocations(|| now_or_never(svc.call(req)).unwrap());
        assert!(res.status().is_success());
        assert!(
            res.headers().get(SET_COOKIE).is_none(),
            "{path}: Set-Cookie"
        );
        n
    };
    let base = |bare: &mut B| {
        let req = request(path, cookie);
        allocations(|| now_or_never(bare.call(req)).unwrap()).0
    };
    for _ in 0..3 {
        run(svc);
        base(bare);
    }
    let counts: Vec<usize> = (0..5).map(|_| run(svc) - base(bare)).collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "not deterministic: {counts:?}"
    );
    counts[0]
}

#[test]
fn unchanged_stateless_request_allocates_at_most_4_times() {
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .build()
        .unwrap();
    let mut svc = SessionLayer::new(config).layer(tower::service_fn(handler::<String>));
    let cookie = cookie_of(&block_on(&mut svc, request("/setup", None)));

    // The shared session state (an `Arc`; the decoded cookie is the cache of opened values',
    // shared, see `src/cookie_buf.rs`), and three in `http::Extensions` (its boxed map, the
    // map's table, the boxed `Session`).
    let read = added_allocations(
        &mut svc,
        &mut tower::service_fn(handler::<String>),
        "/read",
        Some(&cookie),
    );
    println!("stateless read with a ~200-byte session: {read} allocations");
    assert!(read <= 4, "{read} allocations");

    // No cookie: the same four.
    let untouched = added_allocations(
        &mut svc,
        &mut tower::service_fn(handler::<String>),
        "/none",
        None,
    );
    println!("no cookie, session untouched: {untouched} allocations");
    assert!(untouched <= 4, "{untouched} allocations");
}

#[cfg(feature = "sqlite")]
#[test]
fn registry_validated_request_allocates_at_most_4_times() {
    use std::sync::Arc;

    use sealed_sessions::registry::SqliteRegistry;

    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(SqliteRegistry::open(dir.path().join("alloc.db")).unwrap());
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .registry(registry.clone())
        .build()
        .unwrap();
    let mut svc = SessionLayer::new(config).layer(tower::service_fn(handler::<String>));
    let cookie = cookie_of(&block_on(&mut svc, request("/setup", None)));
    let cookie = cookie_of(&block_on(&mut svc, request("/login", Some(&cookie))));

    // A cache hit (the steady state); `touch` is throttled, so only the first one queues.
    // The same four as stateless: the `User-Agent` kept for a possible login is a clone of a
    // `HeaderValue`, a reference count (here a static value; hyper's headers share the read
    // buffer), and the user id is read from the decoded cookie in place.
    let read = added_allocations(
        &mut svc,
        &mut tower::service_fn(handler::<String>),
        "/read",
        Some(&cookie),
    );
    println!("registry-validated read (cache hit): {read} allocations");
    assert!(read <= 4, "{read} allocations");
    registry.stop();
}

#[test]
fn write_request_allocates_at_most_8_times() {
    // The smallest cache of opened values (one slot per shard, 16 in all), so that after the
    // warm-up every slot is filled and every counted write replaces an entry, as in a busy
    // server: a write into an empty slot is the exception. (Each write's new value lands in a
    // slot picked by its random tag; the chance that 2,000 writes leave one of 16 slots empty
    // is 16 * (15/16)^2000, about 1e-55.)
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .opened_cookie_cache(1)
        .build()
        .unwrap();
    let mut svc = SessionLayer::new(config).layer(tower::service_fn(handler::<String>));
    let mut bare = tower::service_fn(handler::<String>);
    let mut cookie = cookie_of(&block_on(&mut svc, request("/setup", None)));

    // `/write` reads a number and stores it plus one, so the session is re-sealed and the
    // response sets a cookie. Each request sends the cookie the previous response set, as a
    // browser does: that response put its value into the cache, so every counted request hits
    // it. (With one fixed cookie, the one write in sixteen whose new value lands in that
    // cookie's slot evicted it, and the next request opened the cookie again: two more
    // allocations, by chance.) The counted writes store 2,001 to 2,005: values of one length,
    // which the warm-up has given every slot's buffer.
    let mut counts = Vec::new();
    for round in 0..2_005 {
        let req = request("/write", Some(&cookie));
        let (n, res) = allocations(|| now_or_never(svc.call(req)).unwrap());
        assert!(res.status().is_success());
        let next = cookie_of(&res);
        let req = request("/write", Some(&cookie));
        let base = allocations(|| now_or_never(bare.call(req)).unwrap()).0;
        if round >= 2_000 {
            counts.push(n - base);
        }
        cookie = next;
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "not deterministic: {counts:?}"
    );
    let write = counts[0];
    // The four of a read (the state, the extension map's box and table, the boxed `Session`),
    // and four more:
    // - the session data's own copy of its entries, made by the first change (`data.rs`);
    // - the envelope in clear that the cache of opened values keeps for the next request,
    // - and its `Arc`, shared with that request (`opened_cache.rs`);
    // - the `Set-Cookie` line, which the value is sealed straight into (`session/save.rs`).
    // None for the value's JSON (on the stack, `session/json_buf.rs`), the envelope being
    // encrypted (on the stack, `seal/sealing.rs`), the value on its own (written into the line), or
    // the cache's copy of the value (in the evicted entry's buffer). Before issue 26: 12.
    println!("write (re-seal, Set-Cookie, cache insert): {write} allocations");
    assert!(write <= 8, "{write} allocations");
}
