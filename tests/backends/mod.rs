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
    _storage: Box<dyn Any>,
}

/// Every backend this machine can run, each fresh.
pub fn backends(test: &str) -> Vec<Backend> {
    #[cfg(not(feature = "postgres"))]
    let _ = test;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteRegistry::open(dir.path().join("s.db")).unwrap();
    #[allow(unused_mut)] // without the postgres feature
    let mut all = vec![Backend {
        name: "sqlite",
        registry: Arc::new(sqlite),
        _storage: Box::new(dir),
    }];
    #[cfg(feature = "postgres")]
    if let Some(url) = pg_support::url(test) {
        let schema = pg_support::Schema::new(&url, test);
        all.push(Backend {
            name: "postgres",
            registry: Arc::new(schema.open()),
            _storage: Box::new(schema),
        });
    }
    all
}
