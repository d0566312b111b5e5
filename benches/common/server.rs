//! What the end-to-end servers and the in-process benches share: the signed-in read handler
//! for sealed-sessions (the peers' handlers, in `benches/peers`, render the same body), the
//! floor layer, and the hyper accept loop. Included with `#[path]` by `examples/loadgen.rs`
//! (the servers it runs itself) and by the `benches/peers` crate (its in-process bench and
//! `peer_server`), so every case in a loadgen run serves the same handler over the same loop.
#![allow(dead_code)] // each includer uses a different part

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

#[path = "floor.rs"]
pub mod floor;

/// How many JSON records every handler renders into its response body (`loadgen --work N`);
/// 0, the default, answers `ok`. Set once, before serving.
pub static WORK: AtomicUsize = AtomicUsize::new(0);

/// The response body: `ok`, or [`WORK`] records of about 60 bytes each, rendered afresh as an
/// API endpoint would (the same work for every case, with or without sessions).
fn body() -> Full<Bytes> {
    Full::new(body_bytes())
}

/// [`body`]'s bytes, for the servers whose body type is not `Full` (axum, actix-web).
pub fn body_bytes() -> Bytes {
    let n = WORK.load(Ordering::Relaxed);
    if n == 0 {
        return Bytes::from_static(b"ok");
    }
    let mut json = String::with_capacity(n * 64 + 2);
    json.push('[');
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            r#"{{"id":{i},"name":"item number {i}","price_cents":{},"in_stock":{}}}"#,
            i * 129 % 10_007,
            i % 3 != 0
        );
    }
    json.push(']');
    Bytes::from(json)
}

/// `/login` signs in with a cart, a CSRF token and preferences (~200 bytes); `/read` reads one
/// value. Without a session layer it answers without touching anything (the bare case).
pub async fn ours<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    floor::read_floor(&req);
    if let Some(session) = req.extensions().get::<sealed_sessions::Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").ok());
            }
            "/write" => {
                let n = session.get::<u64>("visits").ok().flatten().unwrap_or(0);
                session.insert("visits", &(n + 1)).ok();
            }
            "/login" => {
                session.login("alice").await.ok();
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
            _ => {}
        }
    }
    Ok(Response::new(body()))
}

/// Serves `svc` on every connection `listener` accepts, HTTP/1.1 with `TCP_NODELAY`, forever.
pub async fn serve<S, RB>(listener: tokio::net::TcpListener, svc: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<RB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RB: hyper::body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stream.set_nodelay(true).ok();
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
                .ok();
        });
    }
}

/// Completes when standard input reaches its end: how `loadgen` asks a server to stop (it
/// closes the pipe), so that a server with state outside the process (a PostgreSQL schema) can
/// remove it before exiting. A parent that dies closes the pipe too.
pub async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    let _ = rx.await;
}
