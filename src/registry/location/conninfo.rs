//! Reading a PostgreSQL connection string (URL or libpq `key=value`) with tokio-postgres's own
//! parser, and showing it without its password.
//!
//! The password can hide in many places: `user:PASSWORD@`, `?password=`, `password=` pairs, a
//! quoted value with spaces, a URL whose password holds an unencoded `/` or `@`. So nothing is
//! masked by looking for patterns in the text: the text is parsed, and what is shown is rebuilt
//! from the parsed configuration's user, hosts, ports and database, which hold no password,
//! with `***` where one was given. The one case where a parsed field still holds part of a
//! password is a URL with an unencoded `@` in it: `postgres://u:p@ss@h/db` parses (as libpq
//! parses it) with the host `ss@h`. No host name holds `@`, so such a URL is refused by
//! [`config`], and shown with the host after its last `@`.
//!
//! tokio-postgres's own parse errors are not passed on either: some quote a character or a
//! keyword of the input (`password=a b=c` gives "unknown option `b`").

use std::borrow::Cow;
use std::fmt::Write as _;

use tokio_postgres::config::Host;
use tokio_postgres::Config;

use crate::registry::RegistryError;

mod tls_params;
use tls_params::split_tls;
pub(crate) use tls_params::{tls_params, SslMode, TlsParams};

/// The options whose names the errors may repeat: tokio-postgres's, then libpq's that it lacks.
const KNOWN_OPTIONS: [&str; 20] = [
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "channel_binding",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "passfile",
    "service",
    "gssencmode",
];

/// Parses `text` as the registry connects with it, refusing what would misread a password.
/// The error says what is wrong without any of `text`.
pub(crate) fn config(text: &str) -> Result<Config, RegistryError> {
    let invalid = |why: &str| {
        RegistryError::InvalidConfig(format!(
            "not a PostgreSQL connection string that this library can use: {why}"
        ))
    };
    let (text, _schema) = without_schema(text);
    let (text, _tls) = split_tls(&text)?;
    if is_url(&text) {
        let before_query = text.split('?').next().unwrap_or_default();
        if before_query.matches('@').count() > 1 {
            return Err(invalid(
                "the URL holds more than one `@`; percent-encode `@` in a user name or password \
                 as %40",
            ));
        }
    }
    let config: Config = text.parse().map_err(|e| invalid(&parse_error(&e)))?;
    if config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, Host::Tcp(name) if name.contains('@')))
    {
        return Err(invalid("a host name holds `@`"));
    }
    Ok(config)
}

/// What went wrong in tokio-postgres's words, when its words quote nothing but an option's
/// name; otherwise a general sentence.
fn parse_error(e: &tokio_postgres::Error) -> String {
    // The cause says what is wrong; the error itself only "invalid connection string".
    let said = std::error::Error::source(e).map_or_else(String::new, |cause| cause.to_string());
    let option = said
        .split('`')
        .nth(1)
        .filter(|name| KNOWN_OPTIONS.contains(name));
    match option {
        Some(name) if said.contains("invalid value for option") => {
            format!("the value of `{name}` is not valid")
        }
        Some(name) if said.contains("unknown option") => {
            format!("libpq's option `{name}` is not supported")
        }
        _ if said.contains("unknown option") => "an option that is not PostgreSQL's (or a value \
             with spaces in it that is not quoted: `password='a b'`)"
            .to_owned(),
        _ => "it does not parse (in `key=value` pairs, quote a value with spaces in it: \
              `password='a b'`; in a URL, percent-encode `@`, `/`, `?`, `&` and `#` in a \
              password)"
            .to_owned(),
    }
}

/// `text` without the `schema` URL parameter (this library's own), and the schema's name.
/// A URL's scheme comes back lowercase: tokio-postgres reads only lowercase schemes (as libpq
/// does), but a URL's scheme is case-insensitive and `Location` accepts any case.
fn without_schema(text: &str) -> (Cow<'_, str>, Option<&str>) {
    if !is_url(text) {
        return (Cow::Borrowed(text), None);
    }
    let Some((base, query)) = text.split_once('?') else {
        return (Cow::Owned(lowercase_scheme(text)), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| match param.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name);
                false
            }
            None => true,
        })
        .collect();
    let base = lowercase_scheme(base);
    if kept.is_empty() {
        (Cow::Owned(base), schema)
    } else {
        (Cow::Owned(format!("{base}?{}", kept.join("&"))), schema)
    }
}

fn is_url(text: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        text.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

fn lowercase_scheme(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => url.to_owned(),
    }
}

/// `text` parsed as [`config`] does, but without refusing: for showing what was given.
fn lenient(text: &str) -> Option<(Config, Option<&str>)> {
    let (parsed, schema) = without_schema(text);
    let parsed = split_tls(&parsed).map_or_else(|_| parsed.to_string(), |(rest, _)| rest);
    parsed.parse().ok().map(|config| (config, schema))
}

/// A host as shown: a name, an IP address, or a Unix socket's directory. The part before a
/// last `@` is a piece of a password that was not percent-encoded (see the module docs).
fn host_text(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.rsplit('@').next().unwrap_or_default().to_owned(),
        #[cfg(unix)]
        Host::Unix(dir) => dir.display().to_string(),
    }
}

/// `host:port` for each host, joined by commas; libpq's defaults when none is given.
fn servers(config: &Config) -> String {
    let hosts: Vec<String> = config.get_hosts().iter().map(host_text).collect();
    let hosts = if hosts.is_empty() {
        let addrs: Vec<String> = config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        if addrs.is_empty() {
            vec!["localhost".to_owned()]
        } else {
            addrs
        }
    } else {
        hosts
    };
    let ports = config.get_ports();
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // libpq: one port for all hosts, or one each.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `host:port/database`, for error messages and logs: never a password.
pub(crate) fn server_name(text: &str) -> String {
    let Some((config, _)) = lenient(text) else {
        return "<a PostgreSQL connection string that does not parse>".to_owned();
    };
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{}/{db}", servers(&config))
}

/// `text` as a URL without its password: `postgres://user:***@host:port/db?schema=s`, in the
/// scheme given (`postgres://` for the `key=value` form).
pub(crate) fn masked(text: &str) -> String {
    let Some((config, schema)) = lenient(text) else {
        return "<a PostgreSQL connection string that does not parse>".to_owned();
    };
    let scheme = text
        .split_once("://")
        .filter(|_| is_url(text))
        .map_or("postgres", |(scheme, _)| scheme);
    let mut shown = format!("{scheme}://");
    let password = config.get_password().is_some().then_some(":***");
    match (config.get_user(), password) {
        (Some(user), password) => {
            let _ = write!(shown, "{}{}@", encoded(user), password.unwrap_or(""));
        }
        (None, Some(password)) => {
            let _ = write!(shown, "{password}@");
        }
        (None, None) => {}
    }
    shown.push_str(&servers(&config));
    shown.push('/');
    if let Some(db) = config.get_dbname() {
        shown.push_str(&encoded(db));
    }
    if let Some(schema) = schema {
        let _ = write!(shown, "?schema={}", encoded(schema));
    }
    shown
}

/// Percent-encodes what would change a URL's meaning, and controls.
fn encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || " %@:/?#&=[]".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password in each of the ways people write one, and what it must be shown as.
    const SPELLINGS: [(&str, &str); 8] = [
        (
            "postgres://app:Pw7Qz9@db:5433/app",
            "postgres://app:***@db:5433/app",
        ),
        (
            "postgres://app@db/app?password=Pw7Qz9&schema=s1",
            "postgres://app:***@db:5432/app?schema=s1",
        ),
        (
            "postgresql://app:Pw7/Qz9@db/app",
            "postgresql://app:***@db:5432/app",
        ),
        (
            "postgres://app:Pw7@Qz9@db/app",
            "postgres://app:***@db:5432/app",
        ),
        (
            "host=db user=app password=Pw7Qz9 dbname=app",
            "postgres://app:***@db:5432/app",
        ),
        (
            "host=db,db2 port=1,2 password='Pw7 Qz9'",
            "postgres://:***@db:1,db2:2/",
        ),
        ("POSTGRES://app@db/app", "POSTGRES://app@db:5432/app"),
        ("postgres://[::1]:6/x", "postgres://[::1]:6/x"),
    ];

    #[test]
    fn shown_without_the_password_however_it_was_written() {
        for (text, shown) in SPELLINGS {
            assert_eq!(masked(text), shown, "{text}");
            assert!(!server_name(text).contains("Pw7"), "{text}");
            assert!(!server_name(text).contains("Qz9"), "{text}");
        }
        assert_eq!(server_name("postgres://app:Pw7@Qz9@db/app"), "db:5432/app");
        assert_eq!(server_name("host=/run/pg user=u"), "/run/pg:5432/u");
    }

    #[test]
    fn the_strict_reading_refuses_what_would_misread_a_password() {
        for (text, _) in SPELLINGS {
            let result = config(text);
            assert_eq!(result.is_err(), text.contains("Pw7@"), "{text}: {result:?}");
        }
        let said = |text| config(text).unwrap_err().to_string();
        assert!(said("host=h port=x").contains("`port` is not valid"));
        assert!(said("host=h sslmode=allow").contains("`sslmode=allow`"));
        assert!(said("host=h sslmode=verify").contains("`sslmode` is not valid"));
        for text in [
            "host=h password=Pw7 Qz9=1",
            "host=h password=Pw7 Qz9",
            "host=h password='Pw7 Qz9",
            "postgres://h/db?password=Pw7&Qz9=1",
        ] {
            let said = said(text);
            assert!(
                !said.contains("Pw7") && !said.contains("Qz9"),
                "{text}: {said}"
            );
        }
        assert_eq!(
            config("POSTGRES://u@h/db?schema=s").unwrap().get_user(),
            Some("u")
        );
    }
}
