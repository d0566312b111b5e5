//! [`Shared`]: the state the handle, the thread's tasks and the listener all hold (the cache,
//! the freshness, the queued touches, the settings), and how a task opens a connection with
//! those settings. Its own file because every other part of the backend uses it and it uses
//! none of them (but the builder's settings and the schema's error mapping).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

pub(crate) mod tls;

use tls::NotingConnector;

use super::builder::PostgresRegistryBuilder;
use super::schema::{map_err, timed_out};
use crate::registry::cache::ValidationCache;
use crate::registry::freshness::Freshness;
use crate::registry::location::conninfo::{self, SslMode};
use crate::registry::touches::TouchQueue;
use crate::registry::RegistryError;
use crate::telemetry::registry::RegistryMetrics;

/// State shared by the handle, the thread's tasks and the listener.
pub(crate) struct Shared {
    pub(crate) cache: ValidationCache,
    pub(crate) freshness: Freshness,
    pub(crate) touches: TouchQueue,
    pub(crate) stopped: AtomicBool,
    pub(crate) round_trips: AtomicU64,
    /// How many times the listener read the revocation log (see `log_reads`).
    pub(crate) log_reads: AtomicU64,
    /// `host:port/database`, for messages.
    pub(crate) server: String,
    pub(crate) schema: String,
    pub(crate) pg: tokio_postgres::Config,
    /// The TLS connector every connection uses (see [`tls`]), and the mode it was built for.
    pub(crate) tls: NotingConnector,
    pub(crate) ssl_mode: SslMode,
    /// Whether a plain-text connection under `sslmode=prefer` was logged yet (once per registry).
    pub(crate) plain_text_logged: AtomicBool,
    pub(crate) operation_timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) cleanup_interval: Duration,
    pub(crate) max_sessions_per_user: Option<NonZeroUsize>,
    /// The registry's metric handles, taken when it started.
    pub(crate) metrics: RegistryMetrics,
}

impl Shared {
    pub(crate) fn err(&self) -> impl Fn(tokio_postgres::Error) -> RegistryError + '_ {
        move |e| map_err(&self.server, e)
    }

    /// Opens a connection (not yet driven) with the registry's settings and TLS; a failed
    /// TLS connection says which check failed and what to do.
    pub(crate) async fn open_connection(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                <NotingConnector as tokio_postgres::tls::MakeTlsConnect<
                    tokio_postgres::Socket,
                >>::Stream,
            >,
        ),
        RegistryError,
    >{
        let tls = self.tls.for_one_connection();
        let connected = self
            .bounded(async {
                self.pg.connect(tls.clone()).await.map_err(|e| {
                    match tls::explain(&e, self.ssl_mode) {
                        Some(why) => RegistryError::Unreachable {
                            server: self.server.clone(),
                            source: why.into(),
                        },
                        None => map_err(&self.server, e),
                    }
                })
            })
            .await?;
        if self.ssl_mode == SslMode::Prefer && !tls.handshake_began() {
            self.log_plain_text();
        }
        Ok(connected)
    }

    /// Says, once per registry, that `sslmode=prefer` ended in plain text (the server refused
    /// TLS): a warning if a host of the connection string is not on this machine, a note if
    /// every host is loopback (nothing left the machine), nothing if every host is a Unix
    /// socket, which carries no TLS.
    fn log_plain_text(&self) {
        if self.plain_text_logged.swap(true, Ordering::Relaxed) {
            return;
        }
        let server = &self.server;
        match tls::plain_text_severity(&self.pg) {
            Some(tracing::Level::WARN) => tracing::warn!(
                "the PostgreSQL registry at {server} connected in plain text: `sslmode=prefer` \
                 and the server refused TLS (turn on `ssl` in postgresql.conf, or say \
                 `sslmode=require` or `verify-full` to refuse plain text)"
            ),
            Some(_) => tracing::info!(
                "the PostgreSQL registry at {server} connected in plain text on loopback (the \
                 server has no TLS; the default for loopback is `sslmode=prefer`)"
            ),
            None => {}
        }
    }

    /// `future`, failing with [`RegistryError::Unreachable`] if the server does not answer
    /// within the operation timeout (and a second, for the server's own timeout to come first).
    pub(crate) async fn bounded<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        let limit = self.operation_timeout + Duration::from_secs(1);
        tokio::time::timeout(limit, future)
            .await
            .unwrap_or_else(|_| Err(timed_out(&self.server, limit)))
    }

    /// Opens a connection with the registry's settings and drives it in the background.
    pub(crate) async fn connect(&self) -> Result<Client, RegistryError> {
        let (client, connection) = self.open_connection().await?;
        tokio::spawn(async move {
            // Ends when the connection does; the client then reports it closed.
            let _ = connection.await;
        });
        // Set on the session rather than as the `options` startup parameter, which connection
        // poolers (pgbouncer) refuse, and which would replace any options the URL gives.
        let ms = self.operation_timeout.as_millis();
        self.bounded(async {
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
                     SET idle_in_transaction_session_timeout = {ms}"
                ))
                .await
                .map_err(self.err())
        })
        .await?;
        Ok(client)
    }
}

/// What the registry's thread and the handle share.
pub(crate) fn shared_state(
    config: &PostgresRegistryBuilder,
    server: String,
    mut pg: tokio_postgres::Config,
) -> Result<Shared, RegistryError> {
    let (tls, ssl_mode) = tls::connector(&conninfo::tls_params(&config.url)?, &mut pg)?;
    Ok(Shared {
        cache: ValidationCache::new(config.cache_capacity),
        // `open` returns only once the listener's first catch-up has confirmed it again.
        freshness: Freshness::new(Instant::now(), config.staleness_bound),
        touches: TouchQueue::new(config.touch_throttle),
        stopped: AtomicBool::new(false),
        round_trips: AtomicU64::new(0),
        log_reads: AtomicU64::new(0),
        server,
        schema: config.schema.clone(),
        pg,
        tls,
        ssl_mode,
        plain_text_logged: AtomicBool::new(false),
        operation_timeout: config.operation_timeout,
        heartbeat: config.heartbeat,
        cleanup_interval: config.cleanup_interval,
        max_sessions_per_user: config.max_sessions_per_user,
        metrics: RegistryMetrics::register(),
    })
}
