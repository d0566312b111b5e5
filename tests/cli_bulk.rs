//! The operator tool's commands that reach many sessions: `revoke --all-users`, `revoke
//! --signed-in-before` (of everyone or of one user) and `forget-user`, spawned as an operator
//! runs them, on SQLite and (with a server, see `tests/pg_support`) PostgreSQL: `--yes`
//! required, bad times refused with exit 2, counts printed, JSON, and a running registry on the
//! same database refusing the sessions afterwards.
#![cfg(feature = "cli")]

mod cli_support;
mod pg_support;

use std::time::{Duration, Instant, SystemTime};

use cli_support::{code, json, stderr, stdout, tool};
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::SessionId;

const HOUR: Duration = Duration::from_secs(3600);

/// Registers a session of `user` signed in `ago`, with an address and a user agent.
async fn session(reg: &dyn Registry, user: &str, ago: Duration) -> SessionId {
    let now = SystemTime::now();
    let id = SessionId::generate();
    let s = NewSession::new(id, user, now - ago, now + HOUR)
        .user_agent("Firefox/128")
        .ip("192.0.2.7".parse().unwrap());
    reg.register(s).await.unwrap();
    id
}

/// Waits (bounded) until `reg` refuses `id` from memory too, then checks the table's answer.
async fn refused(reg: &dyn Registry, id: SessionId, user: &str) {
    let started = Instant::now();
    while reg.validate_cached(id, user, SystemTime::now()) == Some(true) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the running registry went on vouching for {user}'s session"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!reg.validate(id, user, SystemTime::now()).await.unwrap());
}

async fn valid(reg: &dyn Registry, id: SessionId, user: &str) -> bool {
    reg.validate(id, user, SystemTime::now()).await.unwrap()
}

/// The bulk commands on `db`, with `reg` a running registry on the same database.
async fn bulk_commands(db: &str, reg: &dyn Registry) {
    let two_hours = 2 * HOUR;
    let alice_old = session(reg, "alice", two_hours).await;
    let alice_new = session(reg, "alice", Duration::from_secs(60)).await;
    let bob_old = session(reg, "bob", two_hours).await;
    let bob_new = session(reg, "bob", Duration::from_secs(60)).await;
    for (id, user) in [(alice_old, "alice"), (bob_old, "bob")] {
        assert!(valid(reg, id, user).await);
    }
    // Through the tool's own reading of RFC 3339, with an offset (one hour east of UTC).
    let an_hour_ago = |offset: &str| {
        let t = SystemTime::now() - HOUR;
        rfc3339(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            offset,
        )
    };

    // Bad times, future times and missing --yes are refused before anything is revoked.
    for bad in [
        "2026-12-01",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "2026-12-01T00:00:00",
    ] {
        let out = tool(&[
            "revoke",
            "--all-users",
            "--signed-in-before",
            bad,
            "--yes",
            "--db",
            db,
        ]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    }
    let future = rfc3339(
        (SystemTime::now() + HOUR)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "Z",
    );
    let out = tool(&[
        "revoke",
        "--all-users",
        "--signed-in-before",
        &future,
        "--yes",
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("in the future"), "{}", stderr(&out));
    let before = an_hour_ago("+01:00");
    let out = tool(&[
        "revoke",
        "--all-users",
        "--signed-in-before",
        &before,
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 2, "not without --yes");
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = tool(&["revoke", "--all-users", "--db", db]);
    assert_eq!(code(&out), 2, "not without --yes");
    assert_eq!(code(&tool(&["revoke", "--db", db])), 2, "whose?");
    let out = tool(&["revoke", "alice", "--all-users", "--yes", "--db", db]);
    assert_eq!(code(&out), 2, "a user or everyone, not both");
    assert!(valid(reg, alice_old, "alice").await, "nothing was revoked");

    // One user's sessions signed in before the time.
    let out = tool(&[
        "revoke",
        "alice",
        "--signed-in-before",
        &before,
        "--yes",
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("revoked 1 session: "),
        "{}",
        stdout(&out)
    );
    refused(reg, alice_old, "alice").await;
    assert!(valid(reg, bob_old, "bob").await && valid(reg, alice_new, "alice").await);

    // Everyone's signed in before the time, as JSON; then nothing is left to match (exit 1).
    let args = [
        "revoke",
        "--all-users",
        "--signed-in-before",
        &before,
        "--yes",
        "--json",
    ];
    let out = tool(&[&args[..], &["--db", db]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = json(&out);
    assert_eq!(said["revoked"], 1);
    assert_eq!(said["all_users"], true);
    assert!(said["signed_in_before"].as_str().unwrap().ends_with('Z'));
    refused(reg, bob_old, "bob").await;
    assert!(valid(reg, bob_new, "bob").await && valid(reg, alice_new, "alice").await);
    let out = tool(&[&args[..], &["--db", db]].concat());
    assert_eq!((code(&out), json(&out)["revoked"].as_u64()), (1, Some(0)));

    // Forgetting a user: --yes required; then every row of theirs is gone.
    let carol = session(reg, "carol", Duration::from_secs(60)).await;
    assert!(valid(reg, carol, "carol").await);
    let out = tool(&["forget-user", "carol", "--db", db]);
    assert_eq!(code(&out), 2, "not without --yes");
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = tool(&["forget-user", "carol", "--yes", "--db", db, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["forgotten"], 1);
    refused(reg, carol, "carol").await;
    let out = tool(&["forget-user", "carol", "--yes", "--db", db]);
    assert_eq!(code(&out), 1, "nothing left of carol: {}", stdout(&out));
    assert_eq!(code(&tool(&["list", "carol", "--db", db])), 1);

    // Everyone.
    let out = tool(&["revoke", "--all-users", "--yes", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "revoked 2 sessions: every session of every user"
    );
    refused(reg, alice_new, "alice").await;
    refused(reg, bob_new, "bob").await;
    let out = tool(&["revoke", "--all-users", "--yes", "--db", db]);
    assert_eq!(code(&out), 1, "nothing left: {}", stdout(&out));
}

/// `secs` since the epoch as RFC 3339 with the given offset (`Z` or `+01:00`).
fn rfc3339(secs: u64, offset: &str) -> String {
    let shift: i64 = match offset {
        "Z" => 0,
        "+01:00" => 3600,
        _ => unimplemented!(),
    };
    let local = secs as i64 + shift;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{offset}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = SqliteRegistry::open(&path).unwrap();
    bulk_commands(path.to_str().unwrap(), &reg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_commands_on_postgres() {
    let Some(url) = pg_support::url("cli_bulk") else {
        return;
    };
    let schema = pg_support::Schema::new(&url, "cli_bulk");
    let reg = schema.open();
    let db = format!("{url}?schema={}", schema.name);
    bulk_commands(&db, &reg).await;
}
