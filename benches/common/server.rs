//! What the end-to-end servers and the in-process benches share: the signed-in read handlers
//! for sealed-sessions and for tower-sessions, and the hyper accept loop. Included with `#[path]` by `examples/loadgen.rs` (bare, stateless and
//! registry servers) and by the `benches/peers` crate (its in-process bench and `peer_server`),
//! so every case in a loadgen run serves the same handler over the same loop.
#![allow(dead_code)] // each includer uses a different part

use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// `/login` signs in with a cart, a CSRF token and preferences (~200 bytes); `/read` reads one
/// value. Without a session layer it answers without touching anything (the bare case).
pub async fn ours<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(session) = req.extensions().get::<sealed_sessions::Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").ok());
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
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// The same for tower-sessions, whose `Session` loads its record from the store on first use:
/// `/login` renews the id and stores the user and the same data; `/read` reads one value.
/// (Written against the API tower-sessions 0.14 and 0.15 share: `benches/middleware.rs` uses
/// 0.15, the `benches/peers` crate 0.14.)
pub async fn peer<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(session) = req.extensions().get::<tower_sessions::Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").await.ok());
            }
            "/login" => {
                session.cycle_id().await.ok();
                session.insert("user", "alice").await.ok();
                session.insert("visits", 1u64).await.ok();
                session
                    .insert("cart", ["apple", "pear", "plum", "fig"])
                    .await
                    .ok();
                session
                    .insert("csrf", "q3JmZ1dU6yXk0p4Vw8Ns2Lh5RtYb7GcE")
                    .await
                    .ok();
                session.insert("theme", "dark").await.ok();
                session.insert("locale", "en-GB").await.ok();
            }
            _ => {}
        }
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Serves `svc` on every connection `listener` accepts, HTTP/1.1 with `TCP_NODELAY`, forever.
pub async fn serve<S>(listener: tokio::net::TcpListener, svc: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
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
