//! The demo in a real headless Chromium (issue 5): alice signs in from two browser profiles,
//! one signs the other out from the devices page, and a cookie copied before logout is refused.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints why it skipped,
//! unless `SEALED_SESSIONS_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
//! Screenshots land in `target/e2e-artifacts/`.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod browser_support;
mod demo_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use browser_support::{
    artifacts_dir, browser_required, eventually, fetch, save_screenshot, ChromeDriver, Tools,
    REQUIRE_ENV,
};
use demo_support::{Demo, COOKIE_NAME};
use fantoccini::{Client, Locator};
use http::StatusCode;

/// How long one page may take to show what the test waits for.
const WAIT: Duration = Duration::from_secs(20);
/// A hung browser fails the test instead of stalling the suite.
const WHOLE_FLOW: Duration = Duration::from_secs(180);

#[tokio::test]
async fn two_devices_sign_out_the_other_and_a_copied_cookie_is_refused() {
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(reason) if browser_required() => panic!("{REQUIRE_ENV}=1 but {reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;
    let a = driver.browser().await;
    let b = driver.browser().await;

    // In a task, so a failed assertion still lets both sessions be closed below.
    let mut flow = tokio::spawn(flow(demo.addr, a.client.clone(), b.client.clone()));
    let outcome = tokio::time::timeout(WHOLE_FLOW, &mut flow).await;
    if outcome.is_err() {
        flow.abort();
    }
    a.close().await;
    b.close().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the browser flow did not finish: {e}"),
        Err(_) => panic!(
            "the browser flow took over {WHOLE_FLOW:?}; chromedriver said:\n{}",
            driver.log()
        ),
    }
}

async fn flow(addr: SocketAddr, a: Client, b: Client) {
    let base = format!("http://{addr}");
    let artifacts = artifacts_dir();

    sign_in(&a, &base).await;
    sign_in(&b, &base).await;
    save_screenshot(&a, &artifacts.join("demo-signed-in.png")).await;
    let a_id = session_id(&a).await;
    let b_id = session_id(&b).await;
    assert_ne!(a_id, b_id, "two profiles, two sessions");

    // Each profile lists both sessions and marks its own as this device. A's page stays open.
    for (browser, own) in [(&b, &b_id), (&a, &a_id)] {
        browser.goto(&format!("{base}/sessions")).await.unwrap();
        let mut listed = listed_sessions(browser).await.unwrap();
        listed.sort();
        let mut expected = vec![a_id.clone(), b_id.clone()];
        expected.sort();
        assert_eq!(listed, expected);
        let this = browser.find(Locator::Css("tr.this-device")).await.unwrap();
        assert_eq!(
            this.attr("data-session-id").await.unwrap().as_ref(),
            Some(own)
        );
        let row = this.text().await.unwrap();
        assert!(row.contains("This device"), "{row}");
        assert!(
            row.contains("127.0.0.1"),
            "the client address is listed: {row}"
        );
    }
    save_screenshot(&a, &artifacts.join("demo-devices.png")).await;
    let b_cookie = cookie_pair(&b).await;

    // A signs B out with the Revoke button in B's row.
    let revoke = format!(r#"tr[data-session-id="{b_id}"] button.revoke"#);
    let revoke = a.find(Locator::Css(&revoke)).await.unwrap();
    assert_eq!(revoke.text().await.unwrap(), "Revoke");
    revoke.click().await.unwrap();
    let only_a = vec![a_id.clone()];
    eventually("A's devices page to list only A", WAIT, || async {
        Ok((listed_sessions(&a).await? == only_a).then_some(()))
    })
    .await;

    // B, reloading, is signed out: the login form, no logout button, /api/me 401.
    b.refresh().await.unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    assert!(b.find(Locator::Id("logout")).await.is_err());
    assert_eq!(fetch(&b, "/api/me").await.0, 401);
    // Refused by the server, not just dropped by the browser.
    assert_eq!(me(addr, &b_cookie).await, StatusCode::UNAUTHORIZED);

    // A copies its cookie, which works until A logs out, and is refused after.
    let a_cookie = cookie_pair(&a).await;
    assert_eq!(me(addr, &a_cookie).await, StatusCode::OK);
    a.goto(&base).await.unwrap();
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    // The signed-out page may start a fresh anonymous session (for its CSRF token), never A's.
    if let Ok(now) = a.get_named_cookie(COOKIE_NAME).await {
        assert_ne!(format!("{COOKIE_NAME}={}", now.value()), a_cookie);
    }
    assert_eq!(fetch(&a, "/api/me").await.0, 401);
    assert_eq!(me(addr, &a_cookie).await, StatusCode::UNAUTHORIZED);
}

/// Signs in as alice through the real login form.
async fn sign_in(browser: &Client, base: &str) {
    browser.goto(base).await.unwrap();
    let form = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    form.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    form.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("correct-horse")
        .await
        .unwrap();
    form.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("logout"))
        .await
        .unwrap();
    let heading = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Signed in as alice");
}

/// The session id `/api/me` reports to this browser.
async fn session_id(browser: &Client) -> String {
    let (status, body) = fetch(browser, "/api/me").await;
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["user"], "alice");
    me["session_id"].as_str().unwrap().to_owned()
}

/// The `data-session-id`s of the devices table, in page order.
async fn listed_sessions(browser: &Client) -> Result<Vec<String>, fantoccini::error::CmdError> {
    let mut ids = Vec::new();
    for row in browser
        .find_all(Locator::Css("table#sessions tr[data-session-id]"))
        .await?
    {
        ids.extend(row.attr("data-session-id").await?);
    }
    Ok(ids)
}

/// The browser's session cookie as a `Cookie` header pair, copied out of the profile.
async fn cookie_pair(browser: &Client) -> String {
    let cookie = browser.get_named_cookie(COOKIE_NAME).await.unwrap();
    assert!(
        cookie.http_only().unwrap_or(false),
        "the demo cookie is HttpOnly"
    );
    format!("{COOKIE_NAME}={}", cookie.value())
}

/// `GET /api/me` outside any browser, with just this cookie.
async fn me(addr: SocketAddr, cookie: &str) -> StatusCode {
    support::send(addr, "GET", "/api/me", &[cookie.as_bytes()], &[], None)
        .await
        .status
}
