//! Handlers and helpers shared by the peer bench and the peer server: the same signed-in
//! session (~200 bytes of data) for sealed-sessions and for tower-sessions.

use std::convert::Infallible;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Bytes;
use tower_sessions_sqlx_store::sqlx::SqlitePool;
use tower_sessions_sqlx_store::SqliteStore;

#[path = "../../common/server.rs"]
mod server;
pub use server::{ours, peer, serve, WORK};

/// The response body everywhere.
pub type Body = Full<Bytes>;

fn ok() -> Response<Body> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// The bare handler: the same response, no sessions.
pub async fn bare<B>(_req: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(ok())
}

/// A tower-sessions SQLite store in a file under `dir` (a file, as a real deployment has).
pub async fn sqlite_store(dir: &std::path::Path) -> SqliteStore {
    let url = format!("sqlite://{}?mode=rwc", dir.join("sessions.db").display());
    let pool = SqlitePool::connect(&url)
        .await
        .expect("open the SQLite file");
    let store = SqliteStore::new(pool);
    store.migrate().await.expect("create the table");
    store
}

/// A GET of `path` with the `Cookie` header `cookie`.
pub fn request(path: &str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut req = Request::get(path)
        .header("user-agent", "bench/1")
        .body(Body::default())
        .expect("a valid request");
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    req
}

/// The `name=value` of the response's `Set-Cookie`, as a `Cookie` header.
pub fn cookie_of<B>(res: &Response<B>) -> HeaderValue {
    let line = res.headers()[SET_COOKIE].to_str().expect("ASCII");
    HeaderValue::from_str(line.split(';').next().expect("a pair")).expect("a header value")
}
