//! The operator's tool must not write where it only reads, must not take a connection string for
//! a file name, must not print a password, must take every session id (a base64url id starts
//! with `-` one time in 64), and must not pass an application's strings to the terminal raw.
#![cfg(all(feature = "cli", feature = "hyper"))]

mod cli_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cli_support::{code, json, listing, stderr, stdout, tool, tool_in};
use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry, SqliteRegistry};
use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer, SessionId};

const HOUR: Duration = Duration::from_secs(3600);
const NOT_A_REGISTRY: &str = "not a registry (`sealed-sessions migrate` creates one)";

/// A session id whose text starts with `-`: 62, the index of `-` in base64url, in the first six
/// bits. Built, not drawn, so that the test never depends on chance.
fn hyphen_id(n: u8) -> SessionId {
    let mut bytes = [n; SessionId::LEN];
    bytes[0] = 0xf8;
    let id = SessionId::from_bytes(bytes);
    assert!(id.to_string().starts_with('-'), "{id}");
    id
}

/// Files that are not registries, each alone in a directory of its own: an empty file, another
/// application's database (rollback journal), one in WAL mode, and one whose tables happen to
/// be called `sessions` and `revocations` (no registry schema version).
fn foreign_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (name, wal) in [
        ("empty", None),
        ("other", Some(false)),
        ("wal", Some(true)),
        ("look-alike", Some(true)),
    ] {
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("app.db");
        match wal {
            None => std::fs::write(&path, b"").unwrap(),
            Some(wal) => {
                let conn = rusqlite::Connection::open(&path).unwrap();
                if wal {
                    let _: String = conn
                        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                        .unwrap();
                }
                conn.execute_batch(if name == "look-alike" {
                    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, cart TEXT);
                     CREATE TABLE revocations (id INTEGER PRIMARY KEY, token TEXT);
                     INSERT INTO sessions (cart) VALUES ('keep me');"
                } else {
                    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
                     INSERT INTO notes (body) VALUES ('keep me');"
                })
                .unwrap();
            }
        }
        files.push(path);
    }
    files
}

#[test]
fn a_file_that_is_not_a_registry_is_left_byte_for_byte_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let id = SessionId::from_bytes([7; 16]).to_string();
    for path in foreign_files(root.path()) {
        let dir = path.parent().unwrap();
        let (bytes, names) = (std::fs::read(&path).unwrap(), listing(dir));
        let db = path.to_str().unwrap();
        for command in [
            vec!["list", "alice"],
            vec!["stats"],
            vec!["check"],
            vec!["cleanup"],
            vec!["revoke", "alice", "--yes"],
            vec!["revoke-session", &id],
        ] {
            let out = tool(&[&command[..], &["--db", db]].concat());
            let said = stderr(&out);
            assert_eq!(code(&out), 2, "{command:?} on {db}: {said}");
            assert!(said.contains(NOT_A_REGISTRY), "{command:?} on {db}: {said}");
            assert!(said.contains(db), "names the file: {said}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{command:?} wrote {db}"
            );
            assert_eq!(listing(dir), names, "{command:?} left files beside {db}");
        }
    }
}

/// A registry of schema version 1 (no deletion trigger yet), as an older library made it.
fn version_1_registry(path: &Path, id: SessionId) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE sessions (id BLOB PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
             created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
             last_seen_at INTEGER NOT NULL, revoked_at INTEGER, user_agent TEXT, ip TEXT)
             WITHOUT ROWID;
         CREATE INDEX sessions_user_id ON sessions (user_id);
         CREATE INDEX sessions_expires_at ON sessions (expires_at);
         CREATE TABLE revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL,
             expires_at INTEGER NOT NULL);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let now = SystemTime::now();
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at)
         VALUES (?1, 'alice', ?2, ?3, ?2)",
        rusqlite::params![&id.as_bytes()[..], ms(now), ms(now + HOUR)],
    )
    .unwrap();
}

#[test]
fn an_older_registry_is_read_as_it_is_and_only_migrate_upgrades_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let id = SessionId::from_bytes([3; 16]);
    version_1_registry(&path, id);
    let bytes = std::fs::read(&path).unwrap();
    let db = path.to_str().unwrap();

    let out = tool(&["list", "alice", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(&id.to_string()), "{}", stdout(&out));
    let out = tool(&["check", "--db", db]);
    assert_eq!(code(&out), 1, "an old schema is a problem to report");
    assert!(
        stdout(&out).contains("schema version 1"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("migrate"),
        "says how: {}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "reading changed it");

    assert_eq!(code(&tool(&["migrate", "--db", db])), 0);
    let out = tool(&["check", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("schema version 2"),
        "{}",
        stdout(&out)
    );
}

/// Strings that name no file: the tool must refuse or connect, and create nothing.
#[test]
fn connection_strings_are_never_taken_for_files() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    // libpq's key=value form is PostgreSQL (port 1: nothing listens, so "cannot reach").
    for db in [
        "host=127.0.0.1 port=1 user=app password=Pw7Qz9 dbname=app",
        "dbname = app host=127.0.0.1 port=1 connect_timeout=2",
    ] {
        for command in [vec!["migrate"], vec!["list", "alice"]] {
            let out = tool_in(here, &[&command[..], &["--db", db]].concat());
            assert_eq!(code(&out), 3, "{command:?} {db}: {}", stderr(&out));
            assert!(stderr(&out).contains("127.0.0.1:1/app"), "{}", stderr(&out));
            assert!(!stderr(&out).contains("Pw7Qz9"), "{}", stderr(&out));
            assert_eq!(listing(here), Vec::<String>::new(), "{db} made a file");
        }
    }
    // Other schemes, SQLite's `file:` URIs and key=value text that does not parse: refused
    // with a sentence naming what is supported, and the password never echoed.
    for db in [
        "mysql://app:Pw7Qz9@127.0.0.1/app",
        "redis://:Pw7Qz9@127.0.0.1:6379/0",
        "mongodb+srv://app:Pw7Qz9@cluster.example/app",
        "file:sessions.db",
        "file:///tmp/sessions.db?mode=rwc",
        "host=127.0.0.1 port=nope password=Pw7Qz9",
        "host=127.0.0.1 password=Pw7 Qz9",
        "sqlite://",
    ] {
        let out = tool_in(here, &["migrate", "--db", db]);
        let said = stderr(&out);
        assert_eq!(code(&out), 2, "{db}: {said}");
        assert!(said.contains("postgres://"), "names what works: {said}");
        for secret in ["Pw7", "Qz9"] {
            assert!(!said.contains(secret), "{db}: {said}");
        }
        assert_eq!(listing(here), Vec::<String>::new(), "{db} made a file");
    }
    // `sqlite://PATH` is the path after the scheme, as sqlx reads it.
    let out = tool_in(here, &["migrate", "--db", "sqlite://s.db"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(listing(here).contains(&"s.db".to_owned()));
    let absolute = format!("sqlite://{}", here.join("s.db").display());
    let out = tool(&["list", "alice", "--db", &absolute]);
    assert_eq!(code(&out), 1, "the same registry, empty: {}", stderr(&out));
}

/// A password in each of the ways people write one, with what must never be printed.
const SPELLINGS: [(&str, &[&str]); 7] = [
    ("postgres://app:Pw7Qz9@127.0.0.1:1/app", &["Pw7Qz9"]),
    (
        "postgres://app@127.0.0.1:1/app?password=Pw7Qz9",
        &["Pw7Qz9"],
    ),
    (
        "postgresql://app@127.0.0.1:1/app?sslmode=disable&password=Pw7Qz9&schema=s1",
        &["Pw7Qz9"],
    ),
    ("postgres://app:Pw7/Qz9@127.0.0.1:1/app", &["Pw7", "Qz9"]),
    ("postgres://app:Pw7@Qz9@127.0.0.1:1/app", &["Pw7", "Qz9"]),
    (
        "host=127.0.0.1 port=1 user=app password=Pw7Qz9 dbname=app",
        &["Pw7Qz9"],
    ),
    (
        "host=127.0.0.1 port=1 user=app password='Pw7 Qz9' dbname=app",
        &["Pw7", "Qz9"],
    ),
];

#[test]
fn passwords_never_reach_the_tools_output() {
    for (db, secrets) in SPELLINGS {
        for args in [
            vec!["stats", "--db", db],
            vec!["list", "alice", "--db", db, "--json"],
            vec!["migrate", "--db", db],
        ] {
            let out = tool(&args);
            let said = format!("{}{}", stdout(&out), stderr(&out));
            assert!([2, 3].contains(&code(&out)), "{args:?}: {said}");
            assert!(said.contains("127.0.0.1"), "names the server: {said}");
            for secret in secrets {
                assert!(!said.contains(secret), "{args:?} printed {secret}: {said}");
            }
        }
    }
}

/// Connection strings with a space or tab before them, or one slash short, are neither
/// connection strings nor paths: refused (exit 2), with no password printed and no file created
/// (found by review: they were taken as SQLite paths and printed whole).
#[test]
fn connection_string_look_alikes_are_refused_without_their_password() {
    let dir = tempfile::tempdir().unwrap();
    for db in [
        " postgres://app:Pw7Qz9@127.0.0.1:1/app",
        "\tpostgresql://app:Pw7Qz9@127.0.0.1:1/app",
        "postgres:/app:Pw7Qz9@127.0.0.1:1/app",
        "postgres:app:Pw7Qz9@127.0.0.1:1/app",
    ] {
        for args in [vec!["migrate", "--db", db], vec!["stats", "--db", db]] {
            let out = tool_in(dir.path(), &args);
            let said = format!("{}{}", stdout(&out), stderr(&out));
            assert_eq!(code(&out), 2, "{args:?}: {said}");
            assert!(!said.contains("Pw7Qz9"), "{args:?}: {said}");
            assert!(said.contains("postgres://"), "names what works: {said}");
        }
        assert!(listing(dir.path()).is_empty(), "{db:?} created a file");
    }
}

/// The library's own errors (what an application logs) for the same strings.
#[test]
fn registry_errors_hold_no_password() {
    for (db, secrets) in SPELLINGS {
        let builder = PostgresRegistry::builder(db).connect_timeout(Duration::from_secs(2));
        let shown = format!("{builder:?}");
        let Err(e) = builder.open() else {
            panic!("{db}: opened, but nothing listens on port 1");
        };
        let said = format!("{e} / {e:?} / {shown}");
        for secret in secrets {
            assert!(!said.contains(secret), "{db}: {said}");
        }
    }
}

#[tokio::test]
async fn ids_that_start_with_a_hyphen_are_ids_wherever_an_id_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = SqliteRegistry::open(&path).unwrap();
    let now = SystemTime::now();
    let (gone, kept, other) = (hyphen_id(1), hyphen_id(2), SessionId::from_bytes([5; 16]));
    for id in [gone, kept, other] {
        reg.register(NewSession::new(id, "alice", now, now + HOUR))
            .await
            .unwrap();
    }
    reg.stop();
    let db = path.to_str().unwrap();
    let out = tool(&["revoke-session", &gone.to_string(), "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = tool(&[
        "revoke",
        "alice",
        "--except",
        &kept.to_string(),
        "--yes",
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("revoked 1 session"),
        "{}",
        stdout(&out)
    );
    let listed = json(&tool(&["list", "alice", "--db", db, "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.to_string()]);
    // A flag is still a flag.
    let out = tool(&["revoke-session", "--db", db, "--json", &kept.to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["revoked"], true);
}

/// What an application may have recorded: terminal controls in C0 (ESC, BEL), C1 (CSI) and DEL.
const HOSTILE: &str = "x\x1b[2J\x1b]0;owned\x07\u{9b}31m\x7f";

fn assert_no_controls(text: &str, what: &str) {
    let found: Vec<char> = text
        .chars()
        .filter(|c| *c != '\n' && (c.is_control() || *c == '\x7f'))
        .collect();
    assert!(found.is_empty(), "{what} printed {found:?}: {text:?}");
}

#[tokio::test]
async fn text_output_escapes_terminal_controls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let reg = SqliteRegistry::open(&path).unwrap();
    let now = SystemTime::now();
    let user = format!("mallory{HOSTILE}");
    let s = NewSession::new(SessionId::from_bytes([9; 16]), &*user, now, now + HOUR)
        .user_agent(format!("Firefox{HOSTILE}"));
    reg.register(s).await.unwrap();
    reg.stop();
    let db = path.to_str().unwrap();

    let out = tool(&["list", &user, "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_no_controls(&stdout(&out), "list");
    assert!(
        stdout(&out).contains(r"Firefoxx\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{7f}"),
        "escaped, readable: {}",
        stdout(&out)
    );
    let out = tool(&["list", &user, "--db", db, "--json"]);
    assert_no_controls(&stdout(&out), "list --json");
    assert_eq!(json(&out)[0]["user_agent"], format!("Firefox{HOSTILE}"));
    let out = tool(&["list", &format!("nobody{HOSTILE}"), "--db", db]);
    assert_eq!(code(&out), 1);
    assert_no_controls(&stderr(&out), "list's error");

    let key = Key::generate();
    let sealer = Sealer::new(KeyRing::new(key.clone()), Mode::Private);
    let mut claims = Claims::new(now, HOUR, HOUR / 2);
    claims.set_user(&*user, now);
    claims.insert(&format!("k{HOSTILE}"), HOSTILE).unwrap();
    let cookie = sealer.seal("__Host-session", &claims).unwrap();
    let out = tool(&["inspect", &cookie, "--key", &key.to_base64()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_no_controls(&stdout(&out), "inspect");
    let out = tool(&["inspect", &cookie, "--key", &key.to_base64(), "--json"]);
    assert_no_controls(&stdout(&out), "inspect --json");
    assert_eq!(json(&out)["user"], user);
    assert_eq!(json(&out)["data"][format!("k{HOSTILE}")], HOSTILE);
}

#[test]
fn inspect_finds_the_development_cookie_and_no_output_starts_blank() {
    let key = Key::generate();
    let sealer = Sealer::new(KeyRing::new(key.clone()), Mode::Private);
    let now = SystemTime::now();
    let claims = Claims::new(now, HOUR, HOUR / 2);
    for name in ["session", "__Secure-session", "__Host-session"] {
        let cookie = sealer.seal(name, &claims).unwrap();
        let out = tool(&["inspect", &cookie, "--key", &key.to_base64()]);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.starts_with('\n'), "a blank first line: {text:?}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("cookie name") && l.ends_with(&format!(" {name}"))),
            "says which name opened it: {text}"
        );
    }
    // A name the tool does not guess is still an error that says what to pass.
    let cookie = sealer.seal("sid", &claims).unwrap();
    let out = tool(&["inspect", &cookie, "--key", &key.to_base64()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--name"), "{}", stderr(&out));
    let out = tool(&[
        "inspect",
        &cookie,
        "--key",
        &key.to_base64(),
        "--name",
        "sid",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(code(&tool(&["migrate", "--db", db.to_str().unwrap()])), 0);
    let out = tool(&["stats", "--db", db.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("registry"), "{:?}", stdout(&out));
}

/// The exit codes, as `--help` says them, are what the README says.
#[test]
fn help_and_readme_agree_on_exit_codes() {
    let help = stdout(&tool(&["--help"]));
    let line = help
        .lines()
        .find(|l| l.starts_with("Exit codes:"))
        .expect("--help lists the exit codes");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for code in line.trim_start_matches("Exit codes:").split(", ") {
        let code = code.trim().trim_end_matches('.');
        let (number, meaning) = code.split_once(' ').unwrap();
        let said = format!("{number} {meaning}");
        let after = readme
            .find(&said)
            .map(|at| &readme[at + said.len()..])
            .unwrap_or_else(|| panic!("the README does not say {said:?}"));
        assert!(
            after.starts_with(',') || after.starts_with('.') || after.starts_with(" ("),
            "the README says more for exit {number} than --help: {said:?}{}",
            &after[..after.len().min(40)]
        );
    }
}
