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
}

impl Writer {
    pub(super) fn new(client: Client) -> Self {
        Writer {
            client: Some(client),
            statements: None,
        }
    }

    pub(super) async fn client(&mut self, shared: &Shared) -> Result<&mut Client, RegistryError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements = None;
            self.client = Some(shared.connect().await?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| RegistryError::Backend("no writer connection".into()))
    }

    /// The connection and its prepared statements, preparing them first if need be.
    pub(super) async fn prepared(
        &mut self,
        shared: &Shared,
    ) -> Result<(&mut Client, &Statements), RegistryError> {
        self.client(shared).await?;
        let Writer { client, statements } = self;
        let client = client
            .as_mut()
            .ok_or_else(|| RegistryError::Backend("no writer connection".into()))?;
        if statements.is_none() {
            *statements = Some(Statements::prepare(client, shared).await?);
        }
        let statements = statements
            .as_ref()
            .ok_or_else(|| RegistryError::Backend("no prepared statements".into()))?;
        Ok((client, statements))
    }

    /// Forgets the connection (the next batch opens a new one), as after a timeout: it may be
    /// silently dead.
    pub(super) fn reconnect(&mut self) {
        self.client = None;
        self.statements = None;
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
