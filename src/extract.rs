//! The axum extractor for [`Session`] (feature `axum`).

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::Session;

/// The rejection when a handler asks for a [`Session`] but no [`SessionLayer`](crate::SessionLayer)
/// wraps the route: a server misconfiguration, answered with HTTP 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no Session in the request extensions: is SessionLayer installed on this route?")]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Extracts the request's session in an axum handler.
///
/// ```
/// use axum::{routing::get, Router};
/// use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
///
/// async fn visits(session: Session) -> String {
///     let n = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
///     let _ = session.insert("visits", &n);
///     format!("visit {n}")
/// }
///
/// let config = SessionConfig::builder(KeyRing::new(Key::generate())).build()?;
/// let app: Router = Router::new()
///     .route("/", get(visits))
///     .layer(SessionLayer::new(config));
/// # let _ = app;
/// # Ok::<(), sealed_sessions::ConfigError>(())
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
