//! Where a registry is, as one string: a file path means SQLite, a `postgres://` (or
//! `postgresql://`) URL means PostgreSQL. For command lines, environment variables and
//! configuration files that name "the session database" either way.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::{Registry, RegistryError};

/// A registry's location, read from one string; its [`Display`](fmt::Display) hides a URL's
/// password, so it can go into logs and error messages.
///
/// ```
/// use sealed_sessions::registry::Location;
///
/// let db = Location::of("postgres://app:s3cret@db.internal/app?schema=sessions");
/// assert!(matches!(db, Location::Postgres(_)));
/// assert_eq!(db.to_string(), "postgres://app:***@db.internal/app?schema=sessions");
/// assert!(matches!(Location::of("./sessions.db"), Location::Sqlite(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location<'a> {
    /// An SQLite database file.
    Sqlite(&'a Path),
    /// A PostgreSQL server (a connection URL, which may carry `?schema=`).
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    /// Reads `db`: a `postgres://` or `postgresql://` URL (any case), or else a path.
    pub fn of(db: &'a str) -> Self {
        let is_url = ["postgres://", "postgresql://"].iter().any(|scheme| {
            db.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if is_url {
            Location::Postgres(db)
        } else {
            Location::Sqlite(Path::new(db))
        }
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
                let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                match authority.rsplit_once('@') {
                    Some((user_info, host)) if user_info.contains(':') => {
                        let user = user_info.split(':').next().unwrap_or_default();
                        write!(f, "{scheme}://{user}:***@{host}{tail}")
                    }
                    _ => f.write_str(url),
                }
            }
        }
    }
}

/// Opens the registry `db` names ([`Location::of`]) with its backend's defaults: a
/// `PostgresRegistry` (feature `postgres`) or a `SqliteRegistry` (feature `sqlite`). A location
/// whose backend is not compiled in is [`RegistryError::InvalidConfig`], naming the feature.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// let dir = tempfile::tempdir()?;
/// let registry = sealed_sessions::registry::open(dir.path().join("s.db").to_str().unwrap())?;
/// # let _ = registry;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open(db: &str) -> Result<Arc<dyn Registry>, RegistryError> {
    match Location::of(db) {
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => Ok(Arc::new(super::PostgresRegistry::open(url)?)),
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => Ok(Arc::new(super::SqliteRegistry::open(path)?)),
        #[allow(unreachable_patterns)] // with both backends compiled in
        other => Err(RegistryError::InvalidConfig(format!(
            "{other} needs the crate's `{}` feature",
            match other {
                Location::Postgres(_) => "postgres",
                Location::Sqlite(_) => "sqlite",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_and_hidden_passwords() {
        for (db, shown) in [
            ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
            ("POSTGRESQL://u@h/db", "POSTGRESQL://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
        ] {
            assert!(matches!(Location::of(db), Location::Postgres(_)), "{db}");
            assert_eq!(Location::of(db).to_string(), shown);
        }
        assert_eq!(Location::of("a:b@c.db").to_string(), "a:b@c.db");
        assert!(matches!(Location::of("postgres.db"), Location::Sqlite(_)));
    }
}
