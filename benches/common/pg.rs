//! A `PostgresRegistry` in a fresh schema of its own, for the benches and examples that measure
//! one (`benches/backends.rs`, `benches/middleware.rs`, `examples/hotpath.rs`). `close` stops the
//! registry and drops the schema, so that runs leave nothing behind.

use std::sync::Arc;

use sealed_sessions::registry::PostgresRegistry;

pub struct FreshSchema {
    pub registry: Arc<PostgresRegistry>,
    url: String,
    schema: String,
}

impl FreshSchema {
    /// Opens a registry at `url` in a new schema named `prefix` and 16 random hex digits.
    pub fn open(url: &str, prefix: &str) -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        let schema: String = std::iter::once(prefix.to_owned())
            .chain(bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        let registry = PostgresRegistry::builder(url)
            .schema(&schema)
            .open()
            .expect("open the PostgreSQL registry");
        FreshSchema {
            registry: Arc::new(registry),
            url: url.to_owned(),
            schema,
        }
    }

    /// Another registry on the same schema: a second host.
    #[allow(dead_code)] // not every bench that includes this file has several hosts
    pub fn another_host(&self) -> PostgresRegistry {
        PostgresRegistry::builder(&self.url)
            .schema(&self.schema)
            .open()
            .expect("open another host's PostgreSQL registry")
    }

    /// Stops the registry and drops its schema.
    pub fn close(self) {
        self.registry.stop();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await;
        });
    }
}
