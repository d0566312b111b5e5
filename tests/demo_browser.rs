//! The demo in a real headless Chromium (issue 5): alice signs in from two browser profiles,
//! one signs the other out from the devices page (and the other is told why), and a cookie
//! copied before logout is refused. And the devices page at a phone's width (issue 14): nothing
//! wider than the screen, every button inside its card; its screenshot is `docs/devices-390.png`.
//! And sudo mode (issue 24): a sign-in older than the window is asked for the password before
//! "Sign out everywhere", and not asked again right after it re-authenticated.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints why it skipped,
//! unless `SEALED_SESSIONS_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
//! Screenshots land in `target/e2e-artifacts/`.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod browser_support;
mod demo_support;
mod skip;
mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use browser_support::{
    artifacts_dir, browser_required, eventually, fetch, quit, save_screenshot, ChromeDriver, Tools,
    REQUIRE_ENV,
};
use demo_support::{Demo, COOKIE_NAME};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use http::StatusCode;

/// How long one page may take to show what the test waits for.
const WAIT: Duration = Duration::from_secs(20);
/// A hung browser fails the test instead of stalling the suite.
const WHOLE_FLOW: Duration = Duration::from_secs(180);
/// What a browser signed out by another is told.
const SIGNED_OUT_ELSEWHERE: &str = "You were signed out from another device.";
/// 21 minutes: past the demo's default sudo window of 20 and short of its idle timeout of 30.
const PAST_THE_WINDOW: u64 = 21 * 60;

#[tokio::test]
async fn two_devices_sign_out_the_other_and_a_copied_cookie_is_refused() {
    in_browsers(2, |addr, browsers| async move {
        let [a, b] = <[Client; 2]>::try_from(browsers).unwrap();
        flow(addr, a, b).await;
    })
    .await;
}

#[tokio::test]
async fn the_devices_page_fits_a_phone_screen() {
    in_browsers(1, |addr, mut browsers| async move {
        phone(addr, browsers.remove(0)).await;
    })
    .await;
}

#[tokio::test]
async fn an_old_sign_in_is_asked_for_the_password_before_signing_out_everywhere() {
    in_browsers_on(
        || Demo::start_with_clock(&[]),
        1,
        |demo, mut browsers| async move {
            sudo_walk(demo, browsers.remove(0)).await;
        },
    )
    .await;
}

/// Remember me, as a person meets it: sign in with the box ticked, quit the browser, start it
/// again on the same profile: still signed in, in the same session. Without the box, the
/// restarted browser is signed out (a browser-session cookie does not outlive the browser).
#[tokio::test]
async fn remember_me_survives_a_browser_restart_and_a_plain_sign_in_does_not() {
    let Some(tools) = tools() else {
        return;
    };
    let demo = Demo::start();
    let driver = ChromeDriver::start(&tools).await;
    let base = format!("http://{}", demo.addr);
    let run = async {
        for remember in [true, false] {
            let profile = tempfile::tempdir().unwrap();
            let browser = driver.browser_in(profile.path()).await;
            sign_in_as(&browser, &base, remember).await;
            let before = session_id(&browser).await;
            quit(browser).await;

            let browser = driver.browser_in(profile.path()).await;
            browser.goto(&base).await.unwrap();
            let (status, body) = fetch(&browser, "/api/me").await;
            let heading = browser.find(Locator::Css("h1")).await.unwrap();
            let heading = heading.text().await.unwrap();
            // A remembered cookie lasts days, not the demo's 30-minute idle timeout.
            let expires = browser
                .get_named_cookie(COOKIE_NAME)
                .await
                .ok()
                .and_then(|c| c.expires_datetime());
            quit(browser).await;
            if let Some(expires) = expires {
                let left = expires - cookie::time::OffsetDateTime::now_utc();
                assert!(left > cookie::time::Duration::days(6), "expires in {left}");
                println!("the remembered cookie expires in {left}");
            } else {
                assert!(!remember, "a remembered cookie has an expiry");
            }
            if remember {
                assert_eq!(status, 200, "remembered across a restart: {body}");
                assert!(body.contains(&before), "the same session: {body}");
                assert_eq!(heading, "Signed in as alice");
            } else {
                assert_eq!(status, 401, "a browser-session cookie is gone: {body}");
            }
        }
    };
    if tokio::time::timeout(WHOLE_FLOW, run).await.is_err() {
        panic!(
            "the restart flow took over {WHOLE_FLOW:?}; chromedriver said:\n{}",
            driver.log()
        );
    }
}

/// The tools, or `None` after saying why the test skips (a failure if a browser is required).
fn tools() -> Option<Tools> {
    match Tools::find() {
        Ok(tools) => Some(tools),
        Err(reason) if browser_required() => panic!("{REQUIRE_ENV}=1 but {reason}"),
        Err(reason) => {
            skip::skipped(&reason);
            None
        }
    }
}

/// Runs `flow` on a fresh demo with `count` browsers (each its own profile), closing them
/// whatever happens; prints why and returns if Chromium is missing and not required.
async fn in_browsers<F, Fut>(count: usize, flow: F)
where
    F: FnOnce(SocketAddr, Vec<Client>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_browsers_on(Demo::start, count, move |demo, browsers| {
        flow(demo.addr, browsers)
    })
    .await;
}

/// [`in_browsers`] on the demo `start` starts, which `flow` gets whole (to move its clock).
async fn in_browsers_on<S, F, Fut>(start: S, count: usize, flow: F)
where
    S: FnOnce() -> Demo,
    F: FnOnce(Arc<Demo>, Vec<Client>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(tools) = tools() else {
        return;
    };
    let demo = Arc::new(start());
    let driver = ChromeDriver::start(&tools).await;
    let mut browsers = Vec::new();
    for _ in 0..count {
        browsers.push(driver.browser().await);
    }
    let clients = browsers.iter().map(|b| b.client.clone()).collect();

    // In a task, so a failed assertion still lets the sessions be closed below.
    let mut flow = tokio::spawn(flow(demo.clone(), clients));
    let outcome = tokio::time::timeout(WHOLE_FLOW, &mut flow).await;
    if outcome.is_err() {
        flow.abort();
    }
    for browser in browsers {
        browser.close().await;
    }
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

/// A phone's CSS width (an iPhone 12 to 15).
const PHONE_WIDTH: u32 = 390;
const PHONE_HEIGHT: u32 = 844;

/// Other devices of alice's, signed in over plain HTTP: two browsers a person meets, and one
/// nobody knows whose user agent is as long as the registry keeps.
const OTHER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "",
];

async fn phone(addr: SocketAddr, phone: Client) {
    let base = format!("http://{addr}");
    let unknown = "Some-Unknown-Client/1.0 ".repeat(20);
    for agent in OTHER_AGENTS {
        let agent = if agent.is_empty() { &unknown } else { agent };
        demo_support::Client::new(addr, agent)
            .login("alice", "correct-horse")
            .await;
    }
    phone
        .set_window_size(PHONE_WIDTH, PHONE_HEIGHT)
        .await
        .unwrap();
    sign_in(&phone, &base).await;
    assert_fits(&phone, "the home page").await;

    phone.goto(&format!("{base}/sessions")).await.unwrap();
    phone
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("table#sessions"))
        .await
        .unwrap();
    assert_eq!(listed_sessions(&phone).await.unwrap().len(), 4);
    let text = phone
        .find(Locator::Css("table#sessions"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["Chrome on Linux", "Safari on iPhone", "Firefox on Windows"] {
        assert!(text.contains(name), "{name} missing in {text}");
    }
    assert_fits(&phone, "the devices page").await;

    // The whole page, for the docs: as tall as its content, as wide as the phone. A window
    // cannot grow past the screen, so the page's own viewport is set (Chrome DevTools).
    let height = phone
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap();
    let viewport = serde_json::json!({
        "width": PHONE_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": false,
    });
    phone
        .issue_cmd(Cdp("Emulation.setDeviceMetricsOverride", viewport))
        .await
        .unwrap();
    assert_fits(&phone, "the devices page, full height").await;
    save_screenshot(&phone, &artifacts_dir().join("devices-390.png")).await;
    phone
        .issue_cmd(Cdp(
            "Emulation.clearDeviceMetricsOverride",
            serde_json::json!({}),
        ))
        .await
        .unwrap();

    // Signed out, the sign-in page too.
    phone
        .find(Locator::Id("revoke-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    assert_fits(&phone, "the sign-in page").await;
}

/// A Chrome DevTools command, through chromedriver's own endpoint for them.
#[derive(Debug)]
struct Cdp(&'static str, serde_json::Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.0, "params": self.1 });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Fails unless the page is no wider than the window and every button lies inside its card
/// (and inside its row, in the devices table), as the browser laid them out.
async fn assert_fits(browser: &Client, what: &str) {
    const JS: &str = r#"
        const width = window.innerWidth;
        const problems = [];
        const scroll = document.documentElement.scrollWidth;
        if (scroll > width) problems.push(`the page is ${scroll} px wide in a ${width} px window`);
        const inside = (r, box) => r.left >= box.left - 0.5 && r.right <= box.right + 0.5
            && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
        const buttons = [...document.querySelectorAll("button, a.button")];
        for (const b of buttons) {
            const r = b.getBoundingClientRect();
            const name = `"${b.textContent.trim()}"`;
            if (r.left < 0 || r.right > width) problems.push(`${name} is outside the window`);
            const card = b.closest(".card");
            if (!card) problems.push(`${name} is in no card`);
            else if (!inside(r, card.getBoundingClientRect())) problems.push(`${name} hangs out of its card`);
            const row = b.closest("tr");
            if (row && !inside(r, row.getBoundingClientRect())) problems.push(`${name} hangs out of its row`);
        }
        return { width, buttons: buttons.length, problems };
    "#;
    let report = browser.execute(JS, vec![]).await.unwrap();
    assert_eq!(report["width"], PHONE_WIDTH, "{what}: the window's width");
    assert!(
        report["buttons"].as_u64().unwrap() > 0,
        "{what}: no button found"
    );
    assert_eq!(report["problems"], serde_json::json!([]), "{what}");
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
        // Named as a person names it, with the raw user agent on hover.
        assert!(row.contains("Chrome on Linux"), "{row}");
        let name = this.find(Locator::Css(".browser")).await.unwrap();
        let raw = name.attr("title").await.unwrap().unwrap_or_default();
        assert!(raw.contains("Chrome/"), "{raw}");
        // Listed first.
        assert_eq!(listed_sessions(browser).await.unwrap()[0], *own);
        assert!(
            row.contains("127.0.0.1"),
            "the client address is listed: {row}"
        );
    }
    save_screenshot(&a, &artifacts.join("demo-devices.png")).await;
    let b_cookie = cookie_pair(&b).await;

    // A signs B out with the button in B's row.
    let revoke = format!(r#"tr[data-session-id="{b_id}"] button.revoke"#);
    let revoke = a.find(Locator::Css(&revoke)).await.unwrap();
    assert_eq!(revoke.text().await.unwrap(), "Sign out");
    revoke.click().await.unwrap();
    let only_a = vec![a_id.clone()];
    eventually("A's devices page to list only A", WAIT, || async {
        Ok((listed_sessions(&a).await? == only_a).then_some(()))
    })
    .await;

    // B, reloading, is signed out and told why: the login form, no logout button, /api/me 401.
    b.refresh().await.unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    assert_eq!(notes(&b).await, [SIGNED_OUT_ELSEWHERE]);
    save_screenshot(&b, &artifacts.join("demo-signed-out-elsewhere.png")).await;
    assert!(b.find(Locator::Id("logout")).await.is_err());
    // Said once, not on every page after.
    b.refresh().await.unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    assert!(notes(&b).await.is_empty());
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
    // Signing out here is not being signed out from elsewhere.
    assert!(notes(&a).await.is_empty());
    // The signed-out page may start a fresh anonymous session (for its CSRF token), never A's.
    if let Ok(now) = a.get_named_cookie(COOKIE_NAME).await {
        assert_ne!(format!("{COOKIE_NAME}={}", now.value()), a_cookie);
    }
    assert_eq!(fetch(&a, "/api/me").await.0, 401);
    assert_eq!(me(addr, &a_cookie).await, StatusCode::UNAUTHORIZED);
}

/// Sudo mode as a person meets it, with a sign-in made 21 minutes old by moving the demo's clock
/// (`--clock-offset-file`; no sleeping): "Sign out everywhere" asks for the password (and
/// Cancel leaves everything as it was); so does "Sign out all other devices", which a wrong
/// password does not pass and the right one completes; "Sign out everywhere" right after is
/// not asked again.
async fn sudo_walk(demo: Arc<Demo>, a: Client) {
    let base = demo.url();
    let artifacts = artifacts_dir();
    let mut other = demo_support::Client::new(demo.addr, "Other-Device/1.0");
    other.login("alice", "correct-horse").await;
    sign_in(&a, &base).await;
    demo.set_clock_offset(PAST_THE_WINDOW);

    a.goto(&format!("{base}/sessions")).await.unwrap();
    click(&a, "revoke-all").await;
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#reauth-form"))
        .await
        .unwrap();
    let heading = a.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Confirm it's you");
    let text = a.find(Locator::Css(".card")).await.unwrap();
    let text = text.text().await.unwrap();
    assert!(text.contains("To sign out everywhere"), "{text}");
    save_screenshot(&a, &artifacts.join("demo-reauthenticate.png")).await;
    assert!(other.me().await.is_some(), "asked first, nothing done");
    click(&a, "reauth-cancel").await;
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("table#sessions"))
        .await
        .unwrap();
    assert_eq!(listed_sessions(&a).await.unwrap().len(), 2);

    // Still 21 minutes old: "Sign out all other devices" asks too.
    click(&a, "revoke-others").await;
    type_password(&a, "correct-horsE").await;
    eventually("the prompt to say the password was wrong", WAIT, || async {
        Ok((notes(&a).await == ["Wrong password."]).then_some(()))
    })
    .await;
    assert!(other.me().await.is_some(), "a wrong password does nothing");
    type_password(&a, "correct-horse").await;
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("table#sessions"))
        .await
        .unwrap();
    assert_eq!(notes(&a).await, ["Signed out 1 other device."]);
    assert_eq!(listed_sessions(&a).await.unwrap().len(), 1);
    assert!(other.me().await.is_none());

    // Right after: "Sign out everywhere" is done at once.
    other.login("alice", "correct-horse").await;
    a.refresh().await.unwrap();
    eventually(
        "the devices page to list the other device",
        WAIT,
        || async { Ok((listed_sessions(&a).await?.len() == 2).then_some(())) },
    )
    .await;
    click(&a, "revoke-all").await;
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    assert_eq!(notes(&a).await, ["Signed out everywhere (2 devices)."]);
    assert!(other.me().await.is_none());
    assert_eq!(fetch(&a, "/api/me").await.0, 401);
}

/// Clicks the element with this id.
async fn click(browser: &Client, id: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Types `password` into the password prompt and confirms.
async fn type_password(browser: &Client, password: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("reauth-password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    click(browser, "reauth").await;
}

/// The flash messages the page shows.
async fn notes(browser: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for note in browser.find_all(Locator::Css(".flash")).await.unwrap() {
        texts.push(note.text().await.unwrap());
    }
    texts
}

/// Signs in as alice through the real login form.
async fn sign_in(browser: &Client, base: &str) {
    sign_in_as(browser, base, false).await;
}

/// Signs alice in, ticking "Remember me" if `remember`.
async fn sign_in_as(browser: &Client, base: &str, remember: bool) {
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
    if remember {
        form.find(Locator::Css("input[name=remember]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
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
