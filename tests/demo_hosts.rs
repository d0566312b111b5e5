//! Two demo processes on one PostgreSQL registry, as two hosts behind a load balancer: a
//! session made on one works on the other, and a revocation on either, or from a third process
//! (`revoke_all`), is refused on both. Needs a server (`tests/pg_support`).
#![cfg(all(feature = "hyper", feature = "sqlite", feature = "postgres"))]

mod demo_support;
mod pg_support;
mod support;

use std::time::{Duration, Instant};

use demo_support::{revoke_all, Client, Demo};
use pg_support::Schema;

/// Generous, for a loaded CI machine: a limit on waiting, never a timing target.
const DEADLINE: Duration = Duration::from_secs(10);

/// The URL of `schema` on the test server: the registry takes its schema from the URL's own
/// `schema` parameter, so the demo and `revoke_all` need no flag for it.
fn url_of(schema: &Schema) -> String {
    let sep = if schema.url.contains('?') { '&' } else { '?' };
    format!("{}{sep}schema={}", schema.url, schema.name)
}

/// Waits until `client`, sent to `host`, is signed out; returns how long it took.
async fn signed_out_on(client: &mut Client, host: std::net::SocketAddr) -> Duration {
    let start = Instant::now();
    client.addr = host;
    while client.me().await.is_some() {
        assert!(start.elapsed() < DEADLINE, "still signed in on {host}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_share_sessions_and_revocations() {
    let Some(url) = pg_support::url("two_demos") else {
        return;
    };
    let schema = Schema::new(&url, "two_demos");
    let db = url_of(&schema);
    let first_dir = tempfile::tempdir().unwrap();
    let key = first_dir.path().join("session.key");
    let a = Demo::start_on(first_dir, &db, &key);
    let b = Demo::start_on(tempfile::tempdir().unwrap(), &db, &key);

    // Signed in on a, the same cookie is signed in on b.
    let mut phone = Client::new(a.addr, "phone");
    phone.login("alice", "correct-horse").await;
    phone.addr = b.addr;
    assert_eq!(phone.me().await.unwrap()["user"], "alice");

    // "Sign out everywhere" on b: refused on a.
    let mut laptop = Client::new(b.addr, "laptop");
    laptop.login("alice", "correct-horse").await;
    let csrf = laptop.csrf("/sessions").await;
    let r = laptop
        .post("/sessions/revoke-all", &[("csrf_token", &csrf)])
        .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let took = signed_out_on(&mut phone, a.addr).await;
    println!("revoked on one demo, refused on the other after {took:?}");

    // A third process (the operator's revoke_all) signs bob out of both.
    let mut tablet = Client::new(a.addr, "tablet");
    tablet.login("bob", "battery-staple").await;
    tablet.addr = b.addr;
    assert_eq!(tablet.me().await.unwrap()["user"], "bob");
    let out = revoke_all(&db, "bob");
    assert!(out.contains("revoked 1 session"), "{out}");
    let took = signed_out_on(&mut tablet, b.addr).await;
    signed_out_on(&mut tablet, a.addr).await;
    println!("revoke_all from a third process, refused on a demo after {took:?}");
}
