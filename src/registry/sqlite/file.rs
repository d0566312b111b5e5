//! The registry's files: opening connections as the builder's [`Access`] says, naming which
//! files a path points at ([`Identity`]), and closing a connection to a file that is no longer
//! the registry's ([`close_quietly`]).
//!
//! Its own file, below the shared state (`shared.rs`, which keeps the access and the identity)
//! and the reopening of replaced files (`reopen.rs`, which acts on them); why the registry
//! watches its files' identity is told there.
//!
//! Without migration, the file is first looked at through a read-only connection, and only a
//! registry is opened for writing: an operator's tool pointed at another application's
//! database, or at an empty file, must leave it as it was. That first look opens the file
//! `immutable` when it has no `-wal` (nothing uncheckpointed to read, and SQLite then creates no
//! `-wal` or `-shm` beside a file that may not be ours); a file with a `-wal` is in use, and is
//! read with locks as usual.

use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::schema::{connect, make_durable, map_err, migrate, require_tables, SCHEMA_VERSION};
use crate::registry::RegistryError;

/// How the registry opens its file: from the builder's `migrate` and `read_only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Creates the file and the schema if missing, and migrates an older schema.
    Create,
    /// Only a file that is a registry already; nothing is created or migrated.
    Existing,
    /// As `Existing`, with every connection read-only.
    ReadOnly,
}

impl Access {
    /// The first connection (the writer's): the schema created or migrated, or, without
    /// migration, checked to be a registry's before the file is opened any other way.
    pub(crate) fn open_checked(
        self,
        path: &Path,
        busy_timeout: std::time::Duration,
    ) -> Result<Connection, RegistryError> {
        if self == Access::Create {
            let mut conn = connect(path, busy_timeout)?;
            migrate(&mut conn, path)?;
            return Ok(conn);
        }
        check_registry(path)?;
        self.open(path, busy_timeout)
    }

    /// Another connection, to a file [`open_checked`](Self::open_checked) has vouched for.
    pub(crate) fn open(
        self,
        path: &Path,
        busy_timeout: std::time::Duration,
    ) -> Result<Connection, RegistryError> {
        match self {
            Access::Create => connect(path, busy_timeout),
            Access::Existing => connect_existing(path, busy_timeout, false),
            Access::ReadOnly => connect_existing(path, busy_timeout, true),
        }
    }
}

/// Whether `path` is a registry this library can use, looked at read-only.
fn check_registry(path: &Path) -> Result<(), RegistryError> {
    let err = |e: rusqlite::Error| map_err(path, &e);
    if !path.is_file() {
        return Err(RegistryError::CannotOpen {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "there is no registry database there, and it was opened without migration",
            )
            .into(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match immutable_uri(path).filter(|_| file_id(&companion(path, "-wal")).is_none()) {
        Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
        None => Connection::open_with_flags(path, flags),
    }
    .map_err(err)?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    require_tables(&conn, path)?;
    // Every registry has set its version since the first release: a file with none, though it
    // has tables of the same names, is someone else's.
    if found < 1 {
        return Err(RegistryError::NotARegistry(path.to_path_buf()));
    }
    if found < SCHEMA_VERSION {
        tracing::warn!(
            found,
            current = SCHEMA_VERSION,
            "the registry's schema is older than this library's, and it was opened without \
             migration: open it with migration (the default, or `sealed-sessions migrate`)"
        );
    }
    Ok(())
}

/// `file:PATH?immutable=1`, for a path SQLite's URI syntax can carry.
fn immutable_uri(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for c in text.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            // A relative path that starts with `//` would be read as an authority.
            '/' if uri == "file:" && text.starts_with("//") => uri.push_str("%2f"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

/// One connection to a file that is a registry, never creating it; read-only, or with the
/// registry's pragmas as `connect` sets them.
fn connect_existing(
    path: &Path,
    busy_timeout: std::time::Duration,
    read_only: bool,
) -> Result<Connection, RegistryError> {
    let err = |e: rusqlite::Error| map_err(path, &e);
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn =
        Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    if read_only {
        return Ok(conn);
    }
    make_durable(&conn, path)?;
    Ok(conn)
}

/// `path` with `suffix` appended: its `-wal` or `-shm`.
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Which file a path names: device and inode, or `None` if there is no file.
type FileId = Option<(u64, u64)>;

/// The identities of the database file, its `-wal` and its `-shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    // Read by `reopen.rs`, which checkpoints into a database file that is still the same.
    pub(super) db: FileId,
    wal: FileId,
    shm: FileId,
}

impl Identity {
    /// What `path` and its companions name now.
    pub(crate) fn of(path: &Path) -> Self {
        let with = |suffix: &str| file_id(&companion(path, suffix));
        Identity {
            db: file_id(path),
            wal: with("-wal"),
            shm: with("-shm"),
        }
    }
}

#[cfg(unix)]
fn file_id(path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> FileId {
    None
}

/// Closes a connection to a file that is no longer the registry's, without the checkpoint SQLite
/// does when the last connection to a file closes: that would delete the path's `-wal` and
/// `-shm` by name, which by now may belong to the new database.
pub(crate) fn close_quietly(conn: Connection) {
    let _ = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
    drop(conn);
}
