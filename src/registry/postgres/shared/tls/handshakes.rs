//! The registry's `MakeTlsConnect`: rustls's ([`MakeRustlsConnect`]), noting for each connection
//! whether its TLS handshake ran.
//!
//! tokio-postgres does not say whether a connection it opened is encrypted. With
//! `sslmode=prefer` (asked for, or the default on loopback) a server that answers the TLS request
//! with "no" gets a plain-text connection, which libpq allows and this crate allows too, but says
//! so in the log (`Shared::open_connection`): a server whose TLS was turned off by mistake should
//! not go unnoticed. tokio-postgres calls the per-host connector's `connect` exactly when the
//! server agreed to TLS and the handshake begins, so that call is the note.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

/// [`MakeRustlsConnect`], noting whether a handshake began. Clones share the note: take
/// [`for_one_connection`](Self::for_one_connection) for a note of one connection's own.
#[derive(Clone)]
pub(crate) struct NotingConnector {
    rustls: MakeRustlsConnect,
    handshake: Arc<AtomicBool>,
}

impl NotingConnector {
    pub(crate) fn new(rustls: MakeRustlsConnect) -> Self {
        NotingConnector {
            rustls,
            handshake: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A connector with a fresh note, for one connection.
    pub(crate) fn for_one_connection(&self) -> Self {
        NotingConnector::new(self.rustls.clone())
    }

    /// Whether a connection made with this connector began a TLS handshake (and, if the
    /// connection was made, completed it: a failed handshake fails the connection).
    pub(crate) fn handshake_began(&self) -> bool {
        self.handshake.load(Ordering::SeqCst)
    }
}

impl<S> MakeTlsConnect<S> for NotingConnector
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = Noting<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        // tokio-postgres asks once per attempt (each host of the string, each address): the
        // note is the last attempt's, which is the one that connected.
        self.handshake.store(false, Ordering::SeqCst);
        Ok(Noting {
            inner: self.rustls.make_tls_connect(domain)?,
            handshake: Arc::clone(&self.handshake),
        })
    }
}

/// One host's connector, noting the handshake when tokio-postgres begins it.
pub(crate) struct Noting<T> {
    inner: T,
    handshake: Arc<AtomicBool>,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for Noting<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.handshake.store(true, Ordering::SeqCst);
        self.inner.connect(stream)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A rustls connector that trusts nothing: the handshake, if it begins, fails.
    fn connector() -> NotingConnector {
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        NotingConnector::new(MakeRustlsConnect::new(config))
    }

    /// A server on loopback that answers the client's TLS request with `answer` and then,
    /// for "no", lets it in without a password (`AuthenticationOk`, `ReadyForQuery`).
    async fn server(answer: u8) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            socket.read_exact(&mut request).await.unwrap();
            // SSLRequest: length 8, code 80877103.
            assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
            socket.write_all(&[answer]).await.unwrap();
            if answer == b'N' {
                let mut len = [0u8; 4];
                socket.read_exact(&mut len).await.unwrap();
                let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                socket.read_exact(&mut startup).await.unwrap();
                socket
                    .write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'])
                    .await
                    .unwrap();
            }
            // Held open until the client is done.
            let _ = socket.read(&mut [0u8; 64]).await;
        });
        addr
    }

    fn config(addr: std::net::SocketAddr) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.host("localhost")
            .port(addr.port())
            .user("u")
            .ssl_mode(tokio_postgres::config::SslMode::Prefer);
        pg
    }

    #[tokio::test]
    async fn a_server_that_refuses_tls_leaves_the_note_unset() {
        let addr = server(b'N').await;
        let tls = connector().for_one_connection();
        let connected = config(addr).connect(tls.clone()).await;
        assert!(connected.is_ok(), "{:?}", connected.err());
        assert!(!tls.handshake_began());
    }

    /// With several hosts, an attempt that began TLS and failed must not mark the plain-text
    /// connection a later host made as encrypted (the security review's finding).
    #[tokio::test]
    async fn a_failover_to_a_host_without_tls_is_noted_as_plain_text() {
        let (tls_host, plain_host) = (server(b'S').await, server(b'N').await);
        let mut pg = tokio_postgres::Config::new();
        pg.host("localhost")
            .host("localhost")
            .port(tls_host.port())
            .port(plain_host.port())
            .user("u")
            .ssl_mode(tokio_postgres::config::SslMode::Prefer);
        let tls = connector().for_one_connection();
        let connected = pg.connect(tls.clone()).await;
        assert!(connected.is_ok(), "{:?}", connected.err());
        assert!(
            !tls.handshake_began(),
            "the first host's failed handshake was noted"
        );
    }

    #[tokio::test]
    async fn a_server_that_accepts_tls_sets_the_note_and_only_on_its_own_connection() {
        let shared = connector();
        let addr = server(b'S').await;
        let tls = shared.for_one_connection();
        // The fake server speaks no TLS: the handshake begins and fails.
        assert!(config(addr).connect(tls.clone()).await.is_err());
        assert!(tls.handshake_began());
        assert!(
            !shared.handshake_began(),
            "a fresh connector shares no note"
        );
    }
}
