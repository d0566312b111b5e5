//! Failed sign-ins, counted so that guessing is slow and no one can lock an account's owner out.
//!
//! Three counts, each over a window:
//! - one account from one address: past its limit, that address waits before it may try that
//!   account again;
//! - one address, whatever the accounts: past its limit, the address waits (spraying many
//!   accounts from one place);
//! - one account, from every address together: past its limit, the account waits for addresses
//!   it has never signed in from (guessing one password from many places).
//!
//! An address the account signed in from before ("known": a few per account, remembered for a
//! while) is spared the last two, and its own count only slows it down: past the limit it may
//! try once every `window / limit` instead of waiting the whole window. So failures made
//! elsewhere never keep the owner out where they usually sign in, and a guesser who shares that
//! address (the same NAT) still gets no more than `limit` tries a window.
//!
//! Time is a parameter rather than read here, so that the tests can move it.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// At most this many counts are kept, a few megabytes at worst: the map must not grow with every
/// name or address an attacker makes up.
const MAX_TRACKED: usize = 10_000;
/// At most this many accounts have known addresses. Only a right password adds one, so only
/// real accounts are here.
const MAX_ACCOUNTS_KNOWN: usize = 10_000;
/// Known addresses kept per account, the most recent: home, work, a phone's network.
const KNOWN_PER_ACCOUNT: usize = 8;
/// How long after its last successful sign-in an address stays known: as long as the demo's
/// remembered sessions last.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Account names are tracked as typed, which may be anything; a longer one is cut short so that
/// no entry is large. Real names are far shorter.
const MAX_NAME_CHARS: usize = 64;

pub struct Limits {
    /// Failures for one account from one address.
    pub pair: u32,
    /// Failures from one address, whatever the accounts.
    pub address: u32,
    /// Failures for one account from every address together; they pause unknown addresses only.
    pub account: u32,
    /// How long failures count together, and how long a pause lasts.
    pub window: Duration,
}

/// Whether the account signed in from this address before: known sign-ins go first for a
/// hashing slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Standing {
    Known,
    Unknown,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Key {
    Pair(String, IpAddr),
    Address(IpAddr),
    Account(String),
}

struct Entry {
    failures: u32,
    /// Until when the failures count; once they reach the limit, until when attempts wait.
    until: Instant,
    /// The latest failure: a known address waits `window / limit` from it.
    last: Instant,
}

pub struct Throttle {
    limits: Limits,
    capacity: usize,
    entries: HashMap<Key, Entry>,
    /// Per account, its known addresses with their latest successful sign-in, oldest first.
    known: HashMap<String, VecDeque<(IpAddr, Instant)>>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Self::with_capacity(limits, MAX_TRACKED)
    }

    fn with_capacity(limits: Limits, capacity: usize) -> Throttle {
        Throttle {
            limits,
            capacity,
            entries: HashMap::new(),
            known: HashMap::new(),
        }
    }

    /// Whether `account` may try a password from `addr` now: `Err(wait)` if not, else whether
    /// the address is known to the account.
    pub fn check(&self, account: &str, addr: IpAddr, now: Instant) -> Result<Standing, Duration> {
        let (name, addr) = (account_name(account), address_key(addr));
        let pair = Key::Pair(name.clone(), addr);
        if self.is_known(&name, addr, now) {
            return match self.entries.get(&pair) {
                Some(e) if e.failures >= self.limits.pair => {
                    let next = e.last + self.limits.window / self.limits.pair;
                    if now < next {
                        Err(next - now)
                    } else {
                        Ok(Standing::Known)
                    }
                }
                _ => Ok(Standing::Known),
            };
        }
        let wait = [pair, Key::Address(addr), Key::Account(name)]
            .iter()
            .filter_map(|key| {
                let entry = self.entries.get(key)?;
                let paused = entry.failures >= self.limit(key) && now < entry.until;
                paused.then(|| entry.until - now)
            })
            .max();
        wait.map_or(Ok(Standing::Unknown), Err)
    }

    pub fn record_failure(&mut self, account: &str, addr: IpAddr, now: Instant) {
        let (name, addr) = (account_name(account), address_key(addr));
        for key in [
            Key::Pair(name.clone(), addr),
            Key::Address(addr),
            Key::Account(name),
        ] {
            self.fail(key, now);
        }
    }

    /// The right password ends the count of this account from this address, and makes the
    /// address known to the account. The address and the account keep their own counts: an
    /// address that sprays many accounts should not be let off by knowing one password, nor
    /// should guessers elsewhere get a fresh start when the owner signs in.
    pub fn record_success(&mut self, account: &str, addr: IpAddr, now: Instant) {
        let (name, addr) = (account_name(account), address_key(addr));
        self.entries.remove(&Key::Pair(name.clone(), addr));
        if !self.known.contains_key(&name) && self.known.len() >= MAX_ACCOUNTS_KNOWN {
            self.forget_an_account(now);
        }
        let list = self.known.entry(name).or_default();
        list.retain(|(a, at)| *a != addr && now.saturating_duration_since(*at) < KNOWN_FOR);
        if list.len() >= KNOWN_PER_ACCOUNT {
            list.pop_front();
        }
        list.push_back((addr, now));
    }

    fn is_known(&self, name: &str, addr: IpAddr, now: Instant) -> bool {
        self.known.get(name).is_some_and(|list| {
            list.iter()
                .any(|(a, at)| *a == addr && now.saturating_duration_since(*at) < KNOWN_FOR)
        })
    }

    /// Makes room for one more account: the one whose latest sign-in is oldest goes.
    fn forget_an_account(&mut self, now: Instant) {
        self.known.retain(|_, list| {
            list.back()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) < KNOWN_FOR)
        });
        if self.known.len() < MAX_ACCOUNTS_KNOWN {
            return;
        }
        let oldest = self
            .known
            .iter()
            .min_by_key(|(_, list)| list.back().map(|(_, at)| *at))
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.known.remove(&name);
        }
    }

    fn fail(&mut self, key: Key, now: Instant) {
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        let limit = self.limit(&key);
        let window = self.limits.window;
        let fresh = Entry {
            failures: 0,
            until: now + window,
            last: now,
        };
        let entry = self.entries.entry(key).or_insert(fresh);
        if now >= entry.until {
            *entry = Entry {
                failures: 0,
                until: now + window,
                last: now,
            };
        }
        entry.failures += 1;
        entry.last = now;
        if entry.failures >= limit {
            // A full window from the failure that reached the limit, not the rest of the first
            // failure's window: that could be a moment.
            entry.until = now + window;
        }
    }

    /// Drops expired entries once the map is full; if all are live, forgets the one below its
    /// limit closest to expiring, so that flooding the map with new names or addresses does not
    /// lift the pauses already in place before it has to push out other pauses.
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.entries.retain(|_, entry| now < entry.until);
        if self.entries.len() < self.capacity {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(key, entry)| (entry.failures >= self.limit(key), entry.until))
            .map(|(key, _)| key.clone());
        if let Some(key) = victim {
            self.entries.remove(&key);
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Pair(..) => self.limits.pair,
            Key::Address(_) => self.limits.address,
            Key::Account(_) => self.limits.account,
        }
    }
}

fn account_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// One IPv6 client usually holds a whole /64, so the /64 is what is counted. IPv4 clients of a
/// dual-stack socket arrive as `::ffff:a.b.c.d` and are counted as the IPv4 address they are.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;
