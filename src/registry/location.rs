//! Where a registry is, as one string: a file path (or `sqlite://PATH`) means SQLite; a
//! `postgres://` or `postgresql://` URL, or libpq's `key=value` pairs, mean PostgreSQL. For
//! command lines, environment variables and configuration files that name "the session
//! database" either way.
//!
//! [`Location::parse`] refuses what names neither (`mysql://…`, SQLite's `file:` URIs, text
//! that looks like a connection string but does not parse), so that no such string ever becomes
//! the name of a new SQLite file, which would hold its password and be an empty registry that
//! revokes nothing. A path that happens to look like one of these can be written `./name`.

#[cfg(feature = "postgres")]
pub(crate) mod conninfo;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::{Registry, RegistryError};

/// What [`Location::parse`] says when a string names no registry.
const SUPPORTED: &str = "a registry is an SQLite file's path (or `sqlite://PATH`), or a \
    PostgreSQL connection string: a `postgres://` or `postgresql://` URL, or libpq's \
    `key=value` pairs (`host=… dbname=…`)";

/// A registry's location, read from one string; its [`Display`](fmt::Display) never shows a
/// password, so it can go into logs and error messages.
///
/// ```
/// use sealed_sessions::registry::Location;
///
/// let db = Location::parse("postgres://app:s3cret@db.internal/app?schema=sessions")?;
/// assert!(matches!(db, Location::Postgres(_)));
/// # #[cfg(feature = "postgres")]
/// assert_eq!(db.to_string(), "postgres://app:***@db.internal:5432/app?schema=sessions");
/// let db = Location::parse("host=db.internal user=app password=s3cret dbname=app")?;
/// assert!(matches!(db, Location::Postgres(_)));
/// assert!(!db.to_string().contains("s3cret"));
/// assert!(matches!(Location::parse("./sessions.db")?, Location::Sqlite(_)));
/// assert!(Location::parse("mysql://app:s3cret@db.internal/app").is_err());
/// # Ok::<(), sealed_sessions::registry::RegistryError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location<'a> {
    /// An SQLite database file.
    Sqlite(&'a Path),
    /// A PostgreSQL server: a connection URL (which may carry `?schema=`), or libpq's
    /// `key=value` connection string.
    Postgres(&'a str),
}

/// What a string looks like, before anything is checked.
enum Kind<'a> {
    Path,
    SqliteUrl(&'a str),
    Postgres,
    FileUri,
    /// A URL of another scheme (the scheme only: the rest may hold a password).
    OtherScheme(&'a str),
    /// `scheme:` without `//` (`postgres:/h/db`, a typo, or `mysql:…`): a URL's start, not a
    /// path anyone means.
    SchemeLike,
    /// Spaces or tabs around the text: a pasted string whose kind its first characters hide.
    Padded,
}

fn kind(db: &str) -> Kind<'_> {
    if let Some((scheme, rest)) = db.split_once("://") {
        // Two characters at least, so that a Windows drive (`C://x`) stays a path.
        let is_scheme = scheme.len() >= 2
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
        if is_scheme {
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Kind::Postgres,
                "sqlite" => Kind::SqliteUrl(rest),
                "file" => Kind::FileUri,
                _ => Kind::OtherScheme(scheme),
            };
        }
    }
    if db.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:")) {
        return Kind::FileUri;
    }
    // libpq's form starts with `keyword =` (spaces allowed around `=`, and before).
    let text = db.trim_start();
    let keyword = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(text, |end| &text[..end]);
    let is_keyword = keyword.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if is_keyword && text[keyword.len()..].trim_start().starts_with('=') {
        return Kind::Postgres;
    }
    if db.trim() != db {
        return Kind::Padded;
    }
    // A URI scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`) of two characters
    // at least (so that `C:` stays a drive), then `:`.
    let scheme = db.split_once(':').map_or("", |(scheme, _)| scheme);
    if scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return Kind::SchemeLike;
    }
    Kind::Path
}

impl<'a> Location<'a> {
    /// Reads `db` without checking it: PostgreSQL for a `postgres://` or `postgresql://` URL
    /// (any case) or libpq `key=value` text, the path after `sqlite://`, and otherwise `db`
    /// itself as a path, whatever it looks like.
    ///
    /// Before opening or creating anything, prefer [`parse`](Self::parse), which refuses
    /// other schemes and connection strings that do not parse. `of` stays for what is known to
    /// be valid (a location already opened, shown in a log line).
    pub fn of(db: &'a str) -> Self {
        match kind(db) {
            Kind::Postgres => Location::Postgres(db),
            Kind::SqliteUrl(path) => Location::Sqlite(Path::new(path)),
            Kind::Path | Kind::FileUri | Kind::OtherScheme(_) | Kind::SchemeLike | Kind::Padded => {
                Location::Sqlite(Path::new(db))
            }
        }
    }

    /// Reads `db` as [`of`](Self::of) does, but refuses what names no registry, with
    /// [`RegistryError::InvalidConfig`] and a sentence that does not repeat `db` (it may hold a
    /// password):
    ///
    /// - a URL of any scheme but `postgres`, `postgresql` and `sqlite` (`mysql://`, `redis://`);
    /// - SQLite's `file:` URIs, whose query parameters would be taken as part of a file name;
    ///   give the path;
    /// - `sqlite://` with no path or with a `?` (parameters are not supported);
    /// - text with spaces around it, and text that starts with a URL's scheme and `:` but not
    ///   `://` (`postgres:/h/db`; a file whose name has a colon is written `./name`);
    /// - a PostgreSQL URL or `key=value` string that does not parse, or whose password holds an
    ///   unencoded `@` (write `%40`), checked only with the `postgres` feature.
    ///
    /// `sqlite://PATH` is `PATH`, as sqlx reads it: `sqlite://s.db` is relative,
    /// `sqlite:///var/lib/app/s.db` absolute.
    pub fn parse(db: &'a str) -> Result<Self, RegistryError> {
        let refuse = |why: String| Err(RegistryError::InvalidConfig(why));
        match kind(db) {
            Kind::Path if db.trim().is_empty() => refuse(format!("an empty location: {SUPPORTED}")),
            Kind::Path => Ok(Location::Sqlite(Path::new(db))),
            Kind::SqliteUrl(path) if path.is_empty() || path.contains('?') => refuse(format!(
                "`sqlite://` takes a path and no parameters: {SUPPORTED}"
            )),
            Kind::SqliteUrl(path) => Ok(Location::Sqlite(Path::new(path))),
            Kind::Postgres => {
                #[cfg(feature = "postgres")]
                conninfo::config(db).map_err(|e| match e {
                    RegistryError::InvalidConfig(why) => {
                        RegistryError::InvalidConfig(format!("{why}; {SUPPORTED}"))
                    }
                    other => other,
                })?;
                Ok(Location::Postgres(db))
            }
            Kind::FileUri => refuse(format!(
                "SQLite `file:` URIs are not supported (give the file's path): {SUPPORTED}"
            )),
            Kind::OtherScheme(scheme) => refuse(format!(
                "`{scheme}://` is not a registry database: {SUPPORTED}"
            )),
            Kind::SchemeLike => refuse(format!(
                "a location that starts as a URL does (`name:`) but is none of these: \
                 {SUPPORTED} (a file whose name has a colon is written `./name`)"
            )),
            Kind::Padded => refuse(format!(
                "a location with spaces around it (remove them): {SUPPORTED}"
            )),
        }
    }
}

/// The same text as [`Display`](fmt::Display), in the variant's name: a location is logged
/// with `?location` as often as with `%location`, and neither may show a password.
impl fmt::Debug for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Location::Sqlite(_) => "Sqlite",
            Location::Postgres(_) => "Postgres",
        };
        write!(f, "{variant}({:?})", self.to_string())
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            #[cfg(feature = "postgres")]
            Location::Postgres(text) => f.write_str(&conninfo::masked(text)),
            // Without the client library there is no parser to tell the password from the
            // rest: show none of it.
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => f.write_str("a PostgreSQL database"),
        }
    }
}

/// Opens the registry `db` names ([`Location::parse`]) with its backend's defaults: a
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
    match Location::parse(db)? {
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
    fn paths_urls_and_key_value_strings() {
        for db in [
            "postgres://u:pw@h:5432/db",
            "POSTGRESQL://u@h/db",
            "postgres://h/db",
            "host=h dbname=db",
            "  dbname = db",
            "_x=1",
        ] {
            assert!(matches!(Location::of(db), Location::Postgres(_)), "{db}");
        }
        for (db, path) in [
            ("a:b@c.db", "a:b@c.db"),
            ("postgres.db", "postgres.db"),
            ("./host=x", "./host=x"),
            ("C://x.db", "C://x.db"),
            ("sqlite://s.db", "s.db"),
            ("SQLite:///var/s.db", "/var/s.db"),
        ] {
            assert_eq!(
                Location::parse(db).unwrap(),
                Location::Sqlite(Path::new(path))
            );
        }
    }

    #[test]
    fn what_names_no_registry_is_refused_without_being_repeated() {
        for db in [
            "mysql://u:Pw7Qz9@h/db",
            "redis://:Pw7Qz9@h",
            "file:Pw7Qz9.db",
            "FILE:///Pw7Qz9.db",
            "sqlite://",
            "sqlite://Pw7Qz9.db?mode=rwc",
            "",
            " postgres://u:Pw7Qz9@h/db",
            "\tpostgresql://u:Pw7Qz9@h/db",
            "postgres:/u:Pw7Qz9@h/db",
            "mysql:u:Pw7Qz9@h",
            "Pw7Qz9.db ",
            #[cfg(feature = "postgres")]
            "host=h password=Pw7 Qz9",
            #[cfg(feature = "postgres")]
            "postgres://u:Pw7@Qz9@h/db",
        ] {
            let said = Location::parse(db).unwrap_err().to_string();
            assert!(said.contains("postgres://"), "names what works: {said}");
            for secret in ["Pw7", "Qz9"] {
                assert!(!said.contains(secret), "{db}: {said}");
            }
        }
        let said = Location::parse("mysql://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(said.contains("`mysql://` is not a registry"), "{said}");
    }

    #[test]
    fn debug_shows_no_password() {
        let shown = format!("{:?}", Location::of("postgres://u:Pw7Qz9@h/db"));
        assert!(
            shown.starts_with("Postgres(") && !shown.contains("Pw7Qz9"),
            "{shown}"
        );
        let path = format!("{:?}", Location::of("./s.db"));
        assert_eq!(path, "Sqlite(\"./s.db\")");
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn without_the_client_library_nothing_of_a_connection_string_is_shown() {
        let db = Location::of("postgres://u:pw@h/db");
        assert_eq!(db.to_string(), "a PostgreSQL database");
    }
}
