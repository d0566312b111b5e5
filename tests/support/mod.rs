//! A real HTTP server on 127.0.0.1 with the session layer, and a minimal client.
#![allow(dead_code)] // each test file uses a different part

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sealed_sessions::{PeerAddr, Session, SessionConfigBuilder, SessionLayer};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};

/// A clock the test moves by hand, starting at a fixed instant.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub const START: u64 = 1_800_000_000;

    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(Self::START + self.0.load(Ordering::SeqCst))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }

    /// Sets the clock back (no earlier than it started).
    #[allow(dead_code)] // not every test binary that includes this module turns clocks back
    pub fn rewind(&self, by: Duration) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |at| {
                Some(at.saturating_sub(by.as_secs()))
            });
    }

    /// Puts this clock into a config builder.
    pub fn install(&self, builder: SessionConfigBuilder) -> SessionConfigBuilder {
        let clock = self.clone();
        builder.clock(move || clock.now())
    }
}

/// The routes every test server has; each answers with a short text body.
///
/// `/get/K`, `/set/K/V` (V stored as a JSON string), `/remove/K`, `/clear`, `/id`, `/user`,
/// `/login/U`, `/remember-login/U`, `/logout`, `/renew`, `/remember`, `/forget`, `/flash/M`, `/flashes`, `/big`, `/nothing`.
pub async fn routes(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = req
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer puts a Session into every request");
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = match parts.as_slice() {
        ["get", k] => match session.get::<String>(k) {
            Ok(Some(v)) => v,
            Ok(None) => "none".into(),
            Err(e) => format!("error: {e}"),
        },
        ["set", k, v] => {
            session.insert(k, v).unwrap();
            "ok".into()
        }
        ["remove", k] => session.remove(k).to_string(),
        ["clear"] => {
            session.clear();
            "ok".into()
        }
        ["id"] => session.id().to_string(),
        ["user"] => session.user().unwrap_or_else(|| "anonymous".into()),
        ["login", u] => match session.login(*u).await {
            Ok(()) => session.id().to_string(),
            Err(e) => format!("login failed: {e}"),
        },
        ["logout"] => match session.logout().await {
            Ok(()) => "bye".into(),
            Err(e) => format!("logout failed: {e}"),
        },
        ["renew"] => match session.renew().await {
            Ok(()) => session.id().to_string(),
            Err(e) => format!("renew failed: {e}"),
        },
        ["remember"] => {
            session.set_persistent(true);
            "ok".into()
        }
        ["forget"] => {
            session.set_persistent(false);
            "ok".into()
        }
        ["remember-login", u] => {
            session.set_persistent(true);
            match session.login(*u).await {
                Ok(()) => session.id().to_string(),
                Err(e) => format!("login failed: {e}"),
            }
        }
        ["flash", m] => match session.flash("info", *m) {
            Ok(()) => "ok".into(),
            Err(e) => format!("error: {e}"),
        },
        ["flashes"] => session
            .take_flashes()
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
            .join(","),
        ["big"] => match session.insert("big", &"x".repeat(5000)) {
            Ok(()) => "ok".into(),
            Err(e) => format!("error: {e}"),
        },
        _ => "nothing".into(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves `layer` around [`routes`] on a fresh loopback port, with the peer address in the
/// request extensions as a real server would put it. The server lives as long as the runtime.
pub async fn serve(layer: SessionLayer) -> SocketAddr {
    serve_fn(layer, routes).await
}

/// Serves `layer` around the handler `f` on a fresh loopback port, as [`serve`] does.
pub async fn serve_fn<F, Fut>(layer: SessionLayer, f: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let svc = layer.layer(tower::service_fn(f.clone())).map_request(
                move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    req
                },
            );
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    addr
}

/// What a response brought back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Set-Cookie` lines for `name`.
    pub fn set_cookies(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .filter(|l| l.starts_with(&format!("{name}=")))
            .collect()
    }

    /// The one `Set-Cookie` line for `name`, parsed.
    pub fn cookie(&self, name: &str) -> Option<cookie::Cookie<'static>> {
        let lines = self.set_cookies(name);
        assert!(lines.len() <= 1, "more than one Set-Cookie: {lines:?}");
        lines
            .first()
            .map(|l| cookie::Cookie::parse(l.clone()).unwrap())
    }

    /// The `name=value` pair to send back, panicking if there was no cookie.
    pub fn cookie_pair(&self, name: &str) -> String {
        let c = self.cookie(name).expect("a Set-Cookie");
        format!("{}={}", c.name(), c.value())
    }
}

/// Sends `GET path` with these `Cookie` header values (one header each) and extra headers.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    cookies: &[&[u8]],
    extra: &[(&str, &str)],
) -> Reply {
    send(addr, "GET", path, cookies, extra, None).await
}

/// A request with these `Cookie` header values (one header each) and extra headers; a `form`
/// becomes an `application/x-www-form-urlencoded` body.
pub fn build_request(
    method: &str,
    path: &str,
    cookies: &[&[u8]],
    extra: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for c in cookies {
        req = req.header(COOKIE, HeaderValue::from_bytes(c).unwrap());
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = match form {
        Some(fields) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(serde_urlencoded::to_string(fields).unwrap())
        }
        None => Bytes::new(),
    };
    req.body(Full::new(body)).unwrap()
}

/// Sends one request on a new connection; see [`build_request`].
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookies: &[&[u8]],
    extra: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = build_request(method, path, cookies, extra, form);
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `GET path` with at most one cookie pair.
pub async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    match cookie {
        Some(c) => get_with(addr, path, &[c.as_bytes()], &[]).await,
        None => get_with(addr, path, &[], &[]).await,
    }
}
