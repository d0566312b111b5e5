//! The writer connection, which one writer task owns and reopens before a batch when it broke,
//! and the transaction every write opens: it takes the writers' lock first. Its own file, below
//! the batching (`write_batch.rs`) and the periodic work (`maintenance.rs`), which both write
//! through it.

use tokio_postgres::Client;

use super::schema::write_transaction_sql;
use super::shared::Shared;
use super::statements::Statements;
use crate::registry::RegistryError;

/// The writer connection; reopened before a batch when it broke. Its statements are prepared
/// on it once (`statements.rs`), and again after it was reopened or a batch failed.
pub(super) struct Writer {
    client: Option<Client>,
    statements: Option<Statements>,
    /// Whether a transaction of the batch writer began on `client` and its end (the answer to
    /// its COMMIT or ROLLBACK) was not seen: given up on, the connection may still be inside
    /// it, holding the writers' lock, and a later COMMIT on it would commit what a caller was
    /// told failed. Such a connection is closed, never reused (the server then rolls back).
    in_doubt: bool,
}

impl Writer {
    pub(super) fn new(client: Client) -> Self {
        Writer {
            client: Some(client),
            statements: None,
            in_doubt: false,
        }
    }

    pub(super) async fn client(&mut self, shared: &Shared) -> Result<&mut Client, RegistryError> {
        self.drop_if_in_doubt(shared);
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements = None;
            self.client = Some(shared.connect().await?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| RegistryError::Backend("no writer connection".into()))
    }

    /// The connection, its prepared statements (prepared first if need be), and its
    /// [`in_doubt`](Writer::in_doubt) flag, for a transaction to set and clear.
    pub(super) async fn prepared(
        &mut self,
        shared: &Shared,
    ) -> Result<(&mut Client, &Statements, &mut bool), RegistryError> {
        self.client(shared).await?;
        let Writer {
            client,
            statements,
            in_doubt,
        } = self;
        let client = client
            .as_mut()
            .ok_or_else(|| RegistryError::Backend("no writer connection".into()))?;
        if statements.is_none() {
            *statements = Some(Statements::prepare(client, shared).await?);
        }
        let statements = statements
            .as_ref()
            .ok_or_else(|| RegistryError::Backend("no prepared statements".into()))?;
        Ok((client, statements, in_doubt))
    }

    /// Whether the last transaction's end went unseen (see [`in_doubt`](Writer::in_doubt)); if
    /// so, the connection is dropped here, so that the server rolls the transaction back and
    /// the next batch opens a new one.
    ///
    /// Dropping the client is not enough on its own: tokio-postgres closes the connection only
    /// once every answer it is owed has come, and a statement still waiting for a lock keeps
    /// the transaction, and the writers' lock with it, until then. So the statement running
    /// is cancelled first; the transaction then fails, the statements queued behind it fail at
    /// once, and the connection closes.
    pub(super) fn drop_if_in_doubt(&mut self, shared: &Shared) -> bool {
        let in_doubt = self.in_doubt;
        if in_doubt {
            if let Some(client) = &self.client {
                let cancel = client.cancel_token();
                let tls = shared.tls.clone();
                // Best effort: if the cancel cannot reach the server, the server's own lock
                // and statement timeouts end the transaction.
                tokio::spawn(async move {
                    let _ = cancel.cancel_query(tls).await;
                });
            }
            self.reconnect();
        }
        in_doubt
    }

    /// Forgets the connection (the next batch opens a new one), as after a timeout: it may be
    /// silently dead.
    pub(super) fn reconnect(&mut self) {
        self.client = None;
        self.statements = None;
        self.in_doubt = false;
    }

    /// Forgets the prepared statements: after a failed batch, in case they were the cause (a
    /// schema replaced under them).
    pub(super) fn prepare_again(&mut self) {
        self.statements = None;
    }
}

/// A transaction holding the writers' lock (see `schema.rs`), as every write of the registry
/// takes it first.
pub(super) async fn write_transaction<'c>(
    client: &'c mut Client,
    shared: &Shared,
) -> Result<tokio_postgres::Transaction<'c>, RegistryError> {
    let err = shared.err();
    let tx = client.transaction().await.map_err(&err)?;
    tx.batch_execute(&write_transaction_sql(&shared.schema))
        .await
        .map_err(&err)?;
    Ok(tx)
}
