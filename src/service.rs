//! [`SessionLayer`] and [`SessionService`]: the tower middleware that loads a [`Session`] into
//! every request and saves it into the response.
//!
//! Request side (`load.rs`): the first cookie of our name that opens, has not expired and, when
//! it belongs to a user, is still active in the registry, is the session; otherwise the handler
//! gets a fresh, empty session. The registry's in-memory answer is used when it has one, so the
//! usual request does no I/O and needs no boxed future. When the registry fails,
//! [`RegistryErrorPolicy`](crate::RegistryErrorPolicy) decides.
//!
//! Response side: a `Set-Cookie` is sent only when the session changed, got a new id, was opened
//! with an old key, or its idle deadline is due for refresh; with it go `Vary: Cookie` and
//! `Cache-Control: no-store`, so that no shared cache hands one user's cookie to another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, CACHE_CONTROL, RETRY_AFTER, SET_COOKIE, USER_AGENT, VARY};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{SessionConfig, Shared};
use crate::load::{open_cookies, validate, Settled};
use crate::session::{ClientInfo, Loading, SaveError, Saved};
use crate::Session;

/// A tower [`Layer`] that wraps a service in a [`SessionService`].
///
/// ```
/// use sealed_sessions::{Key, KeyRing, SessionConfig, SessionLayer};
///
/// let config = SessionConfig::builder(KeyRing::new(Key::generate())).build()?;
/// let layer = SessionLayer::new(config);
/// // axum: Router::new().route(...).layer(layer)
/// // tower: ServiceBuilder::new().layer(layer).service(svc)
/// # let _ = layer;
/// # Ok::<(), sealed_sessions::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: SessionConfig,
}

impl SessionLayer {
    /// A layer that manages sessions as `config` says.
    pub fn new(config: SessionConfig) -> Self {
        SessionLayer { config }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.config.shared),
        }
    }
}

/// The middleware service: puts a [`Session`] into the request extensions, calls the inner
/// service, and sets the session cookie on its response when needed.
///
/// The inner response body must implement [`Default`], for the empty bodies of the 503 and 500
/// responses the middleware answers with on its own.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let now = shared.now();
        // Everything read from the request happens here, so no future holds a borrow of it.
        let client = if shared.registry.is_some() {
            ClientInfo {
                ip: shared.client_ip.client_ip(req.headers(), req.extensions()),
                user_agent: req.headers().get(USER_AGENT).cloned(),
            }
        } else {
            ClientInfo::default()
        };
        let mut loading = Loading::new(Arc::clone(shared), now, client);
        let (settled, mut seen) = open_cookies(shared, req.headers(), now, &mut loading);
        let state = match settled {
            // The usual case, settled without I/O: no boxed future, and the inner service that
            // was polled ready is the one called.
            Settled::Valid(valid) => {
                let session = loading.finish(valid, seen);
                req.extensions_mut().insert(session.clone());
                State::Inner {
                    future: self.inner.call(req),
                    session,
                }
            }
            Settled::Unavailable(retry_after) => State::Ready {
                response: Some(unavailable(retry_after)),
            },
            Settled::AskRegistry(pending) => {
                // The clone is the one that was not polled ready; keep it for the next call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(shared);
                State::Registry {
                    future: Box::pin(async move {
                        let valid =
                            match validate(&shared, loading.buf(), pending, now, &mut seen).await {
                                Ok(valid) => valid,
                                Err(retry_after) => return Ok(unavailable(retry_after)),
                            };
                        let session = loading.finish(valid, seen);
                        req.extensions_mut().insert(session.clone());
                        let res = inner.call(req).await?;
                        Ok(save(&session, res))
                    }),
                }
            }
        };
        ResponseFuture { state }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`SessionService`] response: the inner service's future, followed by
    /// saving the session into its response.
    ///
    /// A request whose session is settled without I/O (no cookie, a stateless session, or a
    /// registry cache hit) polls the inner future in place; only a registry read is boxed.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner {
            #[pin]
            future: F,
            session: Session,
        },
        Registry {
            future: BoxFuture<Result<Response<B>, E>>,
        },
        Ready {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, session } => match future.poll(cx) {
                Poll::Ready(Ok(res)) => Poll::Ready(Ok(save(session, res))),
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => Poll::Pending,
            },
            StateProj::Registry { future } => future.as_mut().poll(cx),
            StateProj::Ready { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => panic!("ResponseFuture polled after completion"),
            },
        }
    }
}

impl<F, B, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Adds the session cookie to `res` if the session needs one.
fn save<B: Default>(session: &Session, mut res: Response<B>) -> Response<B> {
    match session.save() {
        Ok(Saved {
            cookie: None,
            accessed,
            ..
        }) => {
            // The handler read the session, so the response depends on the request's cookie
            // even if none is set (Django's session middleware does the same). Its
            // Cache-Control is the handler's to choose.
            if accessed {
                vary_cookie(res.headers_mut());
            }
            res
        }
        Ok(Saved {
            cookie: Some(cookie),
            more,
            ..
        }) => {
            let headers = res.headers_mut();
            headers.append(SET_COOKIE, cookie);
            // The other chunks of a split session, and removals of chunks it no longer uses.
            if !more.is_empty() {
                for line in more {
                    headers.append(SET_COOKIE, line);
                }
            }
            vary_cookie(headers);
            no_store(headers);
            res
        }
        Err(SaveError::Unregistered) => {
            // Login or renewal did not register: a cookie would be refused on the next request,
            // so send none and let the client retry.
            unavailable(std::time::Duration::from_secs(1))
        }
        Err(SaveError::Seal(err)) => {
            tracing::error!(error = %err, "the session cannot be saved; answering 500");
            status_only(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(SaveError::Render) => {
            tracing::error!("the session cookie did not render as a header; answering 500");
            status_only(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Whether a header `name` of `headers` lists `token` (or `*`).
fn lists(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// `Vary: Cookie`, appended unless already covered, so that no cache serves a response made
/// for one visitor's cookie to another.
fn vary_cookie(headers: &mut HeaderMap) {
    if !lists(headers, VARY, "cookie") {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

/// `Cache-Control: no-store` (unless the response already says it), for a response that sets
/// a cookie, so that no cache stores the cookie.
fn no_store(headers: &mut HeaderMap) {
    if !lists(headers, CACHE_CONTROL, "no-store") {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn status_only<B: Default>(status: StatusCode) -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn unavailable<B: Default>(retry_after: std::time::Duration) -> Response<B> {
    let mut res = status_only(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_appended_and_no_store_kept() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60"),
        );
        vary_cookie(&mut h);
        no_store(&mut h);
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
        assert_eq!(h[CACHE_CONTROL], "no-store");

        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("cookie, accept"));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        vary_cookie(&mut h);
        no_store(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        assert_eq!(h[CACHE_CONTROL], "no-store, no-cache");
    }
}
