//! axum support (feature `axum`): the [`Session`] extractor, and errors that are responses, so
//! that `?` works in handlers.
//!
//! An error becomes a response with a status and the status's reason as its body, nothing more:
//! what went wrong is logged (with `tracing`), never sent to the client.
//!
//! | error | status |
//! |---|---|
//! | [`SessionError::NotSignedIn`], [`SessionError::NotActive`] | 401 Unauthorized |
//! | [`SessionError::CsrfMismatch`] | 403 Forbidden |
//! | [`SessionError::ReauthenticationRequired`] (sudo mode) | 403, body `Reauthentication Required` and header `x-reauthentication-required: 1`, so a page or script can tell it from other 403s and ask for the password again |
//! | [`SessionError::Registry`] and [`RegistryError`]: busy, unreachable, stopped, full, being replaced | 503 Service Unavailable |
//! | anything else (a value that does not (de)serialize, no registry configured, a damaged database) | 500 Internal Server Error |
//!
//! ```
//! use axum::{routing::post, Router};
//! use sealed_sessions::{Session, SessionError};
//!
//! async fn sign_out_everywhere(session: Session) -> Result<String, SessionError> {
//!     let n = session.sign_out_everywhere().await?;
//!     Ok(format!("signed out of {n} sessions"))
//! }
//!
//! let app: Router = Router::new().route("/sign-out-everywhere", post(sign_out_everywhere));
//! # let _ = app;
//! ```

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::registry::RegistryError;
use crate::session::{Session, SessionError};

/// The header on the 403 that [`SessionError::ReauthenticationRequired`] becomes: a response
/// that means "ask for the password again", not "forbidden".
pub const REAUTHENTICATION_HEADER: &str = "x-reauthentication-required";

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

impl SessionError {
    /// The HTTP status this error answers with; see the module docs.
    fn status(&self) -> StatusCode {
        match self {
            SessionError::NotSignedIn | SessionError::NotActive => StatusCode::UNAUTHORIZED,
            SessionError::CsrfMismatch | SessionError::ReauthenticationRequired { .. } => {
                StatusCode::FORBIDDEN
            }
            SessionError::Registry(err) => err.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl RegistryError {
    /// The HTTP status this error answers with: 503 for what passes (the database is busy,
    /// unreachable, full, stopped or being reopened), 500 for the rest.
    fn status(&self) -> StatusCode {
        match self {
            RegistryError::Busy
            | RegistryError::Unreachable { .. }
            | RegistryError::Full
            | RegistryError::Stopped
            | RegistryError::Replaced(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The status and its reason; the error itself is logged, never sent.
fn respond(status: StatusCode, err: &dyn std::fmt::Display) -> Response {
    if status.is_server_error() {
        tracing::error!(%status, "{err}");
    } else {
        tracing::debug!(%status, "{err}");
    }
    (status, status.canonical_reason().unwrap_or_default()).into_response()
}

/// See the module docs for the status of each error.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        match &self {
            // serde_json's message quotes the offending value, which is session data: the log
            // gets what kind of error it was and where, not the data.
            SessionError::Serde(err) => respond(
                self.status(),
                &format_args!(
                    "a session value did not (de)serialize: {:?} error at line {}, column {}",
                    err.classify(),
                    err.line(),
                    err.column()
                ),
            ),
            SessionError::ReauthenticationRequired { .. } => {
                tracing::debug!("{self}");
                (
                    StatusCode::FORBIDDEN,
                    [(REAUTHENTICATION_HEADER, "1")],
                    "Reauthentication Required",
                )
                    .into_response()
            }
            _ => respond(self.status(), &self),
        }
    }
}

/// See the module docs for the status of each error.
impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        respond(self.status(), &self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1024))
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[test]
    fn errors_answer_with_a_status_and_no_detail() {
        let secret_path = std::path::PathBuf::from("/secret/path/sessions.db");
        for (err, status) in [
            (SessionError::NotSignedIn, StatusCode::UNAUTHORIZED),
            (SessionError::NotActive, StatusCode::UNAUTHORIZED),
            (SessionError::CsrfMismatch, StatusCode::FORBIDDEN),
            (SessionError::NoRegistry, StatusCode::INTERNAL_SERVER_ERROR),
            (
                SessionError::Registry(RegistryError::Busy),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                SessionError::Registry(RegistryError::Corrupt(secret_path.clone())),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                SessionError::Serde(serde_json::from_str::<u8>("x").unwrap_err()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ] {
            let (got, body) = status_and_body(err.into_response());
            assert_eq!(got, status);
            assert_eq!(body, status.canonical_reason().unwrap());
        }
        let (got, body) = status_and_body(
            RegistryError::Unreachable {
                server: "db.internal:5432/app".into(),
                source: "connection refused".into(),
            }
            .into_response(),
        );
        assert_eq!(got, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("db.internal"), "{body}");
        let (got, _) = status_and_body(RegistryError::ReadOnly(secret_path).into_response());
        assert_eq!(got, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn reauthentication_required_is_a_403_the_app_can_tell_from_others() {
        let err = SessionError::ReauthenticationRequired {
            authenticated_at: std::time::UNIX_EPOCH,
            window: std::time::Duration::from_secs(20 * 60),
        };
        let response = err.into_response();
        assert_eq!(
            response.headers().get(REAUTHENTICATION_HEADER).unwrap(),
            "1"
        );
        let (got, body) = status_and_body(response);
        assert_eq!(got, StatusCode::FORBIDDEN);
        assert_eq!(body, "Reauthentication Required");
        let (_, csrf) = status_and_body(SessionError::CsrfMismatch.into_response());
        assert_ne!(csrf, body, "a CSRF failure reads differently");
    }
}
