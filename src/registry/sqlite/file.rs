//! Noticing that the registry's database file was deleted or replaced while open, and reopening.
//!
//! SQLite goes on using the files it has open. After `rm sessions.db` (or of its `-wal` or
//! `-shm`) a connection keeps reading and committing to an unlinked file that vanishes when the
//! process exits, while every other process that opens the path gets a new, empty database. For
//! an allow-list that breaks two promises: a lost registry no longer signs users out in the
//! running process, and a revocation made by another process (an operator's `revoke_user`) never
//! reaches it. So the registry records the identity (device and inode) of the three files after
//! opening them, and checks it every poll interval (the poller) and before every write batch and
//! at least every second (the writer). When the path names another file, or none:
//!
//! 1. the validation cache is emptied and reads fail with [`RegistryError::Replaced`] (nothing is
//!    vouched for from a file that is no longer the registry);
//! 2. the writer, if the database file itself is still there, checkpoints its old WAL into it,
//!    so that commits that lived only in a deleted `-wal` are not lost;
//! 3. the old connections are closed *without* SQLite's checkpoint-on-close, which would delete
//!    the new `-wal` and `-shm` by name;
//! 4. the writer reopens the path (creating and migrating a new, empty database if there is none:
//!    every user is then signed out, as for any lost registry), publishes a new generation, and
//!    the readers reopen before their next read.
//!
//! If reopening fails (the directory went too, or is read-only), writes fail with that typed
//! error and reads with `Replaced`, and the writer tries again at its next wake-up.
//! Platforms without inode numbers skip the check.
//!
//! A registry opened without migration ([`Access::Existing`], [`Access::ReadOnly`]) reopens the
//! same way, but only a file that is a registry: it never creates one.
//!
//! This file also opens connections as the builder's [`Access`] says. Without migration, the
//! file is first looked at through a read-only connection, and only a registry is opened for
//! writing: an operator's tool pointed at another application's database, or at an empty file,
//! must leave it as it was. That first look opens the file `immutable` when it has no `-wal`
//! (nothing uncheckpointed to read, and SQLite then creates no `-wal` or `-shm` beside a file
//! that may not be ours); a file with a `-wal` is in use, and is read with locks as usual.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::schema::{connect, map_err, migrate, SCHEMA_VERSION};
use super::threads::{Shared, SyncState};
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
    for table in ["sessions", "revocations"] {
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
                [table],
                |row| row.get(0),
            )
            .map_err(err)?;
        if !exists {
            return Err(RegistryError::MissingTable {
                path: path.to_path_buf(),
                table,
            });
        }
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
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
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
    db: FileId,
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

impl Shared {
    /// Whether the registry's files were deleted or replaced since they were opened. The first
    /// caller to notice empties the cache; the answer stays `true` until the writer reopened.
    pub(crate) fn file_replaced(&self) -> bool {
        if self.stale.load(Ordering::SeqCst) {
            return true;
        }
        let identity = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        if Identity::of(&self.path) == *identity {
            return false;
        }
        self.stale.store(true, Ordering::SeqCst);
        self.cache.clear();
        true
    }

    /// The error for a read while the files are replaced and not yet reopened.
    pub(crate) fn replaced(&self) -> RegistryError {
        RegistryError::Replaced(self.path.clone())
    }

    /// For a reader: its connection, reopened first if the writer reopened the files since.
    pub(crate) fn reader_connection<'c>(
        &self,
        conn: &'c mut Option<Connection>,
        generation: &mut u64,
    ) -> Result<&'c Connection, RegistryError> {
        if self.stale.load(Ordering::SeqCst) {
            return Err(self.replaced());
        }
        let current = self.generation.load(Ordering::SeqCst);
        if current != *generation {
            if let Some(old) = conn.take() {
                close_quietly(old);
            }
            *generation = current;
        }
        match conn {
            Some(conn) => Ok(conn),
            None => Ok(conn.insert(self.access.open(&self.path, self.busy_timeout)?)),
        }
    }

    /// For the writer: its connection, after reopening the files if they were replaced.
    pub(crate) fn writer_connection<'c>(
        &self,
        conn: &'c mut Option<Connection>,
    ) -> Result<&'c mut Connection, RegistryError> {
        if self.file_replaced() || conn.is_none() {
            self.reopen(conn)?;
        }
        conn.as_mut().ok_or_else(|| self.replaced())
    }

    fn reopen(&self, conn: &mut Option<Connection>) -> Result<(), RegistryError> {
        let mut identity = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = conn.take() {
            if Identity::of(&self.path).db == identity.db {
                // Only the -wal or -shm went: what was committed to the old WAL goes into the
                // database file, which is still the registry's. Best effort: nothing else can
                // be done with it.
                let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
            close_quietly(old);
        }
        let fresh = self.access.open_checked(&self.path, self.busy_timeout)?;
        let sync = SyncState::new(self.access.open(&self.path, self.busy_timeout)?, &self.path)?;
        let old_sync = std::mem::replace(
            &mut *self.sync.lock().unwrap_or_else(|p| p.into_inner()),
            sync,
        );
        close_quietly(old_sync.conn);
        *conn = Some(fresh);
        *identity = Identity::of(&self.path);
        // Order matters: readers see the new generation before the flag clears, and whatever a
        // read of the old file put into the cache in the meantime goes.
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.stale.store(false, Ordering::SeqCst);
        self.cache.clear();
        Ok(())
    }
}
