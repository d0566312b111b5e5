//! Sessions in an axum app: a visit counter, login and logout, with the SQLite registry so that
//! logging out revokes the session everywhere.
//!
//! ```text
//! cargo run --example axum_basic --features axum
//! curl -i -c jar -b jar http://127.0.0.1:3000/
//! curl -i -c jar -b jar http://127.0.0.1:3000/login/alice
//! curl -i -c jar -b jar http://127.0.0.1:3000/logout
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sealed_sessions::registry::SqliteRegistry;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};

async fn home(session: Session) -> Result<String, StatusCode> {
    let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
    session
        .insert("visits", &visits)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let who = session.user().unwrap_or_else(|| "anonymous".into());
    let flashes: Vec<String> = session
        .take_flashes()
        .into_iter()
        .map(|f| f.message)
        .collect();
    Ok(format!("hello {who}, visit {visits} {flashes:?}\n"))
}

async fn login(session: Session, Path(user): Path<String>) -> Result<String, StatusCode> {
    // A real app checks a password first. On a registry failure the middleware answers 503.
    session
        .login(user.as_str())
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    // A full session refuses the message; the sign-in stands either way.
    let _ = session.flash("info", format!("welcome, {user}"));
    Ok(format!("logged in as {user}\n"))
}

async fn logout(session: Session) -> &'static str {
    match session.logout().await {
        Ok(()) => "logged out\n",
        Err(_) => "logged out here; other copies of the cookie may still work\n",
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("sealed-sessions-axum-example");
    std::fs::create_dir_all(&dir)?;
    let registry = Arc::new(SqliteRegistry::open(dir.join("sessions.db"))?);
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .insecure_http_for_development()
        .registry(registry)
        .build()?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login/{user}", get(login))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
