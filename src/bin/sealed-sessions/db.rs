//! Which registry the tool works on ([`Location::parse`]), opened as the command needs it.

use std::time::{Duration, SystemTime};

use sealed_sessions::registry::{
    Location, PostgresRegistry, Registry, RegistryCheck, RegistryError, RegistryStats,
    SqliteRegistry,
};

use crate::Failure;

/// An open registry of either backend.
pub enum Db {
    Sqlite(SqliteRegistry),
    Postgres(PostgresRegistry),
}

/// What a command may do to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create the registry (file and schema) or upgrade it: `migrate` only.
    Create,
    /// Write to a registry that is there (revocations, cleanup).
    Write,
    /// Only read: an SQLite file is opened read-only.
    Read,
}

impl Db {
    /// Opens `db` for `access`. Short of `Create`, a missing registry is an error that says how
    /// to create one, so that a typo never looks like an empty registry, and a file that is not
    /// a registry is left as it was.
    pub fn open(db: Location<'_>, access: Access) -> Result<Db, Failure> {
        let failed = |e: RegistryError| Failure::registry(db, e);
        let path = match db {
            Location::Postgres(url) => {
                let registry = PostgresRegistry::builder(url)
                    .migrate(access == Access::Create)
                    // A short-lived tool: no background cleanup, and a quick answer if the
                    // server is not there.
                    .cleanup_interval(Duration::ZERO)
                    .connect_timeout(Duration::from_secs(5))
                    .open()
                    .map_err(failed)?;
                return Ok(Db::Postgres(registry));
            }
            Location::Sqlite(path) => path,
            _ => return Err(Failure::input(format!("{db}: an unknown kind of registry"))),
        };
        if access != Access::Create && !path.is_file() {
            return Err(Failure::input(format!(
                "there is no registry database at {db} (`sealed-sessions migrate` creates one)"
            )));
        }
        let registry = SqliteRegistry::builder(path)
            .migrate(access == Access::Create)
            .read_only(access == Access::Read)
            .cleanup_interval(Duration::ZERO)
            .open()
            .map_err(failed)?;
        Ok(Db::Sqlite(registry))
    }

    pub fn registry(&self) -> &dyn Registry {
        match self {
            Db::Sqlite(r) => r,
            Db::Postgres(r) => r,
        }
    }

    pub async fn stats(&self, now: SystemTime) -> Result<RegistryStats, RegistryError> {
        match self {
            Db::Sqlite(r) => r.stats(now).await,
            Db::Postgres(r) => r.stats(now).await,
        }
    }

    pub async fn check(&self) -> Result<RegistryCheck, RegistryError> {
        match self {
            Db::Sqlite(r) => r.check().await,
            Db::Postgres(r) => r.check().await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
