//! The smallest correct use of the crate: a plain hyper 1 server, no database, with a visit
//! counter and a cart kept in the sealed session cookie.
//!
//! ```text
//! cargo run --example hyper_stateless
//! curl -i -c jar -b jar http://127.0.0.1:3000/            # visit counter
//! curl -i -c jar -b jar http://127.0.0.1:3000/cart/add/pear
//! curl -i -c jar -b jar http://127.0.0.1:3000/cart
//! ```
//!
//! The example turns off `Secure` because it serves plain `http://`; a real deployment behind
//! TLS keeps the default.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sealed_sessions::{Key, KeyRing, PeerAddr, Session, SessionConfig, SessionLayer};
use tower::{Layer, ServiceExt};

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = req
        .extensions()
        .get::<Session>()
        .expect("SessionLayer wraps this service");
    let text = match reply(session, req.uri().path()) {
        Ok(text) => text,
        Err(err) => format!("session error: {err}\n"),
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

fn reply(session: &Session, path: &str) -> Result<String, sealed_sessions::SessionError> {
    if let Some(item) = path.strip_prefix("/cart/add/") {
        let mut cart: Vec<String> = session.get("cart")?.unwrap_or_default();
        cart.push(item.to_owned());
        session.insert("cart", &cart)?;
        return Ok(format!("added {item}\n"));
    }
    if path == "/cart" {
        let cart: Vec<String> = session.get("cart")?.unwrap_or_default();
        return Ok(format!("cart: {cart:?}\n"));
    }
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", &visits)?;
    Ok(format!("visit number {visits}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In production, load the key from your secret store with `Key::from_base64`.
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .insecure_http_for_development()
        .build()?;
    let layer = SessionLayer::new(config);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        // The peer address is only needed for the registry's device list; shown for completeness.
        let service = layer.layer(tower::service_fn(handle)).map_request(
            move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                req
            },
        );
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(err) = conn.await {
                eprintln!("connection error: {err}");
            }
        });
    }
}
