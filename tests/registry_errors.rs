//! Opening a bad database file gives a typed error at open, never a panic.
#![cfg(feature = "sqlite")]

mod skip;

use std::path::Path;
use std::time::{Duration, SystemTime};

use sealed_sessions::registry::{NewSession, Registry, RegistryError, SqliteRegistry};
use sealed_sessions::SessionId;

fn open(path: &Path) -> Result<SqliteRegistry, RegistryError> {
    SqliteRegistry::open(path)
}

#[test]
fn a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = open(&missing.join("s.db")).unwrap_err();
    assert!(
        matches!(&err, RegistryError::MissingDirectory(d) if *d == missing),
        "{err:?}"
    );
}

#[test]
fn a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(
        &path,
        "this is a text file, not an SQLite database\n".repeat(200),
    )
    .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(&err, RegistryError::NotADatabase(p) if *p == path),
        "{err:?}"
    );
}

#[test]
fn a_corrupt_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reg = open(&path).unwrap();
    let now = SystemTime::now();
    rt.block_on(async {
        for _ in 0..50 {
            let id = SessionId::generate();
            let s = NewSession::new(id, "alice", now, now + Duration::from_secs(60));
            reg.register(s).await.unwrap();
        }
    });
    drop(reg);
    // Keep the 100-byte header (so it still looks like SQLite) and scribble over the schema page.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 4096,
        "the database was checkpointed into the file"
    );
    bytes[100..4096].fill(0x5a);
    std::fs::write(&path, bytes).unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(&err, RegistryError::Corrupt(p) if *p == path),
        "{err:?}"
    );
}

#[test]
fn a_directory_instead_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, RegistryError::CannotOpen { path, .. } if path == dir.path()),
        "{err:?}"
    );
    // The cause is carried, not only the path.
    let source = std::error::Error::source(&err).expect("a cause");
    assert!(source.to_string().contains("directory"), "{source}");
    assert!(err.to_string().contains("directory"), "{err}");
}

/// Whether this process ignores file permissions (root, CAP_DAC_OVERRIDE), as on CI containers.
fn ignores_permissions(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    let mut perms = std::fs::metadata(&probe).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&probe, perms).unwrap();
    std::fs::OpenOptions::new().write(true).open(&probe).is_ok()
}

/// Clears the immutable attribute again, so the temp dir can be removed even if the test fails.
struct Immutable<'a>(&'a Path);

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(self.0)
            .status();
    }
}

#[test]
fn a_read_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open(&path).unwrap());
    let _guard;
    if ignores_permissions(dir.path()) {
        // Permissions do not stop this process; an immutable file stops even root.
        let made_immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        if !made_immutable {
            skip::skipped("privileged process and `chattr +i` is unavailable here");
            return;
        }
        _guard = Immutable(&path);
    } else {
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    let err = open(&path).unwrap_err();
    assert!(
        matches!(&err, RegistryError::ReadOnly(p) if *p == path),
        "{err:?}"
    );
}

#[test]
fn a_schema_from_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::SchemaTooNew {
                found: 99,
                supported: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_dropped_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE revocations")
        .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            RegistryError::MissingTable {
                table: "revocations",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_fresh_file_gets_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!((version, mode.as_str()), (2, "wal"));
    assert_eq!(indexes, ["sessions_expires_at", "sessions_user_id"]);
    drop(conn);
    drop(open(&path).unwrap()); // reopening an up-to-date file migrates nothing
}

#[tokio::test]
async fn a_version_1_file_migrates_keeping_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // Version 1 as it shipped.
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
    let id = sealed_sessions::SessionId::generate();
    conn.execute(
        "INSERT INTO sessions VALUES (?1, 'alice', 0, 32503680000000, 0, NULL, NULL, NULL)",
        [id.as_bytes()],
    )
    .unwrap();
    drop(conn);

    let reg = open(&path).unwrap();
    use sealed_sessions::registry::Registry;
    assert!(reg
        .validate(id, "alice", std::time::SystemTime::now())
        .await
        .unwrap());
    reg.stop();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let triggers: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'sessions_deleted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((version, triggers), (2, 1));
}
