//! Handlers and helpers shared by the peer bench and the peer server: the same signed-in
//! session (~200 bytes of data) for sealed-sessions and for tower-sessions.

use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Bytes;
use tower_sessions_sqlx_store::sqlx::SqlitePool;
use tower_sessions_sqlx_store::SqliteStore;

#[path = "../../common/server.rs"]
mod server;
#[path = "../../common/workload.rs"]
mod workload;
pub use server::{ours, peer, serve, WORK};
pub use workload::{cookie_of, request, signed_in};

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
