//! `peer_server MODE` serves one case on 127.0.0.1 (an OS-chosen port, printed as the first
//! line of stdout), for `examples/loadgen.rs` of sealed-sessions. MODE:
//! - `tower-sessions-memory`, `tower-sessions-sqlite`, `tower-sessions-postgres`;
//! - `registry-postgres`: sealed-sessions with `PostgresRegistry` (validated from its cache);
//! - `private-cookie-jar`: axum-extra's `PrivateCookieJar` in an axum handler;
//! - `actix-bare`, `actix-session-cookie`: actix-web alone, and with actix-session's
//!   `CookieSessionStore` (its own ratio: a different server underneath).
//!
//! Every hyper-based mode runs on a current-thread runtime over the same accept loop and
//! handler as loadgen's own cases; actix-web runs its own server with one worker. The
//! PostgreSQL modes read `SEALED_SESSIONS_POSTGRES_URL` and work in a fresh schema, dropped
//! when the server stops. It stops when its standard input closes (how loadgen asks) or after
//! `--max-seconds` (default 600), so that a lost parent cannot leave it running. `--work N`:
//! every response renders N JSON records (see `WORK`).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::handler::Handler;
use hyper::body::Incoming;
use sealed_sessions::registry::PostgresRegistry;
use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
use sealed_sessions_peers::{
    actix, drop_schema, exit_when_told, fresh_schema, ours, peer, postgres_store, postgres_url,
    private_jar, serve, sqlite_store, stdin_closed, WORK,
};
use tower::Layer;
use tower_sessions::{MemoryStore, SessionManagerLayer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .unwrap_or("tower-sessions-sqlite")
        .to_owned();
    let max_seconds: u64 = args
        .iter()
        .position(|a| a == "--max-seconds")
        .and_then(|i| args.get(i + 1))
        .map_or(600, |s| s.parse().expect("--max-seconds N"));
    let work: usize = args
        .iter()
        .position(|a| a == "--work")
        .and_then(|i| args.get(i + 1))
        .map_or(0, |s| s.parse().expect("--work N"));
    WORK.store(work, std::sync::atomic::Ordering::Relaxed);
    if mode.starts_with("actix") {
        return actix_main(&mode, max_seconds);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let stop = async {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(max_seconds)) => {}
                _ = stdin_closed() => {}
            }
        };
        let announce = || {
            println!("{}", listener.local_addr().unwrap());
            std::io::stdout().flush().unwrap();
        };
        match mode.as_str() {
            "tower-sessions-sqlite" => {
                let store = sqlite_store(dir.path()).await;
                let svc = SessionManagerLayer::new(store)
                    .with_secure(false)
                    .layer(tower::service_fn(peer::<Incoming>));
                announce();
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "tower-sessions-memory" => {
                let svc = SessionManagerLayer::new(MemoryStore::default())
                    .with_secure(false)
                    .layer(tower::service_fn(peer::<Incoming>));
                announce();
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "tower-sessions-postgres" => {
                let url = postgres_url("tower-sessions-postgres").expect("a PostgreSQL URL");
                let schema = fresh_schema("bench_ts");
                let store = postgres_store(&url, &schema).await;
                let svc = SessionManagerLayer::new(store)
                    .with_secure(false)
                    .layer(tower::service_fn(peer::<Incoming>));
                announce();
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
                drop_schema(&url, &schema).await;
            }
            "registry-postgres" => {
                let url = postgres_url("registry-postgres").expect("a PostgreSQL URL");
                let schema = fresh_schema("bench_ss");
                let registry = Arc::new(
                    PostgresRegistry::builder(&url)
                        .schema(&schema)
                        .open()
                        .expect("open the PostgreSQL registry"),
                );
                let config = SessionConfig::builder(KeyRing::new(Key::generate()))
                    .registry(registry.clone())
                    .build()
                    .unwrap();
                let svc = SessionLayer::new(config).layer(tower::service_fn(ours::<Incoming>));
                announce();
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
                let before = registry.round_trips();
                eprintln!(
                    "registry-postgres: {before} round trips to the server in all (sign-ins)"
                );
                registry.stop();
                drop_schema(&url, &schema).await;
            }
            "private-cookie-jar" => {
                let key = axum_extra::extract::cookie::Key::generate();
                let svc = private_jar.with_state(key);
                announce();
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            other => panic!("unknown mode {other}"),
        }
    });
}

/// actix-web on one worker, bare or with actix-session's cookie store (private mode, its
/// default: AES-256-GCM, as `PrivateCookieJar`).
fn actix_main(mode: &str, max_seconds: u64) {
    use actix_session::{storage::CookieSessionStore, SessionMiddleware};
    use actix_web::{web, App, HttpServer};

    exit_when_told(max_seconds);
    let with_session = match mode {
        "actix-bare" => false,
        "actix-session-cookie" => true,
        other => panic!("unknown mode {other}"),
    };
    let key = actix_web::cookie::Key::generate();
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                .cookie_secure(false)
                .build();
            let app = App::new();
            if with_session {
                app.service(
                    web::scope("")
                        .wrap(session)
                        .route("/read", web::get().to(actix::session_read))
                        .route("/login", web::get().to(actix::session_login)),
                )
            } else {
                app.service(
                    web::scope("")
                        .route("/read", web::get().to(actix::bare))
                        .route("/login", web::get().to(actix::bare)),
                )
            }
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind");
        println!("{}", server.addrs()[0]);
        std::io::stdout().flush().unwrap();
        server.run().await.ok();
    });
}
