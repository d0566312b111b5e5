//! Telling a browser whose session was revoked elsewhere why it sees the sign-in page.
//!
//! The library refuses a cookie whose session the registry no longer holds as active, and hands
//! the handler a fresh, signed-out session; it does not say that it refused one. So the demo
//! looks for itself, and only on requests that arrive signed out with a cookie of its name: it
//! opens the cookie with the same key. If the cookie is authentic, unexpired and names a user,
//! the middleware could only have refused it because the registry did: the session was signed
//! out from another device ("Sign out", "Sign out all other devices", "Sign out everywhere"),
//! or by the operator's `sealed-sessions revoke`. An expired, tampered or foreign cookie is
//! not "signed out from another device" and gets no message.
//!
//! One case reads the same and is not: a registry that lost the session's row (its database
//! replaced). The library knows no more than the demo there; see `docs/demo.md`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sealed_sessions::{Flash, Sealer, Session};

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
    session.flash(level, message);
}

/// In the request's extensions when its cookie was refused as revoked.
#[derive(Clone, Copy, Debug)]
pub struct SignedOutElsewhere;

/// How to recognise the demo's own session cookies.
pub struct Recogniser {
    pub cookie_name: String,
    pub sealer: Sealer,
}

impl Recogniser {
    /// Whether one of the request's cookies of our name is an authentic, unexpired, signed-in
    /// session: given to a signed-out session, it was refused by the registry.
    fn signed_in_cookie(&self, headers: &axum::http::HeaderMap, now: SystemTime) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|line| line.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|c| c.name() == self.cookie_name)
            .filter_map(|c| self.sealer.open(&self.cookie_name, c.value(), now).ok())
            .any(|opened| opened.claims.user().is_some())
    }
}

/// Runs inside the session layer. Marks a GET whose cookie was revoked (the page tells why);
/// answers a form post from such a browser with a redirect to the sign-in page that tells why,
/// instead of the handler's refusal for the missing CSRF token.
pub async fn tell(
    State(recogniser): State<Arc<Recogniser>>,
    mut req: Request,
    next: Next,
) -> Response {
    let signed_out = req
        .extensions()
        .get::<Session>()
        .is_some_and(|session| session.user().is_none());
    if !signed_out || !recogniser.signed_in_cookie(req.headers(), SystemTime::now()) {
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
