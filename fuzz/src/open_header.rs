//! Target `open_header`: arbitrary bytes as `Cookie` headers through the middleware.
//!
//! Input layout: the first byte chooses the run (bit 0: signed mode; bit 1: the handler writes
//! to the session), the rest is split at `\n` into `Cookie` header values (a header value cannot
//! hold a newline, so this is how one input carries several headers). Parts that
//! `HeaderValue::from_bytes` refuses are dropped, as hyper would refuse the request.
//!
//! Checks, for a stateless [`SessionLayer`] on a current-thread runtime: no panic; the answer
//! is 200; the handler sees a restored session only when the headers carry a value that
//! `make_seeds` sealed for this mode and that opens; every `Set-Cookie` for our name either
//! removes the cookie or opens with the ring, and holds what the handler wrote.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use sealed_sessions::{Mode, Session, SessionConfig, SessionLayer};
use tokio::runtime::Runtime;
use tower::{Layer, ServiceExt};

use super::fixture::{self, Expect, COOKIE_NAME};

/// What the handler saw in the session.
#[derive(Debug, Default, Clone)]
struct Seen {
    user: Option<String>,
    empty: bool,
}

/// Runs every check on one input.
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mode = if flags & 1 == 0 {
        Mode::Private
    } else {
        Mode::Signed
    };
    let write = flags & 2 != 0;

    let mut req = Request::new(());
    for part in rest.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            req.headers_mut().append(COOKIE, value);
        }
    }
    let headers: Vec<String> = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();

    let seen = Arc::new(Mutex::new(None::<Seen>));
    let handler = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |req: Request<()>| {
            let seen = Arc::clone(&seen);
            async move {
                let session = req
                    .extensions()
                    .get::<Session>()
                    .cloned()
                    .expect("the layer puts a Session into every request");
                let _ = session.get::<serde_json::Value>("seed");
                let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0);
                *seen.lock().expect("not poisoned") = Some(Seen {
                    user: session.user(),
                    empty: session.is_empty(),
                });
                if write {
                    session
                        .insert("visits", &visits.wrapping_add(1))
                        .expect("an integer serializes");
                }
                Ok::<_, Infallible>(Response::new(String::new()))
            }
        })
    };
    let res = runtime()
        .block_on(layer(mode).layer(handler).oneshot(req))
        .unwrap_or_else(|never| match never {});

    assert_eq!(res.status(), StatusCode::OK, "headers {headers:?}");
    let seen = seen
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the handler ran");
    if seen.user.is_some() || !seen.empty {
        let restorable = fixture::sealed_values().iter().any(|(value, s)| {
            s.mode == mode
                && matches!(s.expect, Expect::Open | Expect::Reseal)
                && headers.iter().any(|h| h.contains(value))
        });
        assert!(
            restorable,
            "forgery: {mode:?} session {seen:?} restored from headers {headers:?}"
        );
    }

    let ours: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|line| {
            let line = line.to_str().expect("Set-Cookie lines are ASCII");
            let pair = line.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            (name == COOKIE_NAME).then(|| value.to_owned())
        })
        .collect();
    assert!(ours.len() <= 1, "several Set-Cookie lines: {ours:?}");
    if write {
        assert_eq!(ours.len(), 1, "a write sent no cookie");
    }
    for value in ours.iter().filter(|v| !v.is_empty()) {
        let opened = fixture::sealer(mode)
            .open(COOKIE_NAME, value, fixture::now())
            .unwrap_or_else(|e| panic!("the layer set a cookie that does not open: {e}"));
        assert!(!opened.needs_reseal, "the layer sealed with an old key");
        if write {
            assert!(opened.claims.get::<u64>("visits").expect("JSON").is_some());
        }
    }
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime starts")
    })
}

/// The stateless layer under test for `mode`, built once, with the clock fixed at
/// [`fixture::now`].
fn layer(mode: Mode) -> &'static SessionLayer {
    static PRIVATE: OnceLock<SessionLayer> = OnceLock::new();
    static SIGNED: OnceLock<SessionLayer> = OnceLock::new();
    let cell = match mode {
        Mode::Signed => &SIGNED,
        _ => &PRIVATE,
    };
    cell.get_or_init(|| {
        let config = SessionConfig::builder(fixture::keyring())
            // By name: the corpus was sealed for it, and the default takes a prefix.
            .cookie_name(COOKIE_NAME)
            .mode(mode)
            .clock(fixture::now)
            .build()
            .expect("the fuzz config is valid");
        SessionLayer::new(config)
    })
}
