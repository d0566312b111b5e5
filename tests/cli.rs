//! The operator's tool as an operator runs it: the built `sealed-sessions` binary, spawned, on
//! SQLite and (with a server, see `tests/pg_support`) PostgreSQL; output, JSON and exit codes.
#![cfg(all(feature = "cli", feature = "hyper"))]

mod cli_support;
mod demo_support;
mod pg_support;
mod support;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use cli_support::{code, json, stderr, stdout, tool};
use sealed_sessions::registry::{NewSession, Registry, SqliteRegistry};
use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer, SessionId};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn keygen_and_key_id_agree() {
    let out = tool(&["keygen", "--json"]);
    assert_eq!(code(&out), 0);
    let made = json(&out);
    let key = made["key"].as_str().unwrap();
    assert_eq!(
        Key::from_base64(key).unwrap().id().to_string(),
        made["key_id"]
    );
    let out = tool(&["key-id", key]);
    assert_eq!(
        (code(&out), stdout(&out).trim()),
        (0, made["key_id"].as_str().unwrap())
    );
    // Text: the key on stdout (for a file or a secret store), its id on stderr.
    let out = tool(&["keygen"]);
    assert!(Key::from_base64(stdout(&out).trim()).is_ok());
    assert!(stderr(&out).contains("key id"));
    let out = tool(&["key-id", "c2hvcnQ="]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("32 bytes"), "{}", stderr(&out));
    assert_eq!(code(&tool(&["key-id", "not base64!"])), 2);
}

#[test]
fn inspect_opens_a_cookie_with_its_key_only() {
    let key = Key::generate();
    let sealer = Sealer::new(KeyRing::new(key.clone()), Mode::Private);
    let now = SystemTime::now();
    let mut claims = Claims::new(now, HOUR, HOUR / 2);
    claims.set_user("alice", now);
    claims.insert("cart", &["apple", "pear"]).unwrap();
    let cookie = sealer.seal("__Host-session", &claims).unwrap();
    let out = tool(&["inspect", &cookie, "--key", &key.to_base64(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = json(&out);
    assert_eq!(seen["user"], "alice");
    assert_eq!(seen["id"], claims.id().to_string());
    assert_eq!(seen["data"]["cart"], serde_json::json!(["apple", "pear"]));
    assert_eq!(seen["key_id"], key.id().to_string());
    let text = stdout(&tool(&["inspect", &cookie, "--key", &key.to_base64()]));
    assert!(
        text.contains("alice") && text.contains("data cart"),
        "{text}"
    );

    let other = Key::generate().to_base64();
    let out = tool(&["inspect", &cookie, "--key", &other]);
    assert_eq!(code(&out), 1, "another key opens nothing");
    assert!(
        stderr(&out).contains(&key.id().to_string()),
        "names the cookie's key id"
    );
    assert_eq!(
        code(&tool(&[
            "inspect",
            &cookie,
            "--key",
            &key.to_base64(),
            "--name",
            "x"
        ])),
        1
    );
    assert_eq!(code(&tool(&["inspect", &cookie, "--key", "short"])), 2);
    assert_eq!(
        code(&tool(&["inspect", "%%%", "--key", &key.to_base64()])),
        2
    );
}

/// Two sessions of alice (made ten minutes ago), one of bob, one expired; returns alice's.
/// Alice's ids are fixed, not drawn: the first starts with `-` (as one id in 64 does), which
/// the commands must take as an id, not a flag, every time this runs.
async fn populate(reg: &dyn Registry) -> (SessionId, SessionId) {
    let now = SystemTime::now() - Duration::from_secs(600);
    let mut hyphen = [0xa5; SessionId::LEN];
    hyphen[0] = 0xf8; // 62, the index of `-` in base64url, in the first six bits
    let (a1, a2) = (
        SessionId::from_bytes(hyphen),
        SessionId::from_bytes([0x5a; 16]),
    );
    assert!(a1.to_string().starts_with('-') && !a2.to_string().starts_with('-'));
    for id in [a1, a2] {
        let s = NewSession::new(id, "alice", now, now + HOUR)
            .user_agent("Firefox/128")
            .ip("192.0.2.7".parse().unwrap());
        reg.register(s).await.unwrap();
    }
    reg.register(NewSession::new(
        SessionId::generate(),
        "bob",
        now,
        now + HOUR,
    ))
    .await
    .unwrap();
    let expired = now - 2 * HOUR;
    reg.register(NewSession::new(
        SessionId::generate(),
        "old",
        expired,
        expired + HOUR,
    ))
    .await
    .unwrap();
    (a1, a2)
}

/// The registry commands on `db` (two sessions of alice, one of bob, one expired).
fn registry_commands(db: &str, a1: SessionId, a2: SessionId) {
    let out = tool(&["list", "alice", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    for needle in [
        a1.to_string(),
        a2.to_string(),
        "192.0.2.7".into(),
        "Firefox/128".into(),
        " ago)".into(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from\n{text}");
    }
    let listed = json(&tool(&["list", "alice", "--db", db, "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(code(&tool(&["list", "nobody", "--db", db])), 1);

    let stats = json(&tool(&["stats", "--db", db, "--json"]));
    assert_eq!(
        (stats["active_sessions"].as_u64(), stats["users"].as_u64()),
        (Some(3), Some(2))
    );

    assert_eq!(
        code(&tool(&["revoke-session", &a1.to_string(), "--db", db])),
        0
    );
    let again = tool(&["revoke-session", &a1.to_string(), "--db", db]);
    assert_eq!(code(&again), 1, "already revoked: nothing matched");
    assert_eq!(code(&tool(&["revoke-session", "not-an-id", "--db", db])), 2);

    // Every session of a user: not without --yes when nobody can be asked.
    let out = tool(&["revoke", "alice", "--db", db]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = tool(&["revoke", "alice", "--yes", "--db", db, "--json"]);
    assert_eq!((code(&out), json(&out)["revoked"].as_u64()), (0, Some(1)));
    assert_eq!(code(&tool(&["revoke", "alice", "--yes", "--db", db])), 1);

    let stats = json(&tool(&["stats", "--db", db, "--json"]));
    assert_eq!(stats["active_sessions"].as_u64(), Some(1));
    assert_eq!(stats["revoked_last_hour"].as_u64(), Some(2));
    let out = tool(&["cleanup", "--db", db, "--json"]);
    assert_eq!((code(&out), json(&out)["deleted"].as_u64()), (0, Some(1)));
    let out = tool(&["check", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("no problems found"));
}

#[tokio::test]
async fn registry_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = SqliteRegistry::open(&path).unwrap();
    let (a1, a2) = populate(&reg).await;
    reg.stop();
    registry_commands(path.to_str().unwrap(), a1, a2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_commands_on_postgres() {
    let Some(url) = pg_support::url("cli") else {
        return;
    };
    let schema = pg_support::Schema::new(&url, "cli");
    let db = format!("{url}?schema={}", schema.name);
    let out = tool(&["list", "alice", "--db", &db]);
    assert_eq!(code(&out), 2, "no schema yet: {}", stderr(&out));
    assert!(stderr(&out).contains("migrate"), "{}", stderr(&out));
    let out = tool(&["migrate", "--db", &db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let reg = schema.open();
    let (a1, a2) = populate(&reg).await;
    assert!(reg.validate(a2, "alice", SystemTime::now()).await.unwrap());
    registry_commands(&db, a1, a2);
    // The tool's revocations reached this running host by notification.
    let start = Instant::now();
    while reg.validate_cached(a2, "alice", SystemTime::now()) == Some(true) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never reached the running host"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn bad_input_and_unreachable_databases_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = tool(&["list", "alice", "--db", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(missing.to_str().unwrap()),
        "names the path"
    );
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database, just notes\n".repeat(200)).unwrap();
    let out = tool(&["list", "alice", "--db", notes.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not an SQLite database"),
        "{}",
        stderr(&out)
    );
    let out = tool(&["list", "alice"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("SEALED_SESSIONS_DB"));
    let out = tool(&["stats", "--db", "postgres://user:hunter2@127.0.0.1:1/app"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1/app"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    let out = tool(&["stats", "--db", "postgres://[nope"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(code(&tool(&["frobnicate"])), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_from_the_tool_reaches_the_running_demo() {
    let demo = demo_support::Demo::start();
    let mut phone = demo_support::Client::new(demo.addr, "phone");
    phone.login("alice", "correct-horse").await;
    assert!(phone.me().await.is_some());
    let db = demo.db();
    let out = tool(&["revoke", "alice", "--yes", "--db", db.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let revoked = Instant::now();
    while phone.me().await.is_some() {
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "the demo still accepts alice"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "the demo refused the session {:?} after the tool returned",
        revoked.elapsed()
    );
}

/// `--help` of the tool and of every subcommand, against tests/cli_help.txt; run with
/// SEALED_SESSIONS_UPDATE_SNAPSHOTS=1 to rewrite it after a deliberate change.
#[test]
fn help_reads_well() {
    let commands = [
        "",
        "keygen",
        "key-id",
        "inspect",
        "list",
        "revoke",
        "revoke-session",
        "forget-user",
        "cleanup",
        "stats",
        "check",
        "migrate",
    ];
    let mut all = String::new();
    for command in commands {
        let args: Vec<&str> = [command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let out = tool(&args);
        assert_eq!(code(&out), 0);
        all.push_str(&format!(
            "$ sealed-sessions {}\n{}\n",
            args.join(" "),
            stdout(&out)
        ));
    }
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli_help.txt");
    if std::env::var("SEALED_SESSIONS_UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&snapshot, &all).unwrap();
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap();
    assert_eq!(
        all, expected,
        "the help text changed: review it, then update the snapshot"
    );
}
