//! What an operator asks of a registry beyond the [`Registry`](super::Registry) trait: figures
//! ([`RegistryStats`]) and a health check ([`RegistryCheck`]), as the command-line tool's
//! `stats` and `check` print them. Each backend answers with its own SQL
//! (`SqliteRegistry::stats`, `PostgresRegistry::stats`, and `check` beside them).

use std::time::SystemTime;

/// Figures about a registry at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Sessions that are neither revoked nor expired.
    pub active_sessions: u64,
    /// Users with at least one active session.
    pub users: u64,
    /// Sessions revoked in the hour before the moment asked about.
    pub revoked_last_hour: u64,
    /// Sessions revoked in the day before the moment asked about.
    pub revoked_last_day: u64,
    /// When the oldest active session was created, if there is one.
    pub oldest_active: Option<SystemTime>,
    /// Rows in the sessions table (active, revoked, and expired ones not yet cleaned up).
    pub session_rows: u64,
    /// Rows in the revocation log.
    pub revocation_rows: u64,
    /// The storage the registry takes, in bytes (the database file with its WAL, or the
    /// tables with their indexes).
    pub bytes: u64,
}

/// The outcome of a registry's health check: its schema version, and every problem found
/// (none: healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryCheck {
    /// The schema version found.
    pub schema_version: i64,
    /// What is wrong, one sentence each (SQLite's `integrity_check`, a missing table or
    /// trigger).
    pub problems: Vec<String>,
}

impl RegistryCheck {
    /// Whether nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }
}
