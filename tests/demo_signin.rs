//! The demo's sign-in throttle and hashing slots over real HTTP, against the real example
//! binary. Clients connect from several loopback addresses (`127.0.0.n`, which Linux routes to
//! the loopback interface), so the demo sees each as a different client.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
mod support;

use demo_support::{post_login, retry_after, Client, Demo};
use http::StatusCode;

/// The demo's defaults: five failures from one address pause it for that account, for 15
/// minutes; an address the account signed in from before waits a fifth of that.
const ACCOUNT_FAILURES: usize = 5;
const WINDOW_SECS: u64 = 15 * 60;

#[tokio::test]
async fn failed_logins_pause_that_address_for_the_account_but_not_other_accounts() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let csrf = a.csrf("/").await;
    for attempt in 1..=ACCOUNT_FAILURES {
        let r = post_login(&mut a, "alice", "wrong", &csrf).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Paused: even the right password is refused, without being checked.
    let r = post_login(&mut a, "alice", "correct-horse", &csrf).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) > 0);
    assert!(a.me().await.is_none());

    // The same address, another account: below the address's own limit.
    let mut bob = Client::new(demo.addr, "bob");
    bob.login("bob", "battery-staple").await;
}

#[tokio::test]
async fn failed_logins_from_one_address_pause_that_address() {
    let demo = Demo::start_with(&["--address-failures", "2"]);
    let mut a = Client::new(demo.addr, "agent-a");
    let csrf = a.csrf("/").await;
    // One failure each for two accounts: no account is paused, the address is.
    for user in ["alice", "mallory"] {
        let r = post_login(&mut a, user, "wrong", &csrf).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
    }
    let mut bob = Client::new(demo.addr, "bob");
    let csrf = bob.csrf("/").await;
    let r = post_login(&mut bob, "bob", "battery-staple", &csrf).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) > 0);
}

#[tokio::test]
async fn parallel_failed_logins_stop_being_checked_once_the_address_is_paused() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let csrf = a.csrf("/").await;
    let cookie = a.cookie.clone().unwrap();
    let attempts: Vec<_> = (0..24)
        .map(|_| {
            let (addr, cookie, csrf) = (demo.addr, cookie.clone(), csrf.clone());
            tokio::spawn(async move {
                let form = [
                    ("username", "alice"),
                    ("password", "wrong"),
                    ("csrf_token", csrf.as_str()),
                ];
                support::send(
                    addr,
                    "POST",
                    "/login",
                    &[cookie.as_bytes()],
                    &[],
                    Some(&form),
                )
                .await
            })
        })
        .collect();
    let mut checked = 0;
    for attempt in attempts {
        let r = attempt.await.unwrap();
        match r.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after(&r) > 0);
            }
            other => panic!("{other}: {}", r.body),
        }
    }
    // Each 401 cost an Argon2 hash. Past the five that pause the address, only the hashes
    // already running (the demo runs at most two at once) can add to them.
    assert!(
        checked <= ACCOUNT_FAILURES + 2,
        "{checked} passwords checked"
    );
}

/// Signs `user` in from `from` with the right password (a 303 to `/`), in a browser of its own.
#[cfg(target_os = "linux")]
async fn sign_in_from(demo: &Demo, from: std::net::IpAddr, user: &str, password: &str) {
    Client::from(demo.addr, "owner", from)
        .login(user, password)
        .await;
}

/// Posts `n` wrong passwords for `user` from `from`, each answered 401.
#[cfg(target_os = "linux")]
async fn fail_from(demo: &Demo, from: std::net::IpAddr, user: &str, n: usize) {
    let mut c = Client::from(demo.addr, "guesser", from);
    let csrf = c.csrf("/").await;
    for attempt in 1..=n {
        let r = post_login(&mut c, user, "wrong", &csrf).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{from}, attempt {attempt}"
        );
    }
}

/// The answer to the right password for `user` from `from`, in a browser of its own.
#[cfg(target_os = "linux")]
async fn try_from(
    demo: &Demo,
    from: std::net::IpAddr,
    user: &str,
    password: &str,
) -> support::Reply {
    let mut c = Client::from(demo.addr, "owner", from);
    let csrf = c.csrf("/").await;
    post_login(&mut c, user, password, &csrf).await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn wrong_passwords_from_elsewhere_do_not_keep_the_owner_out() {
    use demo_support::loopback;
    let demo = Demo::start();
    let (home, attacker, new_phone) = (loopback(1), loopback(2), loopback(3));
    sign_in_from(&demo, home, "alice", "correct-horse").await;

    fail_from(&demo, attacker, "alice", ACCOUNT_FAILURES).await;
    let r = try_from(&demo, attacker, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the guesser waits");
    assert!(retry_after(&r) > WINDOW_SECS / 2, "{}", retry_after(&r));

    // Before: 429 for 900 s, from everywhere.
    let r = try_from(&demo, home, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = try_from(&demo, new_phone, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn guessing_from_many_addresses_pauses_new_addresses_but_not_a_known_one() {
    use demo_support::loopback;
    let demo = Demo::start_with(&["--account-total-failures", "3"]);
    let home = loopback(1);
    sign_in_from(&demo, home, "alice", "correct-horse").await;
    for n in 2..=4 {
        fail_from(&demo, loopback(n), "alice", 1).await;
    }
    let r = try_from(&demo, loopback(5), "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) > WINDOW_SECS / 2, "{}", retry_after(&r));
    let r = try_from(&demo, home, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn guesses_from_the_owners_own_address_slow_it_down_for_minutes_not_the_window() {
    use demo_support::loopback;
    let demo = Demo::start();
    let home = loopback(1);
    sign_in_from(&demo, home, "alice", "correct-horse").await;
    // Someone behind the same address (a shared NAT) guesses.
    fail_from(&demo, home, "alice", ACCOUNT_FAILURES).await;
    let r = try_from(&demo, home, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let wait = retry_after(&r);
    let step = WINDOW_SECS / ACCOUNT_FAILURES as u64;
    assert!(
        wait > 0 && wait <= step,
        "Retry-After {wait}, not above {step}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_flood_of_sign_ins_from_many_addresses_queues_behind_a_known_one() {
    use demo_support::{loopback, send_from};
    let demo = Demo::start();
    let home = loopback(1);
    sign_in_from(&demo, home, "alice", "correct-horse").await;

    let mut guesser = Client::new(demo.addr, "guesser");
    let csrf = guesser.csrf("/").await;
    let cookie = guesser.cookie.clone().unwrap();
    // One guess from each of 120 addresses, each for a name of its own: nothing is paused, and
    // every guess needs a hash. Two hashes run at once; the rest queue.
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    for n in 10..130u8 {
        let (addr, cookie, csrf, done_tx) =
            (demo.addr, cookie.clone(), csrf.clone(), done_tx.clone());
        tokio::spawn(async move {
            let user = format!("guess{n}");
            let form = [
                ("username", user.as_str()),
                ("password", "wrong"),
                ("csrf_token", csrf.as_str()),
            ];
            let from = Some(loopback(n));
            let r = send_from(
                from,
                addr,
                "POST",
                "/login",
                &[cookie.as_bytes()],
                &[],
                Some(&form),
            )
            .await;
            done_tx.send(r.status).unwrap();
        });
    }
    drop(done_tx);
    // Once a guess has been checked (a 401; those turned away answer 503 at once), the others
    // have had time to queue.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&StatusCode::UNAUTHORIZED) {
        statuses.push(done.recv().await.expect("a guess is checked"));
    }

    // Before: queued behind the flood, and answered 503 when its 2 s wait ran out.
    let r = try_from(&demo, home, "alice", "correct-horse").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    while let Some(status) = done.recv().await {
        statuses.push(status);
    }
    assert_eq!(statuses.len(), 120);
    // Checked and refused, or turned away because too many were waiting.
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "{statuses:?}"
    );
}
