//! Which registry the tool works on: a file path means SQLite, a `postgres://` URL PostgreSQL.

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

impl Db {
    /// Opens `db`. With `create`, a missing schema (or SQLite file) is created; without, it is
    /// an error that says how to create it, so that a typo never looks like an empty registry.
    pub fn open(db: &str, create: bool) -> Result<Db, Failure> {
        let failed = |e: RegistryError| Failure::registry(db, e);
        let path = match Location::of(db) {
            Location::Postgres(url) => {
                let registry = PostgresRegistry::builder(url)
                    .migrate(create)
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
        if !create && !path.is_file() {
            return Err(Failure::input(format!(
                "there is no registry database at {db} (`sealed-sessions migrate` creates one)"
            )));
        }
        let registry = SqliteRegistry::builder(path)
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
