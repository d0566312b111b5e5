//! `peer_server MODE` serves the peer on 127.0.0.1 (an OS-chosen port, printed as the first
//! line of stdout) on a current-thread runtime, for `examples/loadgen.rs` of sealed-sessions.
//! MODE: `tower-sessions-sqlite` or `tower-sessions-memory`. It exits by itself after
//! `--max-seconds` (default 600), so that a lost parent cannot leave it running. `--work N`:
//! every response renders N JSON records (see `WORK`).

use std::io::Write;
use std::time::Duration;

use hyper::body::Incoming;
use sealed_sessions_peers::{peer, serve, sqlite_store, WORK};
use tower::Layer;
use tower_sessions::{MemoryStore, SessionManagerLayer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .unwrap_or("tower-sessions-sqlite")
        .to_owned();
    let max_seconds: u64 = args
        .iter()
        .position(|a| a == "--max-seconds")
        .and_then(|i| args.get(i + 1))
        .map_or(600, |s| s.parse().expect("--max-seconds N"));
    let work: usize = args
        .iter()
        .position(|a| a == "--work")
        .and_then(|i| args.get(i + 1))
        .map_or(0, |s| s.parse().expect("--work N"));
    WORK.store(work, std::sync::atomic::Ordering::Relaxed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        println!("{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let stop = tokio::time::sleep(Duration::from_secs(max_seconds));
        match mode.as_str() {
            "tower-sessions-sqlite" => {
                let store = sqlite_store(dir.path()).await;
                let svc = SessionManagerLayer::new(store)
                    .with_secure(false)
                    .layer(tower::service_fn(peer::<Incoming>));
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            "tower-sessions-memory" => {
                let svc = SessionManagerLayer::new(MemoryStore::default())
                    .with_secure(false)
                    .layer(tower::service_fn(peer::<Incoming>));
                tokio::select! { _ = serve(listener, svc) => {}, _ = stop => {} }
            }
            other => panic!("unknown mode {other}"),
        }
    });
}
