//! The TLS-capable server, when there is one: `SEALED_SESSIONS_POSTGRES_TLS_DIR` names the
//! directory `tests/pg_support/tls_setup.sh` filled (CA, other CA, client certificate) for the
//! server `SEALED_SESSIONS_POSTGRES_URL` names. Without it, tests say SKIPPED and why, unless
//! `SEALED_SESSIONS_REQUIRE_POSTGRES_TLS=1` (set by CI) makes that a failure.

use std::sync::OnceLock;

pub const TLS_DIR_VAR: &str = "SEALED_SESSIONS_POSTGRES_TLS_DIR";
pub const REQUIRE_TLS_VAR: &str = "SEALED_SESSIONS_REQUIRE_POSTGRES_TLS";

/// The certificates' directory, the server's port and its superuser URL, or `None` after
/// saying why the test does not run.
pub struct TlsServer {
    pub dir: String,
    pub port: u16,
    pub admin_url: String,
}

impl TlsServer {
    pub fn get(test: &str) -> Option<Self> {
        let dir = std::env::var(TLS_DIR_VAR).ok().filter(|d| !d.is_empty());
        let url = std::env::var(super::URL_VAR).ok().filter(|u| !u.is_empty());
        let (Some(dir), Some(admin_url)) = (dir, url) else {
            assert!(
                std::env::var(REQUIRE_TLS_VAR).is_err(),
                "{REQUIRE_TLS_VAR} is set but {TLS_DIR_VAR} or {}: {test} must run against \
                 PostgreSQL with TLS",
                super::URL_VAR
            );
            super::skip::skipped(&format!(
                "{test} needs PostgreSQL with TLS: set {} and {TLS_DIR_VAR} (bash .ci/run does; \
                 see tests/pg_support/tls_setup.sh)",
                super::URL_VAR
            ));
            return None;
        };
        let config: tokio_postgres::Config = admin_url.parse().unwrap();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        static ROLES: OnceLock<()> = OnceLock::new();
        ROLES.get_or_init(|| {
            super::Schema::new(&admin_url, "tls_roles").execute(
                "DO $$ BEGIN
                   CREATE ROLE tls_only LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 DO $$ BEGIN
                   CREATE ROLE tls_cert LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 DO $$ BEGIN
                   CREATE ROLE tls_scram LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 DO $$ BEGIN
                   CREATE ROLE tls_stat LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 SET password_encryption = 'scram-sha-256';
                 ALTER ROLE tls_scram PASSWORD 'scram-test-pw';
                 GRANT CREATE ON DATABASE postgres TO tls_only, tls_cert, tls_scram, tls_stat;",
            );
        });
        Some(TlsServer {
            dir,
            port,
            admin_url,
        })
    }

    /// A URL for `user` at `host` on this server, with `params` (`key=value&...`).
    pub fn url(&self, user: &str, host: &str, params: &str) -> String {
        let params = params
            .replace("{ca}", &format!("{}/ca.pem", self.dir))
            .replace("{other_ca}", &format!("{}/other-ca.pem", self.dir))
            .replace("{cert}", &format!("{}/client.pem", self.dir))
            .replace("{key}", &format!("{}/client.key", self.dir));
        format!("postgres://{user}@{host}:{}/postgres?{params}", self.port)
    }
}

/// The two counts `sql` selects, run by the superuser at `url`.
pub fn counts(url: &str, sql: &str) -> (i64, i64) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let row = super::connect(&url)
                .await
                .query_one(&sql, &[])
                .await
                .unwrap();
            (row.get(0), row.get(1))
        })
    })
    .join()
    .unwrap()
}
