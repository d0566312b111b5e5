//! The warning that a `Secure` session cookie went to a plain-http page, where a browser drops
//! it: a login there silently does not stick.
//!
//! The evidence is the request's `Origin` (sent with form posts, such as a login) or else its
//! `Referer`, when it starts with `http://` and names a host other than this machine (a browser
//! accepts a `Secure` cookie from `http://localhost`, which counts as secure). Both are the
//! client's word, so a forged one must not silence the warning about the real thing. Two kinds
//! are told apart: a page of this very site (its host is the request's own `Host`, or `:authority`),
//! which is what a deployment served over plain http produces, and a page of another host
//! (a site posting to us from plain http, or a deployment whose proxy rewrites `Host`). Each kind
//! is warned of at most once per [`WARN_EVERY`], so a forged `Origin` naming another host cannot
//! use up the warning about this site's own pages, a forgery of either kind delays the real one
//! by an hour at most (and is logged itself), and no flood of requests floods the log.

use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use http::header::{HOST, ORIGIN, REFERER};
use http::{HeaderMap, Request};

use crate::config::Shared;

/// The least time between two warnings of one kind.
const WARN_EVERY: Duration = Duration::from_secs(60 * 60);

/// The plain-http page a request plainly came from.
#[derive(Debug)]
pub(super) struct PlainHttpPage {
    /// Its scheme and authority (`http://example.com:8080`), as the request named them.
    page: Box<str>,
    /// It is a page of the host the request was sent to.
    own: bool,
}

impl PlainHttpPage {
    /// The page `req` plainly came from over plain http, if it did; boxed, as it rides in the
    /// response future. `None` when nothing says so: behind a TLS-terminating proxy the page
    /// is `https://`.
    pub(super) fn of<B>(req: &Request<B>) -> Option<Box<Self>> {
        let authority = match req.uri().authority() {
            Some(authority) => Some(authority.as_str()),
            None => req.headers().get(HOST).and_then(|h| h.to_str().ok()),
        };
        page_of(req.headers(), authority).map(Box::new)
    }

    /// Logs that a `Secure` cookie went to this page, unless a page of its kind was warned of
    /// less than [`WARN_EVERY`] ago.
    pub(super) fn warn(&self, shared: &Shared) {
        let now = shared
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .max(1);
        let last = &shared.plain_http_warned[usize::from(self.own)];
        let previous = last.load(Ordering::Relaxed);
        if previous != 0 && now < previous.saturating_add(WARN_EVERY.as_secs()) {
            return;
        }
        // One of concurrent requests wins the slot and warns.
        if last
            .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let page = &*self.page;
        if self.own {
            tracing::warn!(
                page,
                "this site's own page is served over plain http, and a Secure session cookie \
                 was sent in answer to it: browsers drop it, so the session (a login, say) will \
                 not stick. Serve the site over https, or, on a development machine only, build \
                 the config with insecure_http_for_development()"
            );
        } else {
            tracing::warn!(
                page,
                "a Secure session cookie was sent in answer to a request from a plain-http page \
                 of another host: browsers drop it, so the session (a login, say) will not \
                 stick. If that page is this site behind a proxy, serve it over https, or, on a \
                 development machine only, build the config with \
                 insecure_http_for_development()"
            );
        }
    }
}

/// The page named by `headers` if it is a plain-http one on a host other than this machine, and
/// whether its authority is `authority` (the request's own), case-insensitively.
fn page_of(headers: &HeaderMap, authority: Option<&str>) -> Option<PlainHttpPage> {
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
    let page_authority = page[SCHEME.len()..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = match page_authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => page_authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(10)..)
            .is_some_and(|end| end.eq_ignore_ascii_case(".localhost"))
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback && !host.is_empty()).then(|| PlainHttpPage {
        page: page[..SCHEME.len() + page_authority.len()].into(),
        own: authority.is_some_and(|a| a.eq_ignore_ascii_case(page_authority)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::header::{HeaderName, HeaderValue, SET_COOKIE};
    use http::{Request, Response};
    use tower_layer::Layer;

    use super::*;
    use crate::config::SessionConfig;
    use crate::service::SessionLayer;
    use crate::Session;

    /// The page only, as the warning names it.
    fn plain_http_page(h: &HeaderMap) -> Option<Box<str>> {
        page_of(h, None).map(|p| p.page)
    }

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
        // A page of the host the request went to, or of another.
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_static("http://Example.com:8080"));
        assert!(page_of(&h, Some("example.com:8080")).unwrap().own);
        assert!(!page_of(&h, Some("example.com")).unwrap().own);
        assert!(!page_of(&h, None).unwrap().own);
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

    /// A request with a forged `Origin` (another site's plain-http page) must not use up the
    /// warning about this site's own pages being served over plain http; and the warnings stay
    /// bounded: one per kind per hour, however many requests say so.
    #[test]
    fn a_forged_origin_does_not_use_up_the_plain_http_warning() {
        use std::sync::atomic::Ordering::SeqCst;
        use std::time::{Duration, SystemTime};
        use tower::ServiceExt;
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let now = Arc::new(std::sync::Mutex::new(SystemTime::now()));
        let clock = Arc::clone(&now);
        let config = SessionConfig::builder(crate::Key::generate())
            .clock(move || *clock.lock().unwrap())
            .build()
            .unwrap();
        let svc =
            SessionLayer::new(config).layer(tower::service_fn(|req: Request<()>| async move {
                let session = req.extensions().get::<Session>().unwrap().clone();
                session.insert("a", &1).unwrap();
                Ok::<_, std::convert::Infallible>(Response::new(()))
            }));
        let send = |origin: &str| {
            let req = Request::builder()
                .uri("/login")
                .header(http::header::HOST, "www.example.com")
                .header(ORIGIN, origin)
                .body(())
                .unwrap();
            let res = rt.block_on(svc.clone().oneshot(req)).unwrap();
            assert!(res.headers().contains_key(SET_COOKIE));
        };
        tracing::subscriber::with_default(Warnings(count.clone()), || {
            // An attacker's requests first, from a page of their own.
            send("http://evil.example");
            send("http://evil.example");
            assert_eq!(count.load(SeqCst), 1);
            // This site's own page over plain http: still warned of.
            send("http://www.example.com");
            assert_eq!(count.load(SeqCst), 2, "the real warning was used up");
            send("http://WWW.example.com");
            send("http://evil.example");
            assert_eq!(count.load(SeqCst), 2, "once per kind per hour");
            *now.lock().unwrap() += Duration::from_secs(3600);
            send("http://evil.example");
            send("http://www.example.com");
            assert_eq!(count.load(SeqCst), 4, "again an hour later");
        });
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
