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

use http::header::{
    HeaderValue, CACHE_CONTROL, ORIGIN, REFERER, RETRY_AFTER, SET_COOKIE, USER_AGENT,
};
use http::{HeaderMap, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{SessionConfig, Shared};
use crate::load::{open_cookies, validate, Settled};
use crate::session::{ClientInfo, SaveError, Saved};

mod response_headers;

use crate::Session;
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
        // A browser that sent no cookie of ours may be one that drops it: see `plain_http_page`.
        let plain_http = if !seen.present && shared.cookie.secure {
            plain_http_page(req.headers())
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
            plain_http: Option<Box<str>>,
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
/// the request came from, if it plainly did (see `plain_http_page`).
fn save<B: Default>(
    session: &Session,
    mut res: Response<B>,
    plain_http: Option<&str>,
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
                warn_plain_http(session, page);
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

/// The page a request plainly came from over plain http, on a host other than this machine: the
/// `Origin` (sent with form posts, such as a login), else the `Referer`, when it starts with
/// `http://`. A browser drops a `Secure` cookie set in answer to such a request (it accepts one
/// from `http://localhost`, which counts as secure), so a login there silently does not stick.
/// `None` when nothing says so: behind a TLS-terminating proxy the page is `https://`.
fn plain_http_page(headers: &HeaderMap) -> Option<Box<str>> {
    const SCHEME: &str = "http://";
    let page = headers
        .get(ORIGIN)
        .or_else(|| headers.get(REFERER))?
        .to_str()
        .ok()?;
    if !page
        .get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
    {
        return None;
    }
    let authority = page[SCHEME.len()..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(10)..)
            .is_some_and(|end| end.eq_ignore_ascii_case(".localhost"))
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback && !host.is_empty()).then(|| page[..SCHEME.len() + authority.len()].into())
}

/// Logs, once per configuration, that a `Secure` cookie went to a plain-http page.
fn warn_plain_http(session: &Session, page: &str) {
    use std::sync::atomic::Ordering;
    if !session
        .shared()
        .warned_plain_http
        .swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            page,
            "a Secure session cookie was sent in answer to a request from a plain-http page: \
             browsers drop it, so the session (a login, say) will not stick. Serve the site over \
             https, or, on a development machine only, build the config with \
             insecure_http_for_development()"
        );
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
    use http::HeaderName;

    use super::*;

    #[test]
    fn plain_http_pages_are_told_from_https_and_loopback() {
        let page = |name: HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).unwrap());
            plain_http_page(&h)
        };
        for (origin, expected) in [
            ("http://example.com", Some("http://example.com")),
            ("HTTP://example.com:8080", Some("HTTP://example.com:8080")),
            ("http://192.168.1.5:3000", Some("http://192.168.1.5:3000")),
            ("http://[2001:db8::1]:80", Some("http://[2001:db8::1]:80")),
            ("https://example.com", None),
            ("http://localhost:3000", None),
            ("http://LOCALHOST", None),
            ("http://app.localhost", None),
            ("http://127.0.0.1:3000", None),
            ("http://127.9.9.9", None),
            ("http://[::1]:3000", None),
            ("null", None),
            ("http://", None),
            ("ht", None),
            ("", None),
        ] {
            assert_eq!(page(ORIGIN, origin).as_deref(), expected, "{origin:?}");
        }
        assert_eq!(
            page(REFERER, "http://example.com/login?next=/").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(plain_http_page(&HeaderMap::new()), None);
        // Not UTF-8: nothing is said, nothing panics.
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_bytes(b"http://\xff").unwrap());
        assert_eq!(plain_http_page(&h), None);
    }

    /// Counts `WARN` events.
    struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_secure_cookie_for_a_plain_http_page_is_warned_of_once() {
        use tower::ServiceExt;
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = SessionConfig::builder(crate::Key::generate())
            .build()
            .unwrap();
        let svc =
            SessionLayer::new(config).layer(tower::service_fn(|req: Request<()>| async move {
                let session = req.extensions().get::<Session>().unwrap().clone();
                session.insert("a", &1).unwrap();
                Ok::<_, std::convert::Infallible>(Response::new(()))
            }));
        let send = |origin: &str| {
            let req = Request::builder().header(ORIGIN, origin).body(()).unwrap();
            let res = rt.block_on(svc.clone().oneshot(req)).unwrap();
            assert!(res.headers().contains_key(SET_COOKIE));
        };
        tracing::subscriber::with_default(Warnings(count.clone()), || {
            send("http://localhost:3000");
            send("https://example.com");
            assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
            send("http://example.com");
            send("http://example.com");
            send("http://192.168.1.5");
        });
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1, "once");
    }
}
