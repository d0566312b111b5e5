//! Telling a browser whose session was revoked elsewhere why it sees the sign-in page.
//!
//! The middleware refuses a cookie whose session the registry no longer holds as active, and
//! hands the handler a fresh, signed-out session; `Session::was_revoked` says that it did. The
//! session was then signed out from another device ("Sign out", "Sign out all other devices",
//! "Sign out everywhere"), or by the operator's `sealed-sessions revoke`. An expired, tampered
//! or foreign cookie is not "signed out from another device" and gets no message.
//!
//! One case reads the same and is not: a registry that lost the session's row (its database
//! replaced); see `docs/demo.md`.

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sealed_sessions::{Flash, Session};

/// What the browser is told.
pub const MESSAGE: &str = "You were signed out from another device.";

/// [`MESSAGE`] as a note for the page being served.
pub fn note() -> Flash {
    Flash {
        level: "info".into(),
        message: MESSAGE.into(),
    }
}

/// [`MESSAGE`] for the next page, for a response that redirects.
pub fn tell_next_page(session: &Session) {
    let Flash { level, message } = note();
    // A full session refuses the message; the redirect still happens.
    let _ = session.flash(level, message);
}

/// In the request's extensions when its cookie was refused as revoked.
#[derive(Clone, Copy, Debug)]
pub struct SignedOutElsewhere;

/// Runs inside the session layer. Marks a GET whose cookie was revoked (the page tells why);
/// answers a form post from such a browser with a redirect to the sign-in page that tells why,
/// instead of the handler's refusal for the missing CSRF token.
pub async fn tell(mut req: Request, next: Next) -> Response {
    let revoked = req
        .extensions()
        .get::<Session>()
        .is_some_and(|session| session.user().is_none() && session.was_revoked());
    if !revoked {
        return next.run(req).await;
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        req.extensions_mut().insert(SignedOutElsewhere);
        return next.run(req).await;
    }
    if let Some(session) = req.extensions().get::<Session>() {
        tell_next_page(session);
    }
    Redirect::to("/").into_response()
}
