//! The layer under an axum Router, and the `Session` extractor.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;

use axum::routing::get as route;
use axum::Router;
use http::StatusCode;
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
use support::get;

async fn visits(session: Session) -> String {
    let n = session.get::<u64>("visits").unwrap().unwrap_or(0) + 1;
    session.insert("visits", &n).unwrap();
    n.to_string()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn router_layer_and_extractor_count_visits() {
    let config = SessionConfig::builder(KeyRing::new(Key::generate()))
        .build()
        .unwrap();
    let addr = serve(
        Router::new()
            .route("/", route(visits))
            .layer(SessionLayer::new(config)),
    )
    .await;
    let r = get(addr, "/", None).await;
    assert_eq!(r.body, "1");
    let mut jar = r.cookie_pair("__Host-session");
    for expected in ["2", "3"] {
        let r = get(addr, "/", Some(&jar)).await;
        assert_eq!(r.body, expected);
        jar = r.cookie_pair("__Host-session");
    }
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_clear_500() {
    let addr = serve(Router::new().route("/", route(visits))).await;
    let r = get(addr, "/", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("SessionLayer"), "{}", r.body);
}
