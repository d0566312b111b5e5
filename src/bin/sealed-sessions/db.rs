//! Which registry the tool works on: a file path means SQLite, a `postgres://` URL PostgreSQL.

use std::path::Path;
use std::time::{Duration, SystemTime};

use sealed_sessions::registry::{
    PostgresRegistry, Registry, RegistryCheck, RegistryError, RegistryStats, SqliteRegistry,
};

use crate::Failure;

/// An open registry of either backend.
pub enum Db {
    Sqlite(SqliteRegistry),
    Postgres(PostgresRegistry),
}

/// Whether `db` names a PostgreSQL server rather than an SQLite file.
pub fn is_url(db: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        db.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// `db` for messages: a URL's password replaced by `***`.
pub fn shown(db: &str) -> String {
    let Some((scheme, rest)) = db.split_once("://") else {
        return db.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => db.to_owned(),
    }
}

impl Db {
    /// Opens `db`. With `create`, a missing schema (or SQLite file) is created; without, it is
    /// an error that says how to create it, so that a typo never looks like an empty registry.
    pub fn open(db: &str, create: bool) -> Result<Db, Failure> {
        let failed = |e: RegistryError| Failure::registry(db, e);
        if is_url(db) {
            let registry = PostgresRegistry::builder(db)
                .migrate(create)
                // A short-lived tool: no background cleanup, and a quick answer if the server
                // is not there.
                .cleanup_interval(Duration::ZERO)
                .connect_timeout(Duration::from_secs(5))
                .open()
                .map_err(failed)?;
            return Ok(Db::Postgres(registry));
        }
        let path = Path::new(db);
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
