//! libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), read from a
//! connection string and taken out of it before tokio-postgres parses the rest: it refuses the
//! last three and the `verify-*` modes. The connector they make is `postgres::shared::tls`.

use std::path::PathBuf;

use super::{is_url, without_schema};
use crate::registry::RegistryError;

/// libpq's TLS parameters that tokio-postgres does not read (or reads with fewer modes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode` as given (`None`: the string did not say).
    pub(crate) mode: Option<SslMode>,
    /// `sslrootcert`: `Some(None)` for `system`, `Some(Some(path))` for a PEM file.
    pub(crate) root: Option<Option<PathBuf>>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// libpq's `sslmode` values that this library accepts (`allow` is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters of `text` (a connection string without this library's `schema`).
pub(crate) fn tls_params(text: &str) -> Result<TlsParams, RegistryError> {
    let (text, _schema) = without_schema(text);
    split_tls(&text).map(|(_, params)| params)
}

/// `text` without `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, which the registry reads
/// itself (tokio-postgres refuses the last three and libpq's `verify-*` modes), and those.
/// `channel_binding` stays: tokio-postgres reads it.
pub(super) fn split_tls(text: &str) -> Result<(String, TlsParams), RegistryError> {
    let invalid = |why: String| {
        RegistryError::InvalidConfig(format!(
            "not a PostgreSQL connection string that this library can use: {why}"
        ))
    };
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: &str| -> Result<bool, RegistryError> {
        match key {
            "sslmode" => {
                params.mode =
                    Some(match value {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        "allow" => return Err(invalid(
                            "`sslmode=allow` (plain text first, TLS only if the server insists) \
                             is not supported; use `sslmode=prefer`, `require` or `verify-full`"
                                .to_owned(),
                        )),
                        _ => {
                            return Err(invalid(
                                "the value of `sslmode` is not valid (disable, prefer, require, \
                             verify-ca or verify-full)"
                                    .to_owned(),
                            ))
                        }
                    });
            }
            "sslrootcert" if value == "system" => params.root = Some(None),
            "sslrootcert" => params.root = Some(Some(PathBuf::from(value))),
            "sslcert" => params.cert = Some(PathBuf::from(value)),
            "sslkey" => params.key = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if is_url(text) {
        let Some((base, query)) = text.split_once('?') else {
            return Ok((text.to_owned(), params));
        };
        let mut kept = Vec::new();
        for param in query.split('&') {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if !take(key, &percent_decoded(value))? {
                kept.push(param);
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut rest = String::with_capacity(text.len());
        for (start, end, key, value) in pairs(text) {
            if !take(key, &value)? {
                rest.push_str(&text[start..end]);
                rest.push(' ');
            }
        }
        rest
    };
    Ok((rest, params))
}

/// The `key=value` pairs of `text` with their byte spans, as libpq reads them (a value in
/// single quotes may hold spaces, `\'` and `\\`). Malformed text ends the list early and the
/// remainder is kept whole, for tokio-postgres's parser to refuse.
fn pairs(text: &str) -> Vec<(usize, usize, &str, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return out;
        }
        let start = i;
        let Some(eq) = text[i..].find('=').map(|at| at + i) else {
            out.push((start, text.len(), "", String::new()));
            return out;
        };
        let key = text[start..eq].trim();
        i = eq + 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            let mut closed = false;
            let mut chars = text[i..].char_indices();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '\'' => {
                        i += at + 1;
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                out.push((start, text.len(), "", String::new()));
                return out;
            }
        } else {
            let end = text[i..]
                .find(|c: char| c.is_ascii_whitespace())
                .map_or(text.len(), |at| at + i);
            value.push_str(&text[i..end]);
            i = end;
        }
        out.push((start, i, key, value));
    }
}

/// A URL parameter's value with `%XX` decoded (a path may hold encoded characters).
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::{config, masked};
    use super::*;

    #[test]
    fn libpq_tls_parameters_are_read_in_both_forms_and_not_handed_on() {
        let url = "postgres://u:pw@db.example/app?sslmode=verify-full&sslrootcert=/ca%20dir/r.pem\
                   &sslcert=/c.pem&sslkey=/k.pem&channel_binding=require&schema=s";
        let kv = "host=db.example user=u password='a b' sslmode=verify-ca \
                  sslrootcert='/ca dir/r.pem' sslcert=/c.pem sslkey=/k.pem dbname=app";
        for (text, mode) in [(url, SslMode::VerifyFull), (kv, SslMode::VerifyCa)] {
            let params = tls_params(text).unwrap();
            assert_eq!(params.mode, Some(mode), "{text}");
            assert_eq!(params.root, Some(Some(PathBuf::from("/ca dir/r.pem"))));
            assert_eq!(params.cert, Some(PathBuf::from("/c.pem")));
            assert_eq!(params.key, Some(PathBuf::from("/k.pem")));
            let config = config(text).unwrap();
            assert_eq!(config.get_dbname(), Some("app"));
            assert_eq!(config.get_user(), Some("u"));
        }
        assert_eq!(config(kv).unwrap().get_password(), Some(&b"a b"[..]));
        assert_eq!(
            tls_params("host=h sslrootcert=system").unwrap().root,
            Some(None)
        );
        assert_eq!(tls_params("postgres://h/db").unwrap(), TlsParams::default());
        // Key paths are shown nowhere but where they are named; never the password.
        assert_eq!(masked(url), "postgres://u:***@db.example:5432/app?schema=s");
    }
}
