//! The PostgreSQL registry over TLS, against a server with certificates made by
//! `tests/pg_support/tls_setup.sh`: libpq's `sslmode` checks, client certificates, channel
//! binding, every connection encrypted, and revocation across hosts. Skips with a reason
//! without such a server (`tests/pg_support/tls.rs`).
#![cfg(feature = "postgres")]

mod pg_support;

use std::time::{Duration, Instant, SystemTime};

use sealed_sessions::registry::{NewSession, PostgresRegistry, Registry, RegistryError};
use sealed_sessions::SessionId;

use pg_support::tls::TlsServer;
use pg_support::Schema;

/// Opens a registry at `url` in a schema of its own (dropped by the superuser afterwards).
fn open(
    server: &TlsServer,
    url: &str,
    test: &str,
) -> (Result<PostgresRegistry, RegistryError>, Schema) {
    let schema = Schema::new(&server.admin_url, test);
    let opened = PostgresRegistry::builder(url)
        .schema(&schema.name)
        .cleanup_interval(Duration::ZERO)
        .connect_timeout(Duration::from_secs(5))
        .open();
    (opened, schema)
}

fn fails_with(server: &TlsServer, url: &str, test: &str, said: &[&str]) {
    let (opened, _schema) = open(server, url, test);
    let error = opened.err().unwrap_or_else(|| panic!("{url} connected"));
    let full = format!("{error} / {:?}", std::error::Error::source(&error));
    for words in said {
        assert!(
            full.contains(words),
            "{url}: {full:?} does not say {words:?}"
        );
    }
}

fn connects(server: &TlsServer, url: &str, test: &str) {
    let (opened, _schema) = open(server, url, test);
    if let Err(e) = opened {
        panic!("{url}: {e} ({:?})", std::error::Error::source(&e));
    }
}

#[test]
fn verify_full_checks_the_root_and_the_host_name() {
    let Some(s) = TlsServer::get("verify_full") else {
        return;
    };
    connects(
        &s,
        &s.url(
            "tls_only",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}",
        ),
        "vf_ok",
    );
    fails_with(
        &s,
        &s.url(
            "tls_only",
            "localhost",
            "sslmode=verify-full&sslrootcert={other_ca}",
        ),
        "vf_ca",
        &["sslmode=verify-full", "unknown CA", "sslrootcert"],
    );
    fails_with(
        &s,
        &s.url(
            "tls_only",
            "127.0.0.1",
            "sslmode=verify-full&sslrootcert={ca}",
        ),
        "vf_name",
        &["sslmode=verify-full", "name mismatch", "verify-ca"],
    );
    // verify-ca checks the chain only.
    connects(
        &s,
        &s.url(
            "tls_only",
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert={ca}",
        ),
        "vca",
    );
    fails_with(
        &s,
        &s.url(
            "tls_only",
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert={other_ca}",
        ),
        "vca_ca",
        &["unknown CA"],
    );
}

#[test]
fn require_encrypts_and_verifies_the_chain_once_a_root_is_named() {
    let Some(s) = TlsServer::get("require") else {
        return;
    };
    connects(
        &s,
        &s.url("tls_only", "127.0.0.1", "sslmode=require"),
        "req",
    );
    fails_with(
        &s,
        &s.url(
            "tls_only",
            "127.0.0.1",
            "sslmode=require&sslrootcert={other_ca}",
        ),
        "req_ca",
        &["sslmode=require", "unknown CA"],
    );
    fails_with(
        &s,
        &s.url("tls_only", "127.0.0.1", "sslmode=disable"),
        "disable",
        &["sslmode=disable", "sslmode=verify-full"],
    );
}

#[test]
fn a_client_certificate_role_needs_sslcert_and_sslkey() {
    let Some(s) = TlsServer::get("client_cert") else {
        return;
    };
    connects(
        &s,
        &s.url(
            "tls_cert",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}",
        ),
        "cc_ok",
    );
    let (opened, _schema) = open(
        &s,
        &s.url(
            "tls_cert",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}",
        ),
        "cc_none",
    );
    let Err(error) = opened else {
        panic!("connected without a client certificate")
    };
    let said = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(said.contains("`sslcert="), "names the way out: {said}");
    fails_with(
        &s,
        &s.url("tls_cert", "localhost", "sslmode=require&sslcert={cert}"),
        "cc_half",
        &["`sslcert` and `sslkey` go together"],
    );
}

#[test]
fn channel_binding_require_works_over_tls_only() {
    let Some(s) = TlsServer::get("channel_binding") else {
        return;
    };
    let with = |params: &str| {
        s.url("tls_scram", "localhost", params).replacen(
            "tls_scram@",
            "tls_scram:scram-test-pw@",
            1,
        )
    };
    connects(
        &s,
        &with("sslmode=verify-full&sslrootcert={ca}&channel_binding=require"),
        "cb_ok",
    );
    let (opened, _schema) = open(
        &s,
        &with("sslmode=disable&channel_binding=require"),
        "cb_plain",
    );
    let Err(error) = opened else {
        panic!("channel binding without TLS")
    };
    let said = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(!said.contains("scram-test-pw"), "{said}");
}

#[test]
fn every_connection_of_the_default_on_loopback_is_encrypted() {
    let Some(s) = TlsServer::get("pg_stat_ssl") else {
        return;
    };
    // No sslmode on a loopback host: `prefer`, which this server accepts.
    let (opened, _schema) = open(&s, &s.url("tls_stat", "localhost", ""), "stat");
    let registry = opened.unwrap();
    let (plain, encrypted) = pg_support::tls::counts(
        &s.admin_url,
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'tls_stat'",
    );
    assert_eq!(plain, 0, "a registry connection in plain text");
    assert!(encrypted >= 3, "writer, reader and listener: {encrypted}");
    drop(registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_the_other_host_over_tls() {
    let Some(s) = TlsServer::get("two_hosts") else {
        return;
    };
    let url = s.url(
        "tls_only",
        "localhost",
        "sslmode=verify-full&sslrootcert={ca}",
    );
    let (a, schema) = open(&s, &url, "two_hosts");
    let a = a.unwrap();
    let b = PostgresRegistry::builder(&url)
        .schema(&schema.name)
        .open()
        .unwrap();
    let now = SystemTime::now();
    let id = SessionId::generate();
    a.register(NewSession::new(
        id,
        "alice",
        now,
        now + Duration::from_secs(3600),
    ))
    .await
    .unwrap();
    assert!(b.validate(id, "alice", now).await.unwrap());
    assert!(a.revoke("alice", id).await.unwrap());
    let start = Instant::now();
    while b.validate_cached(id, "alice", SystemTime::now()) == Some(true) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never reached the other host"
        );
        tokio::task::yield_now().await;
    }
    assert!(!b.validate(id, "alice", SystemTime::now()).await.unwrap());
}

/// The operator tool reads the same string: `migrate` and `list` against a TLS-only role.
#[cfg(feature = "cli")]
#[test]
fn the_operator_tool_connects_over_tls() {
    let Some(s) = TlsServer::get("cli_tls") else {
        return;
    };
    let schema = Schema::new(&s.admin_url, "cli_tls");
    let db = format!(
        "{}&schema={}",
        s.url(
            "tls_only",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}"
        ),
        schema.name
    );
    for args in [
        vec!["migrate", "--db", &db],
        vec!["list", "alice", "--db", &db],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealed-sessions"))
            .args(&args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        // `list` of a user without sessions exits 1, having read the registry.
        let read = out.status.success() || said.contains("has no active session");
        assert!(read, "{args:?}: {said}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealed-sessions"))
        .args([
            "list",
            "alice",
            "--db",
            &db.replace("sslmode=verify-full", "sslmode=disable"),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("sslmode"), "{said}");
}
