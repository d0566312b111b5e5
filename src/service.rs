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

use http::header::{HeaderValue, CACHE_CONTROL, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{SessionConfig, Shared};
use crate::load::{open_cookies, validate, Settled};
use crate::session::{ClientInfo, SaveError, Saved, Session};

mod plain_http;
mod response_headers;

use plain_http::PlainHttpPage;
use response_headers::{no_store, vary_cookie};

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
        let (settled, mut seen) = open_cookies(shared, req.headers(), now);
        // A browser that sent no cookie of ours may be one that drops it: see `plain_http.rs`.
        let plain_http = if !seen.present && shared.cookie.secure {
            PlainHttpPage::of(&req)
        } else {
            None
        };
        // Each arm builds the response future where it is returned: the inner future is
        // usually large (a handler's whole state), and a move of it cost ~120 instructions.
        match settled {
            // The usual case, settled without I/O: no boxed future, and the inner service that
            // was polled ready is the one called.
            Settled::Valid(valid) => {
                let session = Session::loaded(Arc::clone(shared), now, client, valid, seen);
                req.extensions_mut().insert(session.clone());
                ResponseFuture {
                    state: State::Inner {
                        future: self.inner.call(req),
                        session,
                        plain_http,
                    },
                }
            }
            Settled::Unavailable(retry_after) => ResponseFuture {
                state: State::Ready {
                    response: Some(unavailable(retry_after)),
                },
            },
            Settled::AskRegistry(pending) => {
                // The clone is the one that was not polled ready; keep it for the next call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(shared);
                ResponseFuture {
                    state: State::Registry {
                        future: Box::pin(async move {
                            let valid = match validate(&shared, pending, now, &mut seen).await {
                                Ok(valid) => valid,
                                Err(retry_after) => return Ok(unavailable(retry_after)),
                            };
                            let session = Session::loaded(shared, now, client, valid, seen);
                            req.extensions_mut().insert(session.clone());
                            let res = inner.call(req).await?;
                            Ok(save(&session, res, None))
                        }),
                    },
                }
            }
        }
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
            // The plain-http page the request came from, if it plainly did.
            plain_http: Option<Box<PlainHttpPage>>,
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
            StateProj::Inner {
                future,
                session,
                plain_http,
            } => match future.poll(cx) {
                Poll::Ready(Ok(res)) => Poll::Ready(Ok(save(session, res, plain_http.as_deref()))),
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

/// Adds the session cookie to `res` if the session needs one. `plain_http`: the plain-http page
/// the request came from, if it plainly did (see `plain_http.rs`).
fn save<B: Default>(
    session: &Session,
    mut res: Response<B>,
    plain_http: Option<&PlainHttpPage>,
) -> Response<B> {
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
            if let Some(page) = plain_http {
                page.warn(session.shared());
            }
            let headers = res.headers_mut();
            headers.append(SET_COOKIE, cookie);
            // The other chunks of a split session, and removals of chunks it no longer uses.
            for line in more {
                headers.append(SET_COOKIE, line);
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
