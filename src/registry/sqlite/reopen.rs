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
//! A registry opened without migration ([`Access::Existing`](super::file::Access::Existing),
//! [`Access::ReadOnly`](super::file::Access::ReadOnly)) reopens the same way, but only a file
//! that is a registry: it never creates one.
//!
//! The methods live apart from the shared state they act on (`shared.rs`) and from the files'
//! identity and opening (`file.rs`), which both sit below this file.

use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::file::{close_quietly, Identity};
use super::shared::{Shared, SyncState};
use crate::registry::RegistryError;
use crate::telemetry::feed::Flush;

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
        if let Some(freshness) = &self.freshness {
            freshness.flushed(Flush::ReplacedDatabase);
        }
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
