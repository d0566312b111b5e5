//! The registry's TLS: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (read by
//! `location::conninfo`), turned into a rustls connector for tokio-postgres.
//!
//! rustls with the `ring` provider, through `tokio-postgres-rustls` (which also gives
//! tokio-postgres the `tls-server-end-point` channel binding, for `channel_binding=require`):
//! no system OpenSSL to find at build or run time, and no C toolchain beyond the one `ring`
//! and the bundled SQLite already need. Roots come from the `sslrootcert` PEM file, or from
//! the operating system's store (`rustls-native-certs`) for `sslrootcert=system` and for the
//! `verify-*` modes without `sslrootcert`.
//!
//! The default where the string names no `sslmode`: `prefer` when every host is loopback or a
//! Unix socket (as before: nothing leaves the machine), `verify-full` against the system store
//! for any other host (a registry decides who is logged in: a connection an attacker on the
//! path can read or redirect is not one to make silently). `sslrootcert=system` alone also
//! means `verify-full`, as in libpq 16. libpq's rule is kept: `prefer` and `require` with an
//! `sslrootcert` file verify the chain (not the name).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::registry::location::conninfo::{SslMode, TlsParams};
use crate::registry::RegistryError;

mod handshakes;

pub(crate) use handshakes::NotingConnector;

/// The connector for `pg`, with `pg`'s `sslmode` set to what tokio-postgres understands.
pub(crate) fn connector(
    params: &TlsParams,
    pg: &mut tokio_postgres::Config,
) -> Result<(NotingConnector, SslMode), RegistryError> {
    let mode = effective_mode(params, pg);
    pg.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    // ring, not aws-lc-rs: no cmake or assembler toolchain to build. rustls 0.23.48 deprecates
    // ring's provider for lacking post-quantum key exchange; PostgreSQL's own OpenSSL offers
    // none either today, so nothing is lost against it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify_chain = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
        || matches!(params.root, Some(Some(_)));
    let verifier: Arc<dyn ServerCertVerifier> = if verify_chain {
        let roots = Arc::new(roots(params, mode)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| invalid(format!("the roots for `sslmode={}`: {e}", mode.name())))?;
        Arc::new(Verifier {
            webpki,
            check_name: mode == SslMode::VerifyFull,
            signatures: Signatures(Arc::clone(&provider)),
        })
    } else {
        Arc::new(Unverified(Signatures(Arc::clone(&provider))))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certs(cert, "sslcert")?, private_key(key)?)
            .map_err(|e| {
                invalid(format!(
                    "`sslcert` {} and `sslkey` {} do not make a client certificate: {e}",
                    cert.display(),
                    key.display()
                ))
            })?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(invalid(
                "`sslcert` and `sslkey` go together: give both".into(),
            ))
        }
    };
    Ok((NotingConnector::new(MakeRustlsConnect::new(config)), mode))
}

fn invalid(why: String) -> RegistryError {
    RegistryError::InvalidConfig(format!("PostgreSQL TLS settings: {why}"))
}

/// The mode asked for, or the default (see the module docs).
fn effective_mode(params: &TlsParams, pg: &tokio_postgres::Config) -> SslMode {
    if let Some(mode) = params.mode {
        return mode;
    }
    if params.root == Some(None) {
        return SslMode::VerifyFull;
    }
    if every_host(pg, on_this_machine) {
        SslMode::Prefer
    } else {
        SslMode::VerifyFull
    }
}

/// Whether `pred` holds for every host of `pg` (for addresses given without a name, whether
/// each is loopback).
fn every_host(pg: &tokio_postgres::Config, pred: impl Fn(&Host) -> bool) -> bool {
    let hosts = pg.get_hosts();
    if hosts.is_empty() {
        pg.get_hostaddrs().iter().all(|ip| ip.is_loopback())
    } else {
        hosts.iter().all(pred)
    }
}

/// A loopback name or address, or a Unix socket.
fn on_this_machine(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    }
}

/// How loudly to say that `sslmode=prefer` ended in plain text with `pg`'s hosts: a warning
/// if any may be elsewhere, a note if all are on this machine, nothing if all are Unix sockets
/// (which carry no TLS).
pub(crate) fn plain_text_severity(pg: &tokio_postgres::Config) -> Option<tracing::Level> {
    #[cfg(unix)]
    if !pg.get_hosts().is_empty() && every_host(pg, |h| matches!(h, Host::Unix(_))) {
        return None;
    }
    if every_host(pg, on_this_machine) {
        Some(tracing::Level::INFO)
    } else {
        Some(tracing::Level::WARN)
    }
}

fn roots(params: &TlsParams, mode: SslMode) -> Result<RootCertStore, RegistryError> {
    let mut store = RootCertStore::empty();
    match &params.root {
        Some(Some(path)) => {
            for cert in certs(path, "sslrootcert")? {
                store
                    .add(cert)
                    .map_err(|e| invalid(format!("`sslrootcert` {}: {e}", path.display())))?;
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(invalid(format!(
                    "`sslmode={}` verifies the server against the system's certificate store, \
                     and none was found; name the server's root with `sslrootcert=/path/ca.pem` \
                     (or, for a server on a trusted network, `sslmode=disable`)",
                    mode.name()
                )));
            }
        }
    }
    Ok(store)
}

fn certs(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let read: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("`{option}` {}: {e}", path.display())))?
        .collect();
    let certs = read.map_err(|e| invalid(format!("`{option}` {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "`{option}` {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The key, with an error that names the file and never its contents.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, RegistryError> {
    PrivateKeyDer::from_pem_file(path).map_err(|_| {
        invalid(format!(
            "`sslkey` {} is not a readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))
    })
}

/// The chain against the roots; the name too for `verify-full`.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
    signatures: Signatures,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the chain before the name, so this error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, the server not checked (libpq's
/// meaning; the handshake's signatures are still checked, so the key is the certificate's).
#[derive(Debug)]
struct Unverified(Signatures);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

/// The handshake's signatures, checked with the provider's algorithms: what both verifiers do
/// whether or not they check the certificate.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A sentence for a failed TLS connection, when `e` is one: the mode, the check that failed
/// and what to do. Never a secret (rustls's errors hold none).
pub(crate) fn explain(e: &tokio_postgres::Error, mode: SslMode) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = e.to_string();
    while let Some(err) = source {
        // tokio-rustls hands rustls's error inside an io::Error, whose `source` skips it.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = err.downcast_ref::<rustls::Error>().or(inner) {
            return Some(tls_sentence(tls, mode));
        }
        text = err.to_string();
        source = err.source();
    }
    let m = mode.name();
    if text.contains("requires a valid client certificate") {
        return Some(format!(
            "the server requires a client certificate for this role (`sslmode={m}`): give \
             `sslcert=/path/client.pem&sslkey=/path/client.key`, signed by a CA the server's \
             `ssl_ca_file` trusts"
        ));
    }
    if text.contains("server does not support TLS") {
        return Some(format!(
            "`sslmode={m}` needs TLS and the server does not offer it (turn `ssl = on` in its \
             postgresql.conf, or use `sslmode=prefer`/`disable` on a trusted network)"
        ));
    }
    if text.contains("no encryption") && mode == SslMode::Disable {
        return Some(format!(
            "the server refuses unencrypted connections for this role (`sslmode={m}`): use \
             `sslmode=verify-full` (or `require`)"
        ));
    }
    None
}

fn tls_sentence(e: &rustls::Error, mode: SslMode) -> String {
    use rustls::{AlertDescription as A, Error as E};
    let m = mode.name();
    let why = match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted root (unknown CA): name its root \
             with `sslrootcert=/path/ca.pem` (or `sslmode=disable` on a trusted network)"
                .to_owned()
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate does not name the host connected to (name mismatch): \
              connect with a host name the certificate names, or use `sslmode=verify-ca`"
            .to_owned(),
        E::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".to_owned(),
        E::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is not valid yet (check the clocks)".to_owned(),
        E::AlertReceived(A::CertificateRequired)
        | E::AlertReceived(A::HandshakeFailure)
        | E::AlertReceived(A::BadCertificate)
        | E::AlertReceived(A::UnknownCA) => {
            "the server refused the client certificate (or wanted one: give `sslcert` and \
             `sslkey`)"
                .to_owned()
        }
        other => format!("the TLS handshake failed: {other}"),
    };
    format!("TLS with `sslmode={m}`: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::location::conninfo::{config, tls_params};

    fn mode(text: &str) -> SslMode {
        effective_mode(&tls_params(text).unwrap(), &config(text).unwrap())
    }

    #[test]
    fn the_default_mode_is_prefer_on_this_machine_and_verify_full_elsewhere() {
        assert_eq!(mode("postgres://u@localhost/db"), SslMode::Prefer);
        assert_eq!(mode("host=127.0.0.1,::1 user=u"), SslMode::Prefer);
        assert_eq!(mode("host=/run/postgresql user=u"), SslMode::Prefer);
        assert_eq!(mode("postgres://u@db.example.com/db"), SslMode::VerifyFull);
        assert_eq!(mode("host=127.0.0.1,db.example.com"), SslMode::VerifyFull);
        assert_eq!(
            mode("postgres://u@localhost/db?sslrootcert=system"),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode("postgres://u@db.example.com/db?sslmode=disable"),
            SslMode::Disable
        );
    }

    #[test]
    fn plain_text_is_a_warning_off_this_machine_a_note_on_it_and_nothing_on_a_socket() {
        let severity = |text: &str| plain_text_severity(&config(text).unwrap());
        use tracing::Level;
        assert_eq!(
            severity("postgres://u@db.example.com/db"),
            Some(Level::WARN)
        );
        assert_eq!(severity("host=127.0.0.1,db.example.com"), Some(Level::WARN));
        assert_eq!(severity("hostaddr=10.0.0.5 user=u"), Some(Level::WARN));
        assert_eq!(severity("postgres://u@localhost/db"), Some(Level::INFO));
        assert_eq!(severity("host=127.0.0.1,::1 user=u"), Some(Level::INFO));
        assert_eq!(
            severity("host=/run/postgresql,127.0.0.1 user=u"),
            Some(Level::INFO)
        );
        #[cfg(unix)]
        assert_eq!(severity("host=/run/postgresql user=u"), None);
    }
}
