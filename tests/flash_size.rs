//! Flash messages count against the session's size when they are queued (issue 21): a flash
//! that would not fit is refused at `Session::flash` with the error `insert` gives, and one
//! that fits is counted by later `insert`s and `remaining_bytes`, so that sealing the response
//! never fails for it (which was a 500).
#![cfg(feature = "hyper")]

use std::convert::Infallible;

use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
use tower::{Layer, ServiceExt};

/// Runs `f` on the session of one request carrying `cookie`; returns the response's status,
/// the handler's text, and the `Cookie` header a browser would send next.
async fn request(
    layer: &SessionLayer,
    cookie: &str,
    f: impl Fn(&Session) -> String + Clone + Send + 'static,
) -> (StatusCode, String, String) {
    let svc = layer.layer(tower::service_fn(move |req: Request<()>| {
        let f = f.clone();
        async move {
            let session = req.extensions().get::<Session>().unwrap();
            Ok::<_, Infallible>(Response::new(f(session)))
        }
    }));
    let mut req = Request::new(());
    if !cookie.is_empty() {
        req.headers_mut().insert(COOKIE, cookie.parse().unwrap());
    }
    let res = svc.oneshot(req).await.unwrap();
    let jar: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .filter(|c| !c.value().is_empty())
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect();
    (res.status(), res.body().clone(), jar.join("; "))
}

fn layer() -> SessionLayer {
    SessionLayer::new(
        SessionConfig::builder(KeyRing::new(Key::generate()))
            .build()
            .unwrap(),
    )
}

fn flashes(session: &Session) -> String {
    let messages: Vec<String> = session
        .take_flashes()
        .into_iter()
        .map(|f| f.message)
        .collect();
    messages.join(",")
}

#[tokio::test]
async fn a_flash_that_does_not_fit_is_refused_when_queued() {
    let layer = layer();
    let (status, outcome, jar) = request(&layer, "", |session| {
        // Full to the last byte (the key, the quotes and two length bytes take 10).
        let room = session.remaining_bytes();
        session.insert("notes", &"x".repeat(room - 10)).unwrap();
        format!("{:?}", session.flash("info", "y".repeat(50)))
    })
    .await;
    assert_eq!(status, StatusCode::OK, "the session is saved without it");
    assert!(outcome.starts_with("Err(TooLarge"), "{outcome}");
    let (_, next, _) = request(&layer, &jar, |s| {
        let notes = s.get::<String>("notes").unwrap().map_or(0, |n| n.len());
        format!("{notes} [{}]", flashes(s))
    })
    .await;
    assert!(next.ends_with(" []") && !next.starts_with("0 "), "{next}");
}

#[tokio::test]
async fn queued_flashes_count_against_later_inserts() {
    let layer = layer();
    let (status, outcome, jar) = request(&layer, "", |session| {
        let queued = format!("{:?}", session.flash("info", "saved"));
        let room = session.remaining_bytes();
        let over = session.insert("notes", &"x".repeat(room - 9));
        let fits = session.insert("notes", &"x".repeat(room - 10));
        format!("{queued} {} {fits:?}", over.is_err())
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome, "Ok(()) true Ok(())");
    let (_, next, _) = request(&layer, &jar, flashes).await;
    assert_eq!(next, "saved");
}
