//! Every route of the demo over real HTTP, against the real example binary.
#![cfg(all(feature = "hyper", feature = "sqlite"))]

mod demo_support;
mod support;

use demo_support::{Client, Demo};

#[tokio::test]
async fn smoke() {
    let demo = Demo::start();
    let mut a = Client::new(demo.addr, "test-agent/1");
    a.login("alice", "correct-horse").await;
    assert_eq!(a.me().await.unwrap()["user"], "alice");
}
