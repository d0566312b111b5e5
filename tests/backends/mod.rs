//! Every registry backend this machine can run, fresh, for tests that run on each.
#![allow(dead_code)] // each test file uses a different part

use std::any::Any;
use std::sync::Arc;

use sealed_sessions::registry::{Registry, SqliteRegistry};

#[cfg(feature = "postgres")]
use crate::pg_support;

/// A registry under test and what keeps its storage alive.
pub struct Backend {
    pub name: &'static str,
    pub registry: Arc<dyn Registry>,
    /// Opens another registry on the same storage: another process, or another host.
    pub another: Box<dyn Fn() -> Arc<dyn Registry>>,
    _storage: Box<dyn Any>,
}

/// Every backend this machine can run, each fresh.
pub fn backends(test: &str) -> Vec<Backend> {
    #[cfg(not(feature = "postgres"))]
    let _ = test;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let sqlite = SqliteRegistry::open(&path).unwrap();
    #[allow(unused_mut)] // without the postgres feature
    let mut all = vec![Backend {
        name: "sqlite",
        registry: Arc::new(sqlite),
        another: Box::new(move || Arc::new(SqliteRegistry::open(&path).unwrap())),
        _storage: Box::new(dir),
    }];
    #[cfg(feature = "postgres")]
    if let Some(url) = pg_support::url(test) {
        let schema = pg_support::Schema::new(&url, test);
        let builder = schema.builder();
        all.push(Backend {
            name: "postgres",
            registry: Arc::new(schema.open()),
            another: Box::new(move || Arc::new(builder.clone().open().unwrap())),
            _storage: Box::new(schema),
        });
    }
    all
}
