//! Passwords: the accounts' Argon2id hashes (in memory), and the checks and new hashes, off the
//! async runtime, a bounded number at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

use crate::gate::{Gate, Permit, Priority};

/// The demo accounts as they start. Only Argon2id hashes are kept (made with argon2's defaults).
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

/// Shortest new password accepted, in characters: ASVS 5.0 6.2.1 asks for at least 8 (and
/// recommends 15; a passphrase meets either).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest new password accepted, in bytes. ASVS 6.2.9 asks that at least 64 characters be
/// allowed; the bound keeps one form from feeding Argon2 megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Each account's current password hash, in memory: a changed password lasts until the demo
/// stops, and a second demo sharing the registry knows only its own changes.
pub struct Accounts {
    hashes: Mutex<HashMap<String, String>>,
}

impl Accounts {
    pub fn new() -> Accounts {
        let hashes = ACCOUNTS
            .iter()
            .map(|(name, phc)| ((*name).to_owned(), (*phc).to_owned()))
            .collect();
        Accounts {
            hashes: Mutex::new(hashes),
        }
    }

    /// The account's hash as it is now; `None` for an unknown name.
    pub fn hash_of(&self, username: &str) -> Option<String> {
        self.lock().get(username).cloned()
    }

    /// Sets the account's hash to `new` if it is still `old`, the one the current password was
    /// checked against: of two changes at once, the second fails rather than undoing the first
    /// with a password checked against a hash that is gone.
    pub fn replace(&self, username: &str, old: &str, new: String) -> bool {
        match self.lock().get_mut(username) {
            Some(phc) if phc == old => {
                *phc = new;
                true
            }
            _ => false,
        }
    }

    /// The map holds whole strings; a panic elsewhere cannot leave one half-written.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.hashes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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

/// Checks the password against `phc`, the account's hash (`None` for an unknown account), off
/// the async runtime. The slot moves into the blocking task, so that a client hanging up cannot
/// free it while its hash still runs; it comes back (unless the task panicked) for the caller
/// to release.
pub async fn check(mut slot: Slot, phc: Option<String>, password: String) -> (bool, Option<Slot>) {
    tokio::task::spawn_blocking(move || {
        let matches = password_ok(phc.as_deref(), &password, &mut slot.memory);
        (matches, Some(slot))
    })
    .await
    .unwrap_or((false, None))
}

/// A new Argon2id hash of `password` (argon2's default parameters, a fresh random salt), made in
/// the slot's memory off the async runtime; `None` if it could not be made.
pub async fn hash(mut slot: Slot, password: String) -> (Option<String>, Option<Slot>) {
    tokio::task::spawn_blocking(move || {
        let phc = new_hash(password.as_bytes(), &mut slot.memory);
        (phc, Some(slot))
    })
    .await
    .unwrap_or((None, None))
}

/// Checks the password against the account's Argon2id hash. Unknown accounts are checked against
/// a dummy hash so that both failures take the same time.
fn password_ok(phc: Option<&str>, password: &str, memory: &mut Vec<Block>) -> bool {
    let matches = verify(phc.unwrap_or(DUMMY_HASH), password.as_bytes(), memory).unwrap_or(false);
    phc.is_some() && matches
}

/// What argon2's `PasswordHasher::hash_password` does, but in `memory`.
fn new_hash(password: &[u8], memory: &mut Vec<Block>) -> Option<String> {
    let mut raw_salt = [0u8; 16];
    getrandom::fill(&mut raw_salt).ok()?;
    let salt = SaltString::encode_b64(&raw_salt).ok()?;
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password, &raw_salt, &mut out, &mut memory[..])
        .ok()?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).ok()?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(hash.to_string())
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
        let accounts = Accounts::new();
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
            let got = password_ok(accounts.hash_of(user).as_deref(), password, &mut memory);
            assert_eq!(got, right, "{user}/{password}");
        }
    }

    #[test]
    fn a_new_hash_checks_its_password_only_and_is_salted_afresh() {
        let mut memory = Vec::new();
        let first = new_hash(b"new password", &mut memory).unwrap();
        let second = new_hash(b"new password", &mut memory).unwrap();
        assert_ne!(first, second, "a new salt each time");
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        for phc in [&first, &second] {
            assert!(password_ok(Some(phc), "new password", &mut memory));
            assert!(!password_ok(Some(phc), "new passwore", &mut memory));
            // argon2's own verifier agrees: the string is a standard PHC hash.
            use argon2::PasswordVerifier;
            let parsed = PasswordHash::new(phc).unwrap();
            assert!(Argon2::default()
                .verify_password(b"new password", &parsed)
                .is_ok());
        }
    }

    #[test]
    fn a_hash_is_replaced_only_if_it_is_still_the_one_checked() {
        let accounts = Accounts::new();
        let old = accounts.hash_of("alice").unwrap();
        assert!(accounts.replace("alice", &old, "first".into()));
        assert!(!accounts.replace("alice", &old, "second".into()));
        assert_eq!(accounts.hash_of("alice").unwrap(), "first");
        assert!(!accounts.replace("mallory", "", "x".into()));
        assert_eq!(accounts.hash_of("mallory"), None);
    }
}
