//! The SQLite side of the registry: opening connections, the schema and its migrations, error
//! mapping and the time representation.
//!
//! Schema version 2 (`PRAGMA user_version = 2`):
//!
//! ```sql
//! CREATE TABLE sessions (id BLOB PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
//!     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL,
//!     revoked_at INTEGER, user_agent TEXT, ip TEXT) WITHOUT ROWID;
//! CREATE INDEX sessions_user_id ON sessions (user_id);
//! CREATE INDEX sessions_expires_at ON sessions (expires_at);
//! CREATE TABLE revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL,
//!     expires_at INTEGER NOT NULL);
//! -- version 2:
//! CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
//!     WHEN old.revoked_at IS NULL AND old.expires_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000
//!     BEGIN INSERT INTO revocations (id, expires_at) VALUES (old.id, old.expires_at); END;
//! ```
//!
//! A log entry with an empty id means "forget every cached session": `revoke_all` writes one
//! per batch instead of one per session (every poller empties its cache at it).
//!
//! Times are integer milliseconds since the Unix epoch. `revocations.seq` is `AUTOINCREMENT` so
//! that pruning the newest entries can never make a sequence number be handed out twice, which
//! would hide a revocation from other processes' pollers.
//!
//! The trigger keeps the allow-list promise for rows deleted by any means (an operator's
//! `DELETE`, a script, another library version): a deleted live session is logged as revoked,
//! so every process's poller evicts it from its cache, exactly as for a revocation. Rows already
//! revoked were logged when revoked, and rows already expired are refused by every cache anyway
//! (which keeps `delete_expired` from logging what it deletes). A `delete_expired(now)` with a
//! `now` ahead of the system clock deletes rows the clock calls live: those are logged, as any
//! deletion, and the same cleanup prunes only log entries expired by both clocks, so that every
//! process evicts them. The clock is `strftime('%s')`,
//! which every SQLite has (`unixepoch()` needs 3.38, its `'subsec'` 3.42: an operator's older
//! `sqlite3` shell, Debian 12's 3.40 say, would never have logged a deletion); whole seconds
//! only log a few more rows.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::registry::RegistryError;

/// The newest schema version this library creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Migrations from version `i` to `i + 1`, applied in one transaction at open.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    "
    CREATE TABLE sessions (
        id BLOB PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        revoked_at INTEGER,
        user_agent TEXT,
        ip TEXT
    ) WITHOUT ROWID;
    CREATE INDEX sessions_user_id ON sessions (user_id);
    CREATE INDEX sessions_expires_at ON sessions (expires_at);
    CREATE TABLE revocations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    );
",
    "
    CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
    WHEN old.revoked_at IS NULL AND old.expires_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000
    BEGIN
        INSERT INTO revocations (id, expires_at) VALUES (old.id, old.expires_at);
    END;
",
];

/// Maps an SQLite error to the registry's error, by its code; `path` names the database.
pub(crate) fn map_err(file: &Path, err: &rusqlite::Error) -> RegistryError {
    let path = || file.to_path_buf();
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => RegistryError::NotADatabase(path()),
        Some(ErrorCode::DatabaseCorrupt) => RegistryError::Corrupt(path()),
        Some(ErrorCode::ReadOnly) => RegistryError::ReadOnly(path()),
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            RegistryError::CannotOpen {
                path: path(),
                source: why_cannot_open(file).map_or_else(|| err.to_string().into(), Into::into),
            }
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => RegistryError::Busy,
        Some(ErrorCode::DiskFull) => RegistryError::Full,
        Some(ErrorCode::SystemIoFailure) if !writable(file) => RegistryError::ReadOnly(path()),
        _ => RegistryError::Backend(err.to_string().into()),
    }
}

/// What the operating system says of `file` when SQLite cannot open it ("unable to open
/// database file" alone does not tell a directory from a permission problem), if anything.
/// Asked without opening the file, for the reason `may_write` gives.
fn why_cannot_open(file: &Path) -> Option<std::io::Error> {
    if file.is_dir() {
        return Some(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "the path is a directory",
        ));
    }
    #[cfg(unix)]
    {
        use rustix::fs::Access;
        let target = if file.exists() {
            file
        } else {
            file.parent().filter(|d| !d.as_os_str().is_empty())?
        };
        if let Err(errno) = rustix::fs::access(target, Access::READ_OK | Access::WRITE_OK) {
            return Some(std::io::Error::from_raw_os_error(errno.raw_os_error()));
        }
    }
    None
}

/// After SQLite found the file damaged, drops the connection's cached pages. A page read while
/// damaged stays in the connection's cache (SQLite re-reads only pages another connection's
/// commit changed), so without this the connection would go on failing after the file has been
/// repaired.
pub(crate) fn forget_damage(conn: &Connection, err: &RegistryError) {
    if matches!(
        err,
        RegistryError::Corrupt(_) | RegistryError::NotADatabase(_)
    ) {
        let _ = conn.release_memory();
    }
}

/// Whether the database file and its `-wal` (where commits go first) can still be written.
/// SQLite reports a file made read-only while open (`chattr +i`, a file system remounted
/// read-only) as a plain I/O error, with the cause only in `errno`; this names it.
fn writable(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    may_write(path) && may_write(Path::new(&wal))
}

/// Whether this process may open `file` for writing, asked with `access(2)` and never by
/// opening it: closing any descriptor of a file drops every POSIX lock the process holds on it,
/// SQLite's included, and another process's last close would then delete the `-wal` and `-shm`
/// under the registry. A file that does not exist may be created: that is for SQLite to say.
fn may_write(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        match rustix::fs::access(file, rustix::fs::Access::WRITE_OK) {
            Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => false,
            Ok(()) | Err(_) => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        true
    }
}

/// Opens one connection to the registry file with the registry's pragmas (WAL, busy timeout,
/// synchronous=FULL). Errors are typed: a missing directory, a read-only file, not a database.
pub(crate) fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, RegistryError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(RegistryError::MissingDirectory(dir.to_path_buf()));
        }
    }
    // SQLite would fall back to read-only (or fail with a vague code) on a file it may not write;
    // asking the OS first names the problem.
    if path.is_file() && !may_write(path) {
        return Err(RegistryError::ReadOnly(path.to_path_buf()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e: rusqlite::Error| map_err(path, &e);
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    make_durable(&conn, path)?;
    Ok(conn)
}

/// Readies a connection the registry writes through: refused if SQLite fell back to read-only
/// (it does so silently when the file cannot be opened for writing: an error now rather than at
/// the first revocation), then WAL, and `synchronous = FULL` so that a revocation's commit
/// reaches the disk before `revoke` returns.
pub(crate) fn make_durable(conn: &Connection, path: &Path) -> Result<(), RegistryError> {
    let err = |e: rusqlite::Error| map_err(path, &e);
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
        return Err(RegistryError::ReadOnly(path.to_path_buf()));
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RegistryError::Backend(
            format!("cannot switch {} to WAL mode (got {mode})", path.display()).into(),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(err)
}

/// Creates or migrates the schema to [`SCHEMA_VERSION`], in one immediate transaction so that two
/// processes opening a fresh file at once cannot both create it, then checks the tables exist.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), RegistryError> {
    let err = |e: rusqlite::Error| map_err(path, &e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(migration).map_err(err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err)?;
    require_tables(&tx, path)?;
    tx.commit().map_err(err)
}

/// Checks that the registry's tables exist in `conn`'s database (at `path`, for the error).
pub(crate) fn require_tables(conn: &Connection, path: &Path) -> Result<(), RegistryError> {
    for table in ["sessions", "revocations"] {
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
                [table],
                |row| row.get(0),
            )
            .map_err(|e| map_err(path, &e))?;
        if !exists {
            return Err(RegistryError::MissingTable {
                path: path.to_path_buf(),
                table,
            });
        }
    }
    Ok(())
}

/// A time as stored: milliseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn to_ms(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The inverse of [`to_ms`].
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_precision() {
        for ms in [0, 1, 1_700_000_000_123, -5_000] {
            assert_eq!(to_ms(from_ms(ms)), ms);
        }
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_234_567_891);
        assert_eq!(to_ms(t), 1234);
    }
}
