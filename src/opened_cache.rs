//! [`OpenedCache`]: cookie values that already opened, so that the next request carrying the
//! same value skips base64, the AEAD and the claims framing check.
//!
//! A browser sends the same cookie value on every request until the session changes, and
//! opening it (XAES-256-GCM key derivation, AES-GCM, GHASH, the framing check) is most of what
//! the middleware costs per request. This cache keeps, for a bounded number of values, the
//! decoded envelope and the claims that came out of it.
//!
//! Values get in two ways: a value that opened on a cache miss, and a value the middleware has
//! just sealed for a visitor whose own cookie opened (so the visitor returns cookies, and will
//! send this value next). The second way spares the request after every change a full open;
//! values sealed for visitors that came without a valid cookie (new visitors, and clients that
//! keep no cookies, such as most crawlers) are not kept, since they would only evict others.
//! A client that replays one valid cookie and ignores `Set-Cookie` does insert an entry on
//! every request that changes (or refreshes) its session, one eviction per request; presenting
//! distinct genuine values evicts as surely, at two requests each. Either way eviction costs
//! other visitors only a full open on their next request, never correctness.
//!
//! # Why this is as strong as opening the value again
//!
//! A value is served from the cache only when it is byte for byte equal to a value that passed
//! [`Sealer::open`](crate::Sealer::open) for the same cookie name, with the same key ring and
//! mode (the cache belongs to one [`SessionConfig`](crate::SessionConfig), whose ring and name
//! never change), or that this configuration's sealer produced, together with exactly what
//! opening it gives (the decrypted envelope, and the claims `ClaimsCore::decode` would read
//! from it; `Sealer::seal_core_into`, and a property test that opens every such value to
//! check both). Opening is deterministic in the value, except for the expiry check, which the
//! caller repeats on every hit. Everything after opening (the registry's verdict on a user-bound
//! session, in particular) runs as for any other request, so revocation is unaffected.
//!
//! - The comparison is constant-time in the content (it reads every byte whatever the first
//!   difference; only the lengths, which are public, are compared first), so response timing
//!   tells an attacker nothing about how close a forged value came to a cached one.
//! - Slots are chosen from the value's last 16 characters (part of its tag or MAC, random per
//!   value) mixed with a random key, so values spread evenly; a collision only evicts. (Aiming
//!   values at one slot would gain nothing: only values that opened or that we sealed are
//!   inserted, and anyone can already evict by presenting many genuine cookies.)
//! - Only cookie values of up to 680 characters (envelopes of up to 510 bytes, ~460 bytes of
//!   claims) are kept, and the cache is direct-mapped with a fixed number of slots, so its
//!   memory is bounded whatever the traffic: about 150 bytes per slot up front, and at most
//!   about 1.4 KB more per filled slot. [`MAX_ENTRIES`] caps the number of slots.
//! - An entry holds a bearer credential (the value) and the session's data in clear (the
//!   decoded envelope). The value is zeroized when the slot is overwritten (its buffer then
//!   takes the new value), when a hit finds the session expired, and when the cache is dropped; the envelope is shared with the
//!   requests that hit it (`cookie_buf.rs`: a hit costs a reference count, not a copy) and is
//!   zeroized when the last of them is done with it.
//! - The comparison is written out rather than taken from `subtle`: `subtle`'s slice comparison
//!   costs about eight instructions and an optimization barrier per byte (some 2,500 for a
//!   typical value, half of what the cache saves); this one compares 32 bytes at a time with a
//!   barrier per block.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::claims::ClaimsCore;
use std::sync::Arc;

use crate::clear_bytes::wipe;
use crate::envelope_bytes::Envelope;

/// The number of shards; shards keep two cores from waiting on one lock.
const SHARDS: usize = 16;

/// The most entries a cache may have (about 10 MB up front, about 100 MB when full).
pub(crate) const MAX_ENTRIES: usize = 1 << 16;

/// The longest value kept.
const MAX_VALUE_LEN: usize = 680;

/// The longest decoded envelope kept (that of a [`MAX_VALUE_LEN`]-character value).
pub(crate) const MAX_RAW_LEN: usize = MAX_VALUE_LEN / 4 * 3;

/// Recently opened cookie values of one configuration; see the module documentation.
pub(crate) struct OpenedCache {
    shards: Box<[Mutex<Vec<Option<Entry>>>]>,
    slots_per_shard: usize,
    /// Mixed into slot selection; drawn once per cache.
    key: [u64; 2],
}

/// What a hit gives: the claims, whether to re-seal them, and the envelope they read from.
pub(crate) type Hit = (ClaimsCore, bool, Arc<Envelope>);

/// A cached value whose session has expired.
#[derive(Debug)]
pub(crate) struct Expired;

struct Entry {
    /// The value, in a buffer the next value to take the slot reuses (zeroized first).
    value: Vec<u8>,
    /// The decoded envelope, which `claims` reads its user and data from.
    raw: Arc<Envelope>,
    claims: ClaimsCore,
    needs_reseal: bool,
    /// When the session ends (the earlier of its two deadlines, or sooner if the configuration's
    /// lifetime says so), as a time: checked on every hit, so not converted from the claims'
    /// seconds each time.
    expires: SystemTime,
}

impl Drop for Entry {
    fn drop(&mut self) {
        wipe(&mut self.value);
    }
}

impl OpenedCache {
    /// A cache of about `entries` values (rounded up to a multiple of the shard count, and at
    /// most [`MAX_ENTRIES`], which the configuration checks); `None` for 0, which turns caching
    /// off.
    pub(crate) fn new(entries: usize) -> Option<Self> {
        if entries == 0 {
            return None;
        }
        let entries = entries.min(MAX_ENTRIES);
        let slots_per_shard = entries.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new((0..slots_per_shard).map(|_| None).collect()))
            .collect();
        let mut key = [0u8; 16];
        crate::random::fill(&mut key);
        let (k0, k1) = key.split_at(8);
        Some(OpenedCache {
            shards,
            slots_per_shard,
            key: [word(k0), word(k1)],
        })
    }

    /// The claims of `value`, whether to re-seal them, and its decoded envelope (which the
    /// claims read from), if `value` opened before; `Err(Expired)` if it did but has expired at
    /// `now` (the entry is dropped then).
    pub(crate) fn get(&self, value: &[u8], now: SystemTime) -> Option<Result<Hit, Expired>> {
        let (shard, slot) = self.slot_of(value)?;
        let mut slots = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cell = slots.get_mut(slot)?;
        let entry = cell.as_ref()?;
        if !constant_time_eq(&entry.value, value) {
            return None;
        }
        // The one check of opening that depends on more than the value: the claims'
        // `is_expired`, which is `now >= expires` for deadlines in whole seconds (and always
        // true for a deadline of 0, which `is_expired` compares with a clock before 1970
        // clamped to 0), and the configuration's lifetime, folded into `expires`.
        if now >= entry.expires || entry.expires == UNIX_EPOCH {
            let old = cell.take();
            drop(slots);
            drop(old);
            return Some(Err(Expired));
        }
        Some(Ok((
            entry.claims.clone(),
            entry.needs_reseal,
            Arc::clone(&entry.raw),
        )))
    }

    /// Remembers that `value` opens into `raw` (its decoded envelope) and `claims`: because it
    /// just did, or because this process sealed it into `value` a moment ago.
    ///
    /// `claims` comes with when the session ends (the earlier of its deadlines, or sooner, as
    /// the configuration says: `Shared::session_end`), which every hit checks.
    pub(crate) fn insert(
        &self,
        value: &[u8],
        raw: Arc<Envelope>,
        (claims, expires): (ClaimsCore, SystemTime),
        needs_reseal: bool,
    ) {
        let Some((shard, slot)) = self.slot_of(value) else {
            return;
        };
        let mut slots = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(cell) = slots.get_mut(slot) else {
            return;
        };
        // The value goes into the buffer of the one it replaces, zeroized first: a free and a
        // fresh allocation spared (the values of one configuration are of much the same
        // length), and the old value is gone as surely as when its buffer was freed.
        let mut old = cell.take();
        let mut buf = old
            .as_mut()
            .map(|old| std::mem::take(&mut old.value))
            .unwrap_or_default();
        wipe(&mut buf);
        if buf.capacity() < value.len() {
            // Exactly the length (growing would double), which keeps the bound on memory.
            buf = Vec::with_capacity(value.len());
        }
        buf.extend_from_slice(value);
        *cell = Some(Entry {
            value: buf,
            raw,
            expires,
            claims,
            needs_reseal,
        });
        // The rest of the entry it replaces (its envelope, zeroized when the last holder drops
        // it) is dropped after the lock is released.
        drop(slots);
        drop(old);
    }

    /// Where `value` lives, or `None` if it is too long to be kept.
    fn slot_of(&self, value: &[u8]) -> Option<(usize, usize)> {
        if value.len() > MAX_VALUE_LEN || value.is_empty() {
            return None;
        }
        // The last characters are the tag (private mode) or the MAC (signed mode): random per
        // value. Shorter values (never sealed by us, but possibly in the cache's tests) are
        // zero-padded.
        let mut tail = [0u8; 16];
        let from = value.len().saturating_sub(16);
        tail[..value.len() - from].copy_from_slice(&value[from..]);
        let (a, b) = tail.split_at(8);
        let h =
            ((word(a) ^ self.key[0]).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ word(b) ^ self.key[1])
                .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let h = (h >> 32) as usize;
        Some((h % SHARDS, (h / SHARDS) % self.slots_per_shard))
    }
}

/// Up to eight bytes as a number.
fn word(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |w, b| w << 8 | u64::from(*b))
}

/// Whether `a == b`, reading every byte of both whatever the first difference (when the lengths
/// are equal; lengths are public).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |chunk: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        u64::from_ne_bytes(w)
    };
    let mut diff = 0u64;
    let (a_blocks, b_blocks) = (a.chunks_exact(32), b.chunks_exact(32));
    let (a_rest, b_rest) = (a_blocks.remainder(), b_blocks.remainder());
    // The barrier after every block keeps the optimizer from stopping at the first difference;
    // within a block, four words are folded with no branch.
    for (x, y) in a_blocks.zip(b_blocks) {
        let block = (0..4).fold(0, |d, i| {
            let at = i * 8;
            d | (word(&x[at..at + 8]) ^ word(&y[at..at + 8]))
        });
        diff = std::hint::black_box(diff | block);
    }
    let (a_words, b_words) = (a_rest.chunks_exact(8), b_rest.chunks_exact(8));
    let (a_rest, b_rest) = (a_words.remainder(), b_words.remainder());
    for (x, y) in a_words.zip(b_words) {
        diff = std::hint::black_box(diff | (word(x) ^ word(y)));
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn envelope(bytes: &[u8]) -> Arc<Envelope> {
        Arc::new(Envelope::new(bytes.to_vec()))
    }

    /// Claims with the end their own deadlines give (what `Shared::session_end` gives for a
    /// configuration whose lifetime is no shorter).
    fn with_end(c: ClaimsCore) -> (ClaimsCore, SystemTime) {
        let end = c.expires_at().min(c.idle_deadline());
        (c, end)
    }

    fn claims() -> ClaimsCore {
        ClaimsCore::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            Duration::from_secs(3600),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn equal_values_hit_and_any_other_value_misses() {
        let cache = OpenedCache::new(64).unwrap();
        let value = "AQFt0XGtQnB8nIdbGb0fDTLmgW3wBrMm5JHUnDvnP7bN7IJKeTkXcLZz";
        let c = claims();
        cache.insert(
            value.as_bytes(),
            envelope(b"decoded envelope"),
            with_end(c.clone()),
            true,
        );

        let (got, reseal, raw) = cache
            .get(value.as_bytes(), UNIX_EPOCH)
            .expect("a hit")
            .unwrap();
        assert_eq!(got.id(), c.id());
        assert!(reseal);
        assert_eq!(raw.as_slice(), b"decoded envelope");

        // One character changed anywhere, one more or one fewer: a miss.
        for i in 0..value.len() {
            let mut other = value.as_bytes().to_vec();
            other[i] = if other[i] == b'A' { b'B' } else { b'A' };
            let other = String::from_utf8(other).unwrap();
            assert!(
                cache.get(other.as_bytes(), UNIX_EPOCH).is_none(),
                "position {i}"
            );
        }
        assert!(cache.get(&value.as_bytes()[1..], UNIX_EPOCH).is_none());
        assert!(cache
            .get(format!("{value}A").as_bytes(), UNIX_EPOCH)
            .is_none());
    }

    #[test]
    fn an_expired_hit_is_refused_and_dropped() {
        let cache = OpenedCache::new(64).unwrap();
        let c = claims();
        cache.insert(b"a-value", envelope(b"raw"), with_end(c.clone()), false);
        let after = c.idle_deadline();
        assert!(matches!(
            cache.get("a-value".as_bytes(), after),
            Some(Err(Expired))
        ));
        // Dropped: even at a time it would be valid, it is no longer there.
        assert!(cache.get("a-value".as_bytes(), UNIX_EPOCH).is_none());
    }

    #[test]
    fn a_collision_evicts_and_memory_is_bounded() {
        // One slot per shard: sixteen slots in all, whatever is inserted.
        let cache = OpenedCache::new(1).unwrap();
        let values: Vec<String> = (0..200).map(|i| format!("value-{i:04}-xyz")).collect();
        for v in &values {
            cache.insert(
                v.as_bytes(),
                envelope(v.as_bytes()),
                with_end(claims()),
                false,
            );
        }
        let hits = values
            .iter()
            .filter(|v| cache.get(v.as_bytes(), UNIX_EPOCH).is_some())
            .count();
        assert!((1..=SHARDS).contains(&hits), "{hits} hits");
        let kept: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().unwrap().iter().flatten().count())
            .sum();
        assert_eq!(kept, hits);
    }

    #[test]
    fn a_slot_reused_for_longer_and_shorter_values_holds_exactly_the_new_one() {
        // Sixteen slots, so values keep replacing each other, in buffers of other lengths.
        let cache = OpenedCache::new(1).unwrap();
        for i in 0..300 {
            let value = format!("{}-{i:04}", "v".repeat((i * 37) % 300 + 1));
            cache.insert(value.as_bytes(), envelope(b"x"), with_end(claims()), false);
            assert!(cache.get(value.as_bytes(), UNIX_EPOCH).is_some(), "{i}");
            // What the buffer held before, or might still hold past the new value, never counts.
            let longer = format!("{value}v");
            assert!(cache.get(longer.as_bytes(), UNIX_EPOCH).is_none(), "{i}");
            assert!(
                cache.get(&value.as_bytes()[1..], UNIX_EPOCH).is_none(),
                "{i}"
            );
        }
        for shard in cache.shards.iter() {
            for entry in shard.lock().unwrap().iter().flatten() {
                assert!(entry.value.capacity() <= MAX_VALUE_LEN);
            }
        }
    }

    #[test]
    fn long_and_empty_values_are_not_kept_and_zero_turns_it_off() {
        assert!(OpenedCache::new(0).is_none());
        let cache = OpenedCache::new(64).unwrap();
        let long = "A".repeat(MAX_VALUE_LEN + 1);
        cache.insert(long.as_bytes(), envelope(b"x"), with_end(claims()), false);
        cache.insert(b"", envelope(b"x"), with_end(claims()), false);
        assert!(cache.get(long.as_bytes(), UNIX_EPOCH).is_none());
        assert!(cache.get("".as_bytes(), UNIX_EPOCH).is_none());
        let fits = "A".repeat(MAX_VALUE_LEN);
        cache.insert(fits.as_bytes(), envelope(b"x"), with_end(claims()), false);
        assert!(cache.get(fits.as_bytes(), UNIX_EPOCH).is_some());
    }

    #[test]
    fn constant_time_eq_agrees_with_eq() {
        let a: Vec<u8> = (0..100).collect();
        for len in [0, 1, 7, 8, 9, 64, 100] {
            assert!(constant_time_eq(&a[..len], &a[..len]));
            for i in 0..len {
                let mut b = a[..len].to_vec();
                b[i] ^= 0x80;
                assert!(!constant_time_eq(&a[..len], &b), "{len} {i}");
            }
        }
        assert!(!constant_time_eq(&a[..3], &a[..4]));
    }
}
