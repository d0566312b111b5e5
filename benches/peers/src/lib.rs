//! Handlers and helpers shared by the peer bench and the peer server: the same signed-in
//! session (~200 bytes of data) for sealed-sessions, tower-sessions, axum-extra's
//! `PrivateCookieJar` and actix-session, and the PostgreSQL set-up (a fresh schema per run,
//! dropped afterwards).

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};

use axum::response::{IntoResponse, Response as AxumResponse};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use tower_sessions_sqlx_store::sqlx::{PgPool, SqlitePool};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

#[path = "../../common/server.rs"]
mod server;
#[path = "../../common/workload.rs"]
mod workload;
pub use server::floor::FloorLayer;
pub use server::{ours, serve, stdin_closed, WORK};
pub use workload::{cookie_of, now_or_never, request, signed_in};

/// The response body everywhere.
pub type Body = Full<Bytes>;

/// The environment variable naming the PostgreSQL server (as in the main crate's tests).
pub const POSTGRES_URL_VAR: &str = "SEALED_SESSIONS_POSTGRES_URL";

fn ok() -> Response<Body> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// The bare handler: the same response, no sessions.
pub async fn bare<B>(_req: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(ok())
}

/// The same for tower-sessions, whose `Session` loads its record from the store on first use:
/// `/login` renews the id and stores the user and the same data; `/read` reads one value;
/// `/write` adds one to it.
pub async fn peer<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(session) = req.extensions().get::<tower_sessions::Session>() {
        match req.uri().path() {
            "/read" => {
                std::hint::black_box(session.get::<u64>("visits").await.ok());
            }
            "/write" => {
                let n = session.get::<u64>("visits").await.ok().flatten();
                session.insert("visits", n.unwrap_or(0) + 1).await.ok();
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
    Ok(Response::new(Full::new(server::body_bytes())))
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

/// The PostgreSQL server's URL, or `None` after printing why the PostgreSQL cases are skipped.
pub fn postgres_url(what: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped: {what} needs a PostgreSQL server; set {POSTGRES_URL_VAR}=postgres://..."
            );
            None
        }
    }
}

/// A fresh schema name, `{prefix}_` and 16 random hex digits (std's `RandomState` is seeded
/// randomly per process), so that concurrent runs and tests never share tables.
pub fn fresh_schema(prefix: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{prefix}_{:016x}", h.finish())
}

/// A tower-sessions PostgreSQL store in the schema `schema` (created by `migrate`).
pub async fn postgres_store(url: &str, schema: &str) -> PostgresStore {
    let pool = PgPool::connect(url).await.expect("connect to PostgreSQL");
    let store = PostgresStore::new(pool)
        .with_schema_name(schema)
        .expect("a valid schema name");
    store.migrate().await.expect("create the table");
    store
}

/// Drops `schema` and everything in it (best effort: the run is over either way).
pub async fn drop_schema(url: &str, schema: &str) {
    match PgPool::connect(url).await {
        Ok(pool) => {
            let sql = format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#);
            if let Err(e) = tower_sessions_sqlx_store::sqlx::query(&sql)
                .execute(&pool)
                .await
            {
                eprintln!("could not drop schema {schema}: {e}");
            }
            pool.close().await;
        }
        Err(e) => eprintln!("could not drop schema {schema}: {e}"),
    }
}

/// The sample session as the JSON document a `PrivateCookieJar` user would keep in the cookie:
/// the same user and data as the other cases, as compact JSON (the fair comparison, issue 16).
#[derive(Serialize, Deserialize)]
struct JarSession {
    user: String,
    visits: u64,
    cart: Vec<String>,
    csrf: String,
    theme: String,
    locale: String,
}

/// axum-extra's `PrivateCookieJar` (the cookie crate's `PrivateJar`: AES-256-GCM) on the same
/// routes: `/login` puts the sample session into the cookie; `/read` opens the cookie, parses
/// the document and reads one value (no `Set-Cookie`: the jar is not returned); `/write` does
/// the same, adds one to the value and seals the cookie again.
pub async fn private_jar(uri: Uri, jar: PrivateCookieJar) -> AxumResponse {
    match uri.path() {
        "/read" => {
            if let Some(c) = jar.get("session") {
                let s: Option<JarSession> = serde_json::from_str(c.value()).ok();
                std::hint::black_box(s.map(|s| s.visits));
            }
            body_of_work().into_response()
        }
        "/write" => {
            let Some(mut s) = jar
                .get("session")
                .and_then(|c| serde_json::from_str::<JarSession>(c.value()).ok())
            else {
                return body_of_work().into_response();
            };
            s.visits += 1;
            let value = serde_json::to_string(&s).expect("JSON");
            (jar.add(jar_cookie(value)), body_of_work()).into_response()
        }
        "/login" => {
            let s = JarSession {
                user: "alice".into(),
                visits: 1,
                cart: ["apple", "pear", "plum", "fig"].map(String::from).to_vec(),
                csrf: "q3JmZ1dU6yXk0p4Vw8Ns2Lh5RtYb7GcE".into(),
                theme: "dark".into(),
                locale: "en-GB".into(),
            };
            let value = serde_json::to_string(&s).expect("JSON");
            (jar.add(jar_cookie(value)), body_of_work()).into_response()
        }
        _ => body_of_work().into_response(),
    }
}

/// The jar's session cookie, as a real application would set it.
fn jar_cookie(value: String) -> Cookie<'static> {
    Cookie::build(("session", value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build()
}

/// The body the shared handlers render (`ok`, or `--work N` records).
fn body_of_work() -> Bytes {
    server::body_bytes()
}

/// actix-web handlers, on bare actix-web and under actix-session's cookie store.
pub mod actix {
    use actix_session::Session;
    use actix_web::HttpResponse;

    /// `/read` through actix-session: reads one value of the session (no `Set-Cookie`).
    pub async fn session_read(session: Session) -> HttpResponse {
        std::hint::black_box(session.get::<u64>("visits").ok());
        HttpResponse::Ok().body(super::body_of_work())
    }

    /// `/login` through actix-session: a new session with the user and the sample data.
    pub async fn session_login(session: Session) -> HttpResponse {
        session.renew();
        session.insert("user", "alice").ok();
        session.insert("visits", 1u64).ok();
        session
            .insert("cart", ["apple", "pear", "plum", "fig"])
            .ok();
        session
            .insert("csrf", "q3JmZ1dU6yXk0p4Vw8Ns2Lh5RtYb7GcE")
            .ok();
        session.insert("theme", "dark").ok();
        session.insert("locale", "en-GB").ok();
        HttpResponse::Ok().body(super::body_of_work())
    }

    /// Any route on bare actix-web: the same response, no sessions.
    pub async fn bare() -> HttpResponse {
        HttpResponse::Ok().body(super::body_of_work())
    }
}

/// Stops the process after `max_seconds` or when standard input closes, whichever is first
/// (for servers, such as actix's, that run outside our own runtime).
pub fn exit_when_told(max_seconds: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(max_seconds));
        std::process::exit(0);
    });
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
}
