//! The demo's sudo mode and its change-password page over real HTTP, against the real example
//! binary (issue 24). A sign-in is made "older than the window" by moving the demo's clock
//! (`--clock-offset-file`), never by sleeping: every check here has the same outcome on a slow
//! machine as on a fast one.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
mod support;

use demo_support::{csrf_in, header, loopback, post_login, retry_after, Client, Demo};
use http::StatusCode;
use support::Reply;

/// 21 minutes: past the demo's default window of 20 and short of its idle timeout of 30.
const PAST_THE_WINDOW: u64 = 21 * 60;
const PROMPT_HEADER: &str = "x-reauthentication-required";
const PROMPT_FORM: &str = r#"action="/reauthenticate""#;

async fn session_id(client: &mut Client) -> String {
    let me = client.me().await.expect("signed in");
    me["session_id"].as_str().unwrap().to_owned()
}

/// Asserts that `reply` is the password prompt for `action`.
fn assert_prompt(reply: &Reply, status: StatusCode, action: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(header(reply, PROMPT_HEADER), "1");
    assert!(reply.body.contains(PROMPT_FORM), "{}", reply.body);
    let field = format!(r#"name="action" value="{action}""#);
    assert!(
        reply.body.contains(&field),
        "{field} missing: {}",
        reply.body
    );
}

async fn confirm(client: &mut Client, prompt: &Reply, fields: &[(&str, &str)]) -> Reply {
    let csrf = csrf_in(&prompt.body).expect("the prompt's csrf_token");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    client.post("/reauthenticate", &form).await
}

#[tokio::test]
async fn an_old_sign_in_is_asked_for_the_password_before_signing_out_everywhere() {
    let demo = Demo::start_with_clock(&[]);
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    let a_id = session_id(&mut a).await;
    demo.set_clock_offset(PAST_THE_WINDOW);

    let csrf = a.csrf("/sessions").await;
    let prompt = a
        .post("/sessions/revoke-all", &[("csrf_token", &csrf)])
        .await;
    assert_prompt(&prompt, StatusCode::FORBIDDEN, "sign-out-everywhere");
    assert!(
        prompt.body.contains("You signed in 21 min ago"),
        "{}",
        prompt.body
    );
    assert_eq!(session_id(&mut a).await, a_id, "nothing happened yet");
    assert!(b.me().await.is_some(), "nothing happened yet");

    let everywhere = [("action", "sign-out-everywhere")];
    // A wrong password: asked again, nothing done, not re-authenticated.
    let wrong = [everywhere[0], ("password", "correct-horsE")];
    let r = confirm(&mut a, &prompt, &wrong).await;
    assert_prompt(&r, StatusCode::UNAUTHORIZED, "sign-out-everywhere");
    assert!(r.body.contains("Wrong password."));
    assert!(b.me().await.is_some());
    assert_eq!(session_id(&mut a).await, a_id);
    let again = a
        .post("/sessions/revoke-all", &[("csrf_token", &csrf)])
        .await;
    assert_prompt(&again, StatusCode::FORBIDDEN, "sign-out-everywhere");

    // The right password without the CSRF token, or with a forged one: refused.
    for token in [None, Some("forged")] {
        let mut form = vec![everywhere[0], ("password", "correct-horse")];
        form.extend(token.map(|t| ("csrf_token", t)));
        let r = a.post("/reauthenticate", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(b.me().await.is_some(), "{token:?}");
        assert_eq!(session_id(&mut a).await, a_id, "{token:?}");
    }

    // The right one: re-authenticated, and the action is done.
    let right = [everywhere[0], ("password", "correct-horse")];
    let r = confirm(&mut a, &prompt, &right).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers["location"], "/");
    assert!(a.me().await.is_none());
    assert!(b.me().await.is_none());
    let home = a.get("/").await;
    assert!(
        home.body.contains("Signed out everywhere (2 devices)."),
        "{}",
        home.body
    );
}

#[tokio::test]
async fn the_right_password_does_the_pending_sign_out_and_the_next_is_not_asked() {
    let demo = Demo::start_with_clock(&[]);
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    let mut c = Client::new(demo.addr, "agent-c");
    for client in [&mut a, &mut b, &mut c] {
        client.login("alice", "correct-horse").await;
    }
    let a_id = session_id(&mut a).await;
    let b_id = session_id(&mut b).await;
    let a_cookie = a.cookie.clone();
    demo.set_clock_offset(PAST_THE_WINDOW);

    // "Sign out" on b's row: asked first, with b's id kept in the prompt.
    let csrf = a.csrf("/sessions").await;
    let prompt = a
        .post("/sessions/revoke", &[("id", &b_id), ("csrf_token", &csrf)])
        .await;
    assert_prompt(&prompt, StatusCode::FORBIDDEN, "sign-out-device");
    let id_field = format!(r#"name="id" value="{b_id}""#);
    assert!(prompt.body.contains(&id_field), "{}", prompt.body);
    assert!(b.me().await.is_some());

    let right = [
        ("action", "sign-out-device"),
        ("id", b_id.as_str()),
        ("password", "correct-horse"),
    ];
    let r = confirm(&mut a, &prompt, &right).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers["location"], "/sessions");
    assert!(b.me().await.is_none(), "b is signed out");
    assert!(c.me().await.is_some(), "only b");
    // Re-authenticating renewed a's id (ASVS 7.2.4): the cookie from before is refused.
    let new_id = session_id(&mut a).await;
    assert_ne!(new_id, a_id);
    let mut copy = Client::new(demo.addr, "agent-a");
    copy.cookie = a_cookie;
    assert!(copy.me().await.is_none(), "the old id is retired");
    let page = a.get("/sessions").await;
    assert!(page.body.contains("That device is signed out."));

    // Right after: not asked again.
    let csrf = csrf_in(&page.body).unwrap();
    let r = a
        .post("/sessions/revoke-others", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.headers.get(PROMPT_HEADER).is_none());
    assert!(c.me().await.is_none(), "c is signed out too");
    assert_eq!(session_id(&mut a).await, new_id);
    let page = a.get("/sessions").await;
    assert!(page.body.contains("Signed out 1 other device."));
}

#[tokio::test]
async fn wrong_passwords_at_the_prompt_are_throttled_as_sign_ins_are() {
    let demo = Demo::start_with_clock(&["--account-failures", "2"]);
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    let a_id = session_id(&mut a).await;
    demo.set_clock_offset(PAST_THE_WINDOW);

    let csrf = a.csrf("/sessions").await;
    let prompt = a
        .post("/sessions/revoke-others", &[("csrf_token", &csrf)])
        .await;
    assert_prompt(&prompt, StatusCode::FORBIDDEN, "sign-out-others");
    let others = ("action", "sign-out-others");
    for _ in 0..2 {
        let r = confirm(&mut a, &prompt, &[others, ("password", "guess")]).await;
        assert_prompt(&r, StatusCode::UNAUTHORIZED, "sign-out-others");
    }
    // Paused: even the right password is not checked now.
    let r = confirm(&mut a, &prompt, &[others, ("password", "correct-horse")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) > 0);
    assert!(b.me().await.is_some(), "nothing was done");
    assert_eq!(session_id(&mut a).await, a_id, "nor re-authenticated");
}

#[tokio::test]
async fn the_window_is_what_reauthenticate_after_says() {
    // 61 seconds after sign-in: inside the default 20 minutes, past a window of 60 seconds.
    for (flags, asked) in [
        (&["--reauthenticate-after", "60"][..], true),
        (&[][..], false),
    ] {
        let demo = Demo::start_with_clock(flags);
        let mut a = Client::new(demo.addr, "agent-a");
        let mut b = Client::new(demo.addr, "agent-b");
        a.login("alice", "correct-horse").await;
        b.login("alice", "correct-horse").await;
        demo.set_clock_offset(61);
        let csrf = a.csrf("/sessions").await;
        let r = a
            .post("/sessions/revoke-others", &[("csrf_token", &csrf)])
            .await;
        if asked {
            assert_prompt(&r, StatusCode::FORBIDDEN, "sign-out-others");
            assert!(b.me().await.is_some());
        } else {
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{flags:?}: {}", r.body);
            assert!(b.me().await.is_none());
        }
    }
}

/// Posts the change-password form with `current`, `new` twice (or `confirm` for the second),
/// the "sign out all other devices" box as `sign_out_others` says.
async fn change_password(
    client: &mut Client,
    csrf: Option<&str>,
    current: &str,
    new: &str,
    confirm: &str,
    sign_out_others: bool,
) -> Reply {
    let mut form = vec![
        ("current_password", current),
        ("new_password", new),
        ("confirm_password", confirm),
    ];
    form.extend(csrf.map(|t| ("csrf_token", t)));
    if sign_out_others {
        form.push(("sign_out_others", "1"));
    }
    client.post("/password", &form).await
}

const NEW_PASSWORD: &str = "staple battery horse";

#[tokio::test]
async fn changing_the_password_signs_the_other_devices_out_when_the_box_is_ticked() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    let mut bob = Client::new(demo.addr, "bob");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    bob.login("bob", "battery-staple").await;
    let a_id = session_id(&mut a).await;

    let mut anonymous = Client::new(demo.addr, "x");
    let r = anonymous.get("/password").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/");

    let page = a.get("/password").await;
    assert_eq!(page.status, StatusCode::OK);
    for field in [
        r#"name="current_password""#,
        r#"name="new_password""#,
        r#"name="confirm_password""#,
        // Ticked by default (ASVS 7.4.3).
        r#"name="sign_out_others" value="1" id="sign-out-others" checked"#,
    ] {
        assert!(page.body.contains(field), "{field} missing: {}", page.body);
    }
    let csrf = csrf_in(&page.body).unwrap();

    // Refused, each leaving the password and the sessions as they were.
    let no_token = change_password(
        &mut a,
        None,
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        true,
    )
    .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let forged = change_password(
        &mut a,
        Some("forged"),
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        true,
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let token = Some(csrf.as_str());
    for (current, new, confirm, status, says) in [
        (
            "correct-horse",
            NEW_PASSWORD,
            "staple battery horsE",
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two new passwords differ.",
        ),
        (
            "correct-horse",
            "short",
            "short",
            StatusCode::UNPROCESSABLE_ENTITY,
            "too short",
        ),
        (
            "wrong",
            NEW_PASSWORD,
            NEW_PASSWORD,
            StatusCode::UNAUTHORIZED,
            "Your current password is wrong.",
        ),
    ] {
        let r = change_password(&mut a, token, current, new, confirm, true).await;
        assert_eq!(r.status, status, "{says}: {}", r.body);
        assert!(r.body.contains(says), "{says}: {}", r.body);
        // The box stays as it was sent.
        assert!(r.body.contains(r#"id="sign-out-others" checked"#));
    }
    assert!(b.me().await.is_some());
    assert_eq!(session_id(&mut a).await, a_id);

    let r = change_password(
        &mut a,
        token,
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers["location"], "/");
    assert!(b.me().await.is_none(), "the other device is signed out");
    assert!(bob.me().await.is_some(), "another user is untouched");
    let new_id = session_id(&mut a).await;
    assert_ne!(new_id, a_id, "a new session id after the password check");
    let home = a.get("/").await;
    assert!(
        home.body
            .contains("Your password is changed. Signed out 1 other device."),
        "{}",
        home.body
    );

    // The old password no longer signs in; the new one does.
    let mut c = Client::new(demo.addr, "agent-c");
    let csrf = c.csrf("/").await;
    let r = post_login(&mut c, "alice", "correct-horse", &csrf).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    c.login("alice", NEW_PASSWORD).await;
    assert!(a.me().await.is_some(), "a stays signed in");
}

#[tokio::test]
async fn changing_the_password_with_the_box_unticked_keeps_the_other_devices() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    let csrf = a.csrf("/password").await;
    let r = change_password(
        &mut a,
        Some(&csrf),
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.me().await.is_some(), "kept, as asked");
    assert!(a.me().await.is_some());
    let home = a.get("/").await;
    assert!(home.body.contains("Your other devices stay signed in."));
    let mut c = Client::new(demo.addr, "agent-c");
    let csrf = c.csrf("/").await;
    let r = post_login(&mut c, "alice", "correct-horse", &csrf).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    c.login("alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_as_sign_ins_are() {
    let demo = Demo::start_with(&["--account-failures", "2"]);
    let mut a = Client::new(demo.addr, "agent-a");
    let mut b = Client::new(demo.addr, "agent-b");
    a.login("alice", "correct-horse").await;
    b.login("alice", "correct-horse").await;
    let csrf = a.csrf("/password").await;
    for _ in 0..2 {
        let r = change_password(
            &mut a,
            Some(&csrf),
            "guess",
            NEW_PASSWORD,
            NEW_PASSWORD,
            true,
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = change_password(
        &mut a,
        Some(&csrf),
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) > 0);
    assert!(b.me().await.is_some(), "nothing was done");
    // Unchanged: the old password still signs in, from an address the pause does not cover.
    let mut c = demo_support::Client::from(demo.addr, "agent-c", loopback(2));
    c.login("alice", "correct-horse").await;
}

/// Sign-ins with the old password, racing a password change with "sign out all other devices"
/// ticked, never leave a session behind: whichever way each one interleaves with the change,
/// it is either signed out by it or refused (the security review's finding: the change signed
/// the other devices out before it swapped the hash, so a sign-in checked against the old hash
/// and registered in between stayed signed in). Attackers keep signing in until the change is
/// done; every session they got must be refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_with_the_old_password_racing_a_change_do_not_survive_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let demo = Demo::start();
    let mut owner = Client::new(demo.addr, "owner");
    owner.login("alice", "correct-horse").await;
    let done = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let attackers: Vec<_> = (0..3u8)
        .map(|n| {
            let (done, sessions, addr) = (done.clone(), sessions.clone(), demo.addr);
            tokio::spawn(async move {
                // Bounded, whatever happens: the change ends the loop long before.
                for _ in 0..2_000 {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut attacker = Client::from(addr, "attacker", loopback(10 + n));
                    let csrf = attacker.csrf("/").await;
                    let r = post_login(&mut attacker, "alice", "correct-horse", &csrf).await;
                    if r.status == StatusCode::SEE_OTHER {
                        sessions.lock().unwrap().push(attacker);
                    }
                }
            })
        })
        .collect();
    // The change starts once the attackers are signing in (bounded generously: a sign-in
    // waits for Argon2, which a loaded machine slows).
    for _ in 0..3_000 {
        if !sessions.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !sessions.lock().unwrap().is_empty(),
        "no attacker signed in"
    );
    let csrf = owner.csrf("/password").await;
    let changed = change_password(
        &mut owner,
        Some(&csrf),
        "correct-horse",
        NEW_PASSWORD,
        NEW_PASSWORD,
        true,
    )
    .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    done.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let mut sessions = std::mem::take(&mut *sessions.lock().unwrap());
    let total = sessions.len();
    let mut survivors = 0;
    for attacker in &mut sessions {
        if attacker.me().await.is_some() {
            survivors += 1;
        }
    }
    println!("{total} sign-ins with the old password during the change, {survivors} survived");
    assert_eq!(survivors, 0, "of {total} sign-ins with the old password");
    assert!(owner.me().await.is_some(), "the owner stays signed in");
}
