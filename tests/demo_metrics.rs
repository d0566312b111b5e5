//! The demo's `/metrics` (Prometheus text), scraped after a sign-in and a revocation made by
//! another process (the `revoke_all` example on the same SQLite file): the counters moved, and
//! the revocation reached the demo with a propagation-lag sample. Runs the real demo binary,
//! built with the `metrics` feature (`tests/demo_support` builds it with the features this test
//! was built with: `cargo test --all-features` gives it).
#![cfg(all(feature = "hyper", feature = "sqlite", feature = "metrics"))]

mod demo_support;
mod support;

use std::time::{Duration, Instant};

use demo_support::{revoke_all, Client, Demo};
use http::StatusCode;

/// A limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(30);

/// The value of the series `series` (its name and, if any, its labels as the exporter writes
/// them: `name{label="value"}`) in a Prometheus text scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

async fn scrape(client: &mut Client) -> String {
    let r = client.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_sign_in_and_a_revocation_from_another_process() {
    let demo = Demo::start();
    let mut browser = Client::new(demo.addr, "metrics-test");
    // The scraper carries no session: its own client.
    let mut scraper = Client::new(demo.addr, "prometheus");

    browser.login("alice", "correct-horse").await;
    assert_eq!(browser.me().await.unwrap()["user"], "alice");
    let text = scrape(&mut scraper).await;
    assert_eq!(
        value(&text, "sealed_sessions_logins_total"),
        Some(1.0),
        "{text}"
    );
    for series in [
        "sealed_sessions_sessions_loaded_total{kind=\"signed_in\"}",
        "sealed_sessions_registry_cache_lookups_total{result=\"hit\"}",
        "sealed_sessions_set_cookies_total{why=\"login\"}",
        "sealed_sessions_registry_operations_total{op=\"register\",result=\"ok\"}",
    ] {
        assert!(
            value(&text, series).is_some_and(|n| n >= 1.0),
            "{series}: {text}"
        );
    }
    assert_eq!(
        value(&text, "sealed_sessions_feed_fresh"),
        Some(1.0),
        "{text}"
    );
    let lag = "sealed_sessions_revocation_propagation_seconds_count";
    assert!(
        value(&text, lag).unwrap_or(0.0) == 0.0,
        "no revocation yet: {text}"
    );

    // Another process signs alice out everywhere; the demo's poller evicts her session.
    let out = revoke_all(demo.db(), "alice");
    assert!(out.contains("revoked 1 session"), "{out}");
    let start = Instant::now();
    while browser.me().await.is_some() {
        assert!(start.elapsed() < DEADLINE, "still signed in");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = loop {
        let text = scrape(&mut scraper).await;
        if value(&text, lag).is_some_and(|n| n > 0.0) {
            break text;
        }
        assert!(start.elapsed() < DEADLINE, "no lag sample: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(value(&text, lag), Some(1.0), "{text}");
    assert!(
        value(&text, "sealed_sessions_revocation_propagation_seconds_sum")
            .is_some_and(|s| s >= 0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "sealed_sessions_cookies_refused_total{reason=\"revoked\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The refused cookie was removed.
    assert!(
        value(&text, "sealed_sessions_set_cookies_total{why=\"removal\"}")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    println!(
        "propagation lag of a revocation from another process: {:?} s",
        value(&text, "sealed_sessions_revocation_propagation_seconds_sum")
    );
}
