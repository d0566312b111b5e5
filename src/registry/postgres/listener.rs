//! The listener: one connection that LISTENs for revocations, evicts them, and keeps the host's
//! view of the revocation log confirmed fresh.
//!
//! After every (re)connect: `LISTEN`, then read the log past the watermark (the catch-up), and
//! only then confirm the cache fresh. Notifications evict at once; a heartbeat every
//! `heartbeat` reads the log's end (`max(seq)` and the database's incarnation) and reads what lies
//! past the watermark, which catches a notification that never came. Each successful catch-up
//! confirms freshness as of the moment it began (see `freshness.rs`). On any error or timeout the
//! connection is dropped and reopened with backoff (10 ms doubling to 1 s, with jitter); while it
//! is down the confirmation ages, and past the staleness bound the cache stops vouching.
//!
//! **Notifications are hints.** Any role that can connect can NOTIFY on the channel (no grant
//! restricts it), so nothing is taken on a payload's word but the eviction of the ids it names
//! (evicting early is safe). `max:N` and an empty id (a TRUNCATE's, or a batch of
//! `revoke_all`) only ask for a read of the
//! log; the watermark advances only through reads of the log, and only the log empties the
//! cache (a real TRUNCATE leaves its empty-id row there). The connection's driver handles each
//! notification as it arrives and keeps of any number of them one flag; the loop reads the log one
//! read at a time, and hints that come during a read leave one more read to do, however many.
//! An outsider's burst costs a host a few reads of the log and no memory; a steady stream keeps
//! it reading the log back to back for as long as it lasts. What a read of the log finds is
//! evicted even if a notification evicted it before: a forged notification can name an id
//! before its revocation commits, and a request can cache the session again in between.
//!
//! A database whose incarnation changed (replaced) or whose log ends before the watermark
//! (restored from a backup) empties the cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{oneshot, Notify};
use tokio_postgres::{AsyncMessage, Client};

use super::lag::{HeardAt, RECORDING};
use super::schema::channel;
use super::shared::Shared;
use crate::id::SessionId;
use crate::registry::RegistryError;
use crate::telemetry::feed::Flush;

/// What the listener knows of the log across reconnects.
#[derive(Debug, Default)]
struct Feed {
    /// The database's `incarnation`, once seen.
    incarnation: Option<String>,
    /// When the server last started (`pg_postmaster_start_time()`), once seen.
    server_started: Option<SystemTime>,
    /// Every revocation up to this sequence number has been evicted.
    watermark: Option<i64>,
    /// The row at the watermark, as the log held it: its id, and its expiry when read from
    /// the log (a notification does not carry it). Checked at every catch-up: see [`catch_up`].
    mark: Option<(Vec<u8>, Option<SystemTime>)>,
}

impl Feed {
    /// Empties the cache and starts again from `end`: the log can no longer be trusted to hold
    /// every revocation past the watermark.
    fn forget(&mut self, shared: &Shared, end: i64, why: &str, reason: Flush) {
        let reason_label = reason.as_str();
        tracing::warn!(server = %shared.server, why, reason = reason_label, "forgetting every cached session");
        shared.cache.clear();
        shared.freshness.flushed(reason);
        self.watermark = Some(end);
        self.mark = None;
    }
}

/// Rows read per query of a catch-up, so that each query ends within its time limit.
const PAGE: i64 = 10_000;
/// A gap larger than this is not read: the cache is emptied instead, which costs each host one
/// table read per session it sees again, less than reading a huge log (an operator's `DELETE`
/// of a million live sessions logs a million rows).
const MAX_GAP: i64 = 100_000;

/// Runs until `stop`; reports the first catch-up (or why there was none) on `first`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    first: oneshot::Sender<Result<(), RegistryError>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut feed = Feed::default();
    let mut first = Some(first);
    let mut backoff = Duration::from_millis(10);
    loop {
        let mut caught_up = false;
        let session = listen(&shared, &mut feed, &mut first, &mut caught_up);
        let e = tokio::select! {
            e = session => e,
            _ = &mut stop => return,
        };
        if let Some(first) = first.take() {
            // `open` fails with what went wrong; nothing was promised yet.
            let _ = first.send(Err(e));
            return;
        }
        shared.freshness.failed(&e);
        // A working connection lost, not every failed attempt while the server is down: the
        // alert on reconnects would otherwise measure how long an outage lasted.
        if caught_up {
            shared.freshness.metrics.reconnect();
        }
        tracing::warn!(
            server = %shared.server,
            error = %e,
            staleness_bound = ?shared.freshness.bound(),
            "the registry's listener lost its connection; reconnecting (cached sessions are trusted until the staleness bound)"
        );
        if caught_up {
            backoff = Duration::from_millis(10);
        }
        let pause = jitter(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut stop => return,
        }
    }
}

/// What the connection's driver tells the listener's loop: notifications are hints, so all it
/// keeps of any number of them is one flag. Memory does not grow with what anyone NOTIFYs.
#[derive(Default)]
struct Hints {
    /// Some notification asked for a read of the log since the last read began.
    read_log: AtomicBool,
    /// The connection ended.
    closed: AtomicBool,
    wake: Notify,
    /// When the ids notifications named were evicted, for the propagation lag (`lag.rs`).
    heard_at: HeardAt,
}

/// One connection's life: connect, LISTEN, catch up, then notifications and heartbeats until
/// something fails, which it returns. `caught_up` tells whether it got as far as a catch-up.
async fn listen(
    shared: &Arc<Shared>,
    feed: &mut Feed,
    first: &mut Option<oneshot::Sender<Result<(), RegistryError>>>,
    caught_up: &mut bool,
) -> RegistryError {
    let connected = shared.open_connection().await;
    let (client, mut connection) = match connected {
        Ok(connected) => connected,
        Err(e) => return e,
    };
    let hints = Arc::new(Hints::default());
    // Drives the connection and handles its notifications as they come, in order; ends with
    // the connection.
    let driver = tokio::spawn({
        let (shared, hints) = (Arc::clone(shared), Arc::clone(&hints));
        async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if heard(&shared, &hints.heard_at, n.payload()) {
                            hints.read_log.store(true, Ordering::SeqCst);
                            hints.wake.notify_one();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            hints.closed.store(true, Ordering::SeqCst);
            hints.wake.notify_one();
        }
    });
    let result = async {
        shared
            .bounded(async {
                let listen = format!(
                    "SET statement_timeout = {}; LISTEN {}",
                    shared.operation_timeout.as_millis(),
                    channel(&shared.schema)
                );
                client.batch_execute(&listen).await.map_err(shared.err())
            })
            .await?;
        hints.read_log.store(false, Ordering::SeqCst);
        catch_up(shared, &client, feed, &hints.heard_at).await?;
        *caught_up = true;
        if let Some(first) = first.take() {
            let _ = first.send(Ok(()));
        }
        let mut beat = tokio::time::interval(shared.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        // One read at a time: hints that come during a read leave one more read to do after it,
        // however many they are.
        loop {
            tokio::select! {
                _ = hints.wake.notified() => {
                    if hints.closed.load(Ordering::SeqCst) {
                        return Err(lost(shared));
                    }
                    if hints.read_log.swap(false, Ordering::SeqCst) {
                        catch_up(shared, &client, feed, &hints.heard_at).await?;
                    }
                }
                _ = beat.tick() => {
                    // This read covers every hint so far.
                    hints.read_log.store(false, Ordering::SeqCst);
                    catch_up(shared, &client, feed, &hints.heard_at).await?;
                }
            }
        }
    }
    .await;
    driver.abort();
    match result {
        Err(e) => e,
        Ok::<(), _>(()) => lost(shared),
    }
}

fn lost(shared: &Shared) -> RegistryError {
    RegistryError::Unreachable {
        server: shared.server.clone(),
        source: "the listener's connection closed".into(),
    }
}

/// Handles one notification, which anyone who can connect can send: evicts the ids it names
/// (evicting early is safe; a valid session's id is known only to its owner), and returns
/// whether it asks for a read of the log: `max:N` (too many ids for one notification), or an
/// empty id (a TRUNCATE's). Nothing else is taken on its word: the cache is emptied and the
/// watermark moved only by what the log says.
///
/// What a notification evicted is evicted again when the log read that follows finds it: a
/// forged notification can name a session's id before its revocation (its owner knows it),
/// so that a request caches the session again in between; only the log says when the
/// revocation really committed, and evicting from the log costs one more epoch bump.
fn heard(shared: &Shared, heard_at: &HeardAt, payload: &str) -> bool {
    if payload.starts_with("max:") {
        return true;
    }
    let mut read_log = false;
    let mut entries = Vec::new();
    for entry in payload.split(',') {
        let Some((_, id)) = entry.split_once(':') else {
            continue;
        };
        match decode_hex(id) {
            Some(Target::One(id)) => entries.push(id),
            Some(Target::All) => read_log = true,
            // Not ours to understand: the heartbeat's read of the log will deal with it.
            None => {}
        }
    }
    heard_at.heard(&entries);
    shared.cache.evict(entries);
    read_log
}

enum Target {
    One(SessionId),
    /// The empty id a TRUNCATE, or a batch of `revoke_all`, logs: every session.
    All,
}

fn decode_hex(text: &str) -> Option<Target> {
    if text.is_empty() {
        return Some(Target::All);
    }
    let bytes = text.as_bytes();
    if bytes.len() != 2 * SessionId::LEN {
        return None;
    }
    let mut id = [0u8; SessionId::LEN];
    for (out, pair) in id.iter_mut().zip(bytes.chunks(2)) {
        let digit = |b: u8| (b as char).to_digit(16);
        *out = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(Target::One(SessionId::from_bytes(id)))
}

/// Reads the log's end and everything past the watermark, evicts it, and confirms the cache
/// fresh as of the moment this began.
///
/// The log is trusted to hold every revocation past the watermark only while nothing suggests
/// that it lost any: a new incarnation (another database), a restarted server (a failover to an
/// asynchronous replica, or a crash with `synchronous_commit = off`, can lose the log's tail
/// and hand its sequence numbers out again), a log that ends before the watermark (a restore),
/// or a row at the watermark that is gone before its expiry or holds another id (sequence
/// numbers reused). Any of these empties the cache.
///
/// Each revocation read records its propagation lag (see `lag.rs`): from its `revoked_at` to
/// its eviction here, by the notification that named it (`heard_at`) or by this read.
async fn catch_up(
    shared: &Shared,
    client: &Client,
    feed: &mut Feed,
    heard_at: &HeardAt,
) -> Result<(), RegistryError> {
    let began = Instant::now();
    // What was heard before this read; what is heard during it waits for the next one.
    let mut heard = heard_at.take();
    shared.log_reads.fetch_add(1, Ordering::Relaxed);
    let s = &shared.schema;
    let err = shared.err();
    let limit = shared.heartbeat.max(Duration::from_millis(100));
    let row = within(shared, limit, async {
        client
            .query_one(
                &format!(
                    "SELECT (SELECT value FROM {s}.meta WHERE key = 'incarnation'), \
                     (SELECT coalesce(max(seq), 0) FROM {s}.revocations), \
                     pg_postmaster_start_time(), \
                     (SELECT id FROM {s}.revocations WHERE seq = $1)"
                ),
                &[&feed.watermark.unwrap_or(0)],
            )
            .await
            .map_err(&err)
    })
    .await?;
    let (incarnation, end, started, at_mark): (Option<String>, i64, SystemTime, Option<Vec<u8>>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let incarnation = incarnation.ok_or_else(|| {
        RegistryError::Backend(format!("{}: the registry's meta row is gone", shared.server).into())
    })?;
    let replaced = feed.incarnation.as_ref().is_some_and(|i| *i != incarnation);
    let restarted = feed.server_started.is_some_and(|t| t != started);
    feed.incarnation = Some(incarnation);
    feed.server_started = Some(started);
    let Some(watermark) = feed.watermark else {
        // The first look: nothing is cached yet, so the log before its end is no news.
        feed.watermark = Some(end);
        shared.freshness.confirm(began);
        return Ok(());
    };
    let mark_lost = match (&feed.mark, &at_mark) {
        (Some((id, _)), Some(found)) => id != found,
        (Some((_, expires)), None) => expires.is_none_or(|e| SystemTime::now() < e),
        (None, _) => false,
    };
    let why = if replaced {
        Some((
            "the registry's database was replaced",
            Flush::ReplacedDatabase,
        ))
    } else if restarted {
        Some((
            "the database server restarted: the log's tail may be lost",
            Flush::Restart,
        ))
    } else if end < watermark || mark_lost {
        Some((
            "the revocation log lost entries (restored, or failed over)",
            Flush::LogLost,
        ))
    } else if end - watermark > MAX_GAP {
        Some(("too many revocations to read", Flush::CatchUpTooLong))
    } else {
        None
    };
    if let Some((why, reason)) = why {
        feed.forget(shared, end, why, reason);
        shared.freshness.confirm(began);
        return Ok(());
    }
    // The revoking transaction's stamp (the server's clock), for the lag; a deleted session
    // or a shortened expiry has none.
    let revoked_at = if RECORDING {
        format!("(SELECT revoked_at FROM {s}.sessions WHERE id = r.id)")
    } else {
        "NULL::timestamptz".to_owned()
    };
    let page = format!(
        "SELECT r.seq, r.id, r.expires_at, {revoked_at} FROM {s}.revocations r \
         WHERE r.seq > $1 ORDER BY r.seq LIMIT {PAGE}"
    );
    let mut from = watermark;
    while from < end {
        let rows = within(shared, limit, async {
            client.query(&page, &[&from]).await.map_err(&err)
        })
        .await?;
        let read_at = SystemTime::now();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Vec<u8> = row.get(1);
            from = row.get(0);
            match <[u8; SessionId::LEN]>::try_from(id.as_slice()) {
                Ok(bytes) => {
                    let id = SessionId::from_bytes(bytes);
                    if let Ok(Some(revoked_at)) = row.try_get::<_, Option<SystemTime>>(3) {
                        heard.record(&shared.freshness.metrics, &id, revoked_at, read_at);
                    }
                    ids.push(id);
                }
                Err(_) if id.is_empty() => {
                    shared.cache.clear();
                    shared.freshness.flushed(Flush::Truncated);
                }
                Err(_) => {}
            }
            feed.mark = Some((id, Some(row.get(2))));
        }
        shared.cache.evict(ids);
        feed.watermark = Some(from);
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    shared.freshness.confirm(began);
    Ok(())
}

/// `future`, failing as unreachable if it takes longer than `limit`.
async fn within<T>(
    shared: &Shared,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| Err(super::schema::timed_out(&shared.server, limit)))
}

/// `d` plus up to a quarter of it, so that many hosts do not reconnect in step.
fn jitter(d: Duration) -> Duration {
    let mut byte = [0u8; 1];
    crate::random::fill(&mut byte);
    d + d / 4 * u32::from(byte[0]) / 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_decode() {
        let id = SessionId::from_bytes([0xab; 16]);
        match decode_hex(&"ab".repeat(16)) {
            Some(Target::One(got)) => assert_eq!(got, id),
            _ => panic!("not decoded"),
        }
        assert!(matches!(decode_hex(""), Some(Target::All)));
        for bad in ["ab", &"zz".repeat(16), &"ab".repeat(17), "é"] {
            assert!(decode_hex(bad).is_none(), "{bad}");
        }
    }
}
