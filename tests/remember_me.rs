//! "Remember me": a persistent session has its own absolute lifetime and idle timeout (30 and 7
//! days by default), enforced by the server from the sealed times, and chosen before login.
#![cfg(feature = "hyper")]

mod support;

use std::time::Duration;

use sealed_sessions::{Key, SessionConfig, SessionConfigBuilder, SessionLayer};
use support::{get, serve, TestClock};

const NAME: &str = "__Host-session";
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn builder() -> SessionConfigBuilder {
    SessionConfig::builder(Key::generate())
}

async fn server(clock: &TestClock, b: SessionConfigBuilder) -> std::net::SocketAddr {
    serve(SessionLayer::new(clock.install(b).build().unwrap())).await
}

/// Sends `path` with `jar` and keeps whatever cookie comes back.
async fn visit(addr: std::net::SocketAddr, path: &str, jar: &mut String) -> String {
    let r = get(addr, path, Some(jar)).await;
    if let Some(c) = r.cookie(NAME) {
        *jar = format!("{}={}", c.name(), c.value());
    }
    r.body
}

#[tokio::test]
async fn a_remembered_session_survives_days_away_and_ends_after_its_own_limits() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let r = get(addr, "/remember-login/alice", None).await;
    let c = r.cookie(NAME).unwrap();
    assert_eq!(c.max_age(), Some(cookie::time::Duration::days(7)));
    let mut jar = r.cookie_pair(NAME);

    // Six days away, four times: each visit slides the idle deadline, and Max-Age with it.
    for _ in 0..4 {
        clock.advance(6 * DAY);
        assert_eq!(visit(addr, "/user", &mut jar).await, "alice");
    }
    // Day 24, and then eight days away: past the 7-day idle timeout.
    let mut away = jar.clone();
    clock.advance(8 * DAY);
    assert_eq!(visit(addr, "/user", &mut away).await, "anonymous");

    // The same session, visited every six days, still ends at day 30 however active.
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let mut jar = get(addr, "/remember-login/bob", None)
        .await
        .cookie_pair(NAME);
    for _ in 0..4 {
        clock.advance(6 * DAY);
        assert_eq!(visit(addr, "/user", &mut jar).await, "bob");
    }
    clock.advance(5 * DAY + HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "bob", "day 29");
    clock.advance(DAY);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous", "day 30");
}

/// Within the refresh throttle (42 hours) of its absolute end, an active remembered session
/// is still refreshed, once, up to that end: it does not end at an idle deadline it could have
/// moved (issue 21). The old rule refreshed only when the deadline could move by the whole
/// throttle, so a user active every 10 hours was signed out at 710 hours, 10 short of 720.
#[tokio::test]
async fn an_active_remembered_session_lasts_to_its_absolute_end() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let mut jar = get(addr, "/remember-login/alice", None)
        .await
        .cookie_pair(NAME);
    // Every 45 hours to 540 (each refreshes: the idle deadline is now 708 hours, 12 before the
    // end at 720).
    for _ in 0..12 {
        clock.advance(45 * HOUR);
        let r = get(addr, "/user", Some(&jar)).await;
        assert_eq!(r.body, "alice");
        jar = r.cookie_pair(NAME);
    }
    // Then every 10 hours: one refresh (the first request 42 hours after the last), to the
    // absolute end, and no cookie on the others.
    let mut refreshed_at = Vec::new();
    for hours in (550..720).step_by(10) {
        clock.advance(10 * HOUR);
        let r = get(addr, "/user", Some(&jar)).await;
        assert_eq!(r.body, "alice", "at {hours} hours");
        if let Some(c) = r.cookie(NAME) {
            refreshed_at.push(hours);
            jar = format!("{}={}", c.name(), c.value());
        }
    }
    assert_eq!(refreshed_at, [590]);
    clock.advance(10 * HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous", "day 30");
}

#[tokio::test]
async fn a_browser_session_ends_after_two_idle_hours_and_has_no_max_age() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let r = get(addr, "/login/alice", None).await;
    assert_eq!(r.cookie(NAME).unwrap().max_age(), None);
    let mut jar = r.cookie_pair(NAME);
    clock.advance(HOUR + HOUR / 2);
    assert_eq!(visit(addr, "/user", &mut jar).await, "alice");
    clock.advance(2 * HOUR + Duration::from_secs(1));
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous");
}

#[tokio::test]
async fn remember_me_after_login_keeps_the_lifetime_fixed_at_login() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let mut jar = get(addr, "/login/alice", None).await.cookie_pair(NAME);
    let r = get(addr, "/remember", Some(&jar)).await;
    // The cookie is persistent now, but its Max-Age stops at the end set at login...
    assert_eq!(
        r.cookie(NAME).unwrap().max_age(),
        Some(cookie::time::Duration::days(1))
    );
    jar = r.cookie_pair(NAME);
    clock.advance(20 * HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "alice");
    // ...but the absolute end is the one set at login: 24 hours.
    clock.advance(4 * HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous");
}

#[tokio::test]
async fn forgetting_shortens_the_idle_timeout_and_drops_max_age() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let mut jar = get(addr, "/remember-login/alice", None)
        .await
        .cookie_pair(NAME);
    let r = get(addr, "/forget", Some(&jar)).await;
    assert_eq!(r.cookie(NAME).unwrap().max_age(), None);
    jar = r.cookie_pair(NAME);
    clock.advance(3 * HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous");
}

#[tokio::test]
async fn forgetting_after_a_remembered_login_ends_by_the_plain_lifetime() {
    let clock = TestClock::default();
    let addr = server(&clock, builder()).await;
    let mut jar = get(addr, "/remember-login/alice", None)
        .await
        .cookie_pair(NAME);
    visit(addr, "/forget", &mut jar).await;
    // Active every hour: still signed in at 23 hours, out at 24 (not 30 days).
    for _ in 0..23 {
        clock.advance(HOUR);
        assert_eq!(visit(addr, "/user", &mut jar).await, "alice");
    }
    clock.advance(HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous");
}

#[tokio::test]
async fn the_persistent_limits_are_configurable_and_checked() {
    let clock = TestClock::default();
    let b = builder()
        .persistent_lifetime(10 * DAY)
        .persistent_idle_timeout(DAY);
    let addr = server(&clock, b).await;
    let r = get(addr, "/remember-login/alice", None).await;
    assert_eq!(
        r.cookie(NAME).unwrap().max_age(),
        Some(cookie::time::Duration::days(1))
    );
    let mut jar = r.cookie_pair(NAME);
    clock.advance(DAY + HOUR);
    assert_eq!(visit(addr, "/user", &mut jar).await, "anonymous");

    let err = builder()
        .persistent_lifetime(DAY)
        .persistent_idle_timeout(2 * DAY)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the persistent idle timeout 172800s is longer than the persistent lifetime 86400s"
    );
    assert!(builder()
        .persistent_lifetime(Duration::MAX)
        .build()
        .is_err());
    // A short persistent lifetime alone builds: the default idle timeout fits inside it.
    let config = builder().persistent_lifetime(3 * DAY).build().unwrap();
    assert_eq!(config.persistent_idle_timeout(), 3 * DAY);
    // A configured lifetime longer than the persistent default raises the persistent one.
    let config = builder()
        .lifetime(60 * DAY)
        .idle_timeout(10 * DAY)
        .build()
        .unwrap();
    assert_eq!(config.persistent_lifetime(), 60 * DAY);
    assert_eq!(config.persistent_idle_timeout(), 10 * DAY);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_registry_records_the_persistent_lifetime() {
    use sealed_sessions::registry::SqliteRegistry;
    use std::sync::Arc;
    use std::time::SystemTime;

    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(SqliteRegistry::open(dir.path().join("sessions.db")).unwrap());
    let config = builder().registry(reg.clone()).build().unwrap();
    let addr = serve(SessionLayer::new(config)).await;
    get(addr, "/remember-login/alice", None).await;
    get(addr, "/login/bob", None).await;
    let now = SystemTime::now();
    let lasts = |s: &sealed_sessions::registry::SessionInfo| {
        s.expires_at.duration_since(s.created_at).unwrap()
    };
    let alice = reg.list_for_user("alice", now).await.unwrap();
    let bob = reg.list_for_user("bob", now).await.unwrap();
    assert!((lasts(&alice[0]).as_secs()).abs_diff((30 * DAY).as_secs()) <= 1);
    assert!((lasts(&bob[0]).as_secs()).abs_diff(DAY.as_secs()) <= 1);
}
