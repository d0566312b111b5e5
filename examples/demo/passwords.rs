//! Password checks: Argon2id, off the async runtime, a bounded number at a time.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

use crate::gate::{Gate, Permit, Priority};

/// The demo accounts. Only Argon2id hashes are kept (made with argon2's defaults).
const ACCOUNTS: [(&str, &str); 2] = [
    ("alice", "$argon2id$v=19$m=19456,t=2,p=1$oLvEojZ9v6JT/4qrtN/Yug$tqVz50YwE5uVlFFawC5/qGm57jSsa2WN7/QJzNeesbs"),
    ("bob", "$argon2id$v=19$m=19456,t=2,p=1$qj143PMHh8DaOMGsIjyjcQ$opymVQUrWsY0tCi+a2ciOeTv/lJA+6CXgoB4UGN9Oko"),
];
/// Checked for unknown usernames, so that they take as long as wrong passwords.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$f8+mbB3EOuHVVkywM5ldPA$kzaGHGfkBDJ9OIJro4ZArmg+kNnTIwCOrrQyoBml6hw";

/// Each Argon2 hash fills 19 MiB (`m=19456`) and keeps a core busy: unbounded, 24 parallel
/// failed sign-ins took 450 MiB. Two at once keep the demo small; more would not finish sooner
/// on a small machine anyway.
const HASHES_AT_ONCE: usize = 2;
/// Sign-ins that may wait for a hashing slot, of each priority; more are answered 503 at once.
/// A burst queues (the load test signs in 32 browsers at once), a flood is turned away without
/// holding its connections. A waiter waits as long as it takes, rather than until a deadline:
/// how long a check takes depends on the machine, and whether a sign-in succeeds should not.
const MAX_WAITING: usize = 64;

/// Argon2 working memory, one per slot in use, kept for the next check. Bounding the number of
/// hashes alone did not bound the memory: glibc kept the freed 19 MiB blocks and took new ones
/// (24 parallel sign-ins, two at a time, still left 430 MiB resident).
type Pool = Arc<Mutex<Vec<Vec<Block>>>>;

/// The hashing slots the sign-ins share.
pub struct Hashing {
    slots: Gate,
    pool: Pool,
}

/// The right to run one password check, and the memory to run it in.
pub struct Slot {
    memory: Vec<Block>,
    pool: Pool,
    // Declared last, so dropped after `drop` below: the memory is back in the pool before the
    // next check can start.
    _permit: Permit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        lock(&self.pool).push(memory);
    }
}

impl Hashing {
    pub fn new() -> Hashing {
        Hashing {
            slots: Gate::new(HASHES_AT_ONCE, MAX_WAITING),
            pool: Pool::default(),
        }
    }

    /// A slot for one password check, once one is free and the sign-ins before it have had
    /// theirs (by priority, then by arrival). `None` if too many wait.
    pub async fn slot(&self, priority: Priority) -> Option<Slot> {
        let permit = self.slots.enter(priority).await?;
        Some(Slot {
            // Empty until the first check in it: the demo starts small.
            memory: lock(&self.pool).pop().unwrap_or_default(),
            pool: self.pool.clone(),
            _permit: permit,
        })
    }
}

/// The pool is a list of buffers; a panic elsewhere cannot leave it half-changed.
fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks the password off the async runtime. The slot moves into the blocking task, so that a
/// client hanging up cannot free it while its hash still runs; it comes back (unless the task
/// panicked) for the caller to release.
pub async fn check(mut slot: Slot, username: String, password: String) -> (bool, Option<Slot>) {
    tokio::task::spawn_blocking(move || {
        let matches = password_ok(&username, &password, &mut slot.memory);
        (matches, Some(slot))
    })
    .await
    .unwrap_or((false, None))
}

/// Checks the password against the account's Argon2id hash. Unknown users are checked against a
/// dummy hash so that both failures take the same time.
fn password_ok(username: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let (known, phc) = match ACCOUNTS.iter().find(|(name, _)| *name == username) {
        Some((_, phc)) => (true, *phc),
        None => (false, DUMMY_HASH),
    };
    let matches = verify(phc, password.as_bytes(), memory).unwrap_or(false);
    known && matches
}

/// What argon2's `PasswordVerifier::verify_password` does, but in `memory` rather than in 19 MiB
/// allocated afresh. `None` if the stored hash cannot be used.
fn verify(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    let expected = hash.hash?;
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&hash).ok()?;
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..])
        .ok()?;
    Some(bool::from(out.ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_in_reused_memory_agree_with_the_stored_hashes() {
        // One buffer throughout, so that every check after the first runs in memory a previous
        // check has filled.
        let mut memory = Vec::new();
        for (user, password, right) in [
            ("alice", "wrong", false),
            ("alice", "correct-horse", true),
            ("bob", "correct-horse", false),
            ("bob", "battery-staple", true),
            ("mallory", "correct-horse", false),
        ] {
            let got = password_ok(user, password, &mut memory);
            assert_eq!(got, right, "{user}/{password}");
        }
    }
}
