//! Failed sign-ins, counted per account and per client address: guessing one account's password
//! from many addresses is as slow as spraying many accounts from one address.
//!
//! Time is a parameter rather than read here, so that the tests can move it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// At most this many accounts and addresses are tracked, a few megabytes at worst: the map must
/// not grow with every name or address an attacker makes up.
const MAX_TRACKED: usize = 10_000;
/// Account names are tracked as typed, which may be anything; a longer one is cut short so that
/// no entry is large. Real names are far shorter.
const MAX_NAME_CHARS: usize = 64;

pub struct Limits {
    /// Failures in one window that lock an account.
    pub account: u32,
    /// Failures in one window that lock a client address, whatever the accounts.
    pub address: u32,
    /// How long failures count together, and how long a lock lasts.
    pub window: Duration,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Key {
    Account(String),
    Address(IpAddr),
}

struct Entry {
    failures: u32,
    /// Until when the failures count; once they reach the limit, until when attempts are refused.
    until: Instant,
}

pub struct Throttle {
    limits: Limits,
    capacity: usize,
    entries: HashMap<Key, Entry>,
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
        }
    }

    /// `Err(wait)` while the account or the address is locked; `wait` is the longer lock.
    pub fn check(&self, account: &str, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let wait = [account_key(account), address_key(addr)]
            .iter()
            .filter_map(|key| {
                let entry = self.entries.get(key)?;
                let locked = entry.failures >= self.limit(key) && now < entry.until;
                locked.then(|| entry.until - now)
            })
            .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&mut self, account: &str, addr: IpAddr, now: Instant) {
        for key in [account_key(account), address_key(addr)] {
            self.fail(key, now);
        }
    }

    /// The right password ends the account's count. The address keeps its own: an address that
    /// sprays many accounts should not be let off by knowing one password.
    pub fn record_success(&mut self, account: &str) {
        self.entries.remove(&account_key(account));
    }

    fn fail(&mut self, key: Key, now: Instant) {
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        let limit = self.limit(&key);
        let window = self.limits.window;
        let entry = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            until: now + window,
        });
        if now >= entry.until {
            *entry = Entry {
                failures: 0,
                until: now + window,
            };
        }
        entry.failures += 1;
        if entry.failures >= limit {
            // A full window from the failure that reached the limit, not the rest of the first
            // failure's window: that could be a moment.
            entry.until = now + window;
        }
    }

    /// Drops expired entries once the map is full; if all are live, forgets the unlocked one
    /// closest to expiring, so that flooding the map with new names or addresses does not lift
    /// the locks already in place before it has to push out other locks.
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
            Key::Account(_) => self.limits.account,
            Key::Address(_) => self.limits.address,
        }
    }
}

fn account_key(name: &str) -> Key {
    Key::Account(name.chars().take(MAX_NAME_CHARS).collect())
}

/// One IPv6 client usually holds a whole /64, so the /64 is what is counted. IPv4 clients of a
/// dual-stack socket arrive as `::ffff:a.b.c.d` and are counted as the IPv4 address they are.
fn address_key(addr: IpAddr) -> Key {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            Key::Address(IpAddr::V6(Ipv6Addr::from(prefix)))
        }
        v4 => Key::Address(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);
    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const CAFE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    fn throttle() -> Throttle {
        Throttle::new(Limits {
            account: 3,
            address: 5,
            window: WINDOW,
        })
    }

    fn fail_times(t: &mut Throttle, n: u32, account: &str, addr: IpAddr, now: Instant) {
        for _ in 0..n {
            t.record_failure(account, addr, now);
        }
    }

    #[test]
    fn the_account_limit_locks_the_account_from_every_address_for_a_window() {
        let mut t = throttle();
        let start = Instant::now();
        fail_times(&mut t, 2, "alice", HOME, start);
        assert_eq!(t.check("alice", HOME, start), Ok(()));
        let third = start + Duration::from_secs(60);
        t.record_failure("alice", HOME, third);
        assert_eq!(t.check("alice", HOME, third), Err(WINDOW));
        assert_eq!(t.check("alice", CAFE, third), Err(WINDOW));
        assert_eq!(t.check("bob", HOME, third), Ok(()));
        let later = third + WINDOW / 3;
        assert_eq!(t.check("alice", CAFE, later), Err(WINDOW - WINDOW / 3));
        assert_eq!(t.check("alice", CAFE, third + WINDOW), Ok(()));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut t = throttle();
        let start = Instant::now();
        fail_times(&mut t, 2, "alice", HOME, start);
        let next_window = start + WINDOW;
        fail_times(&mut t, 2, "alice", HOME, next_window);
        assert_eq!(t.check("alice", HOME, next_window), Ok(()));
    }

    #[test]
    fn the_address_limit_locks_the_address_for_every_account() {
        let mut t = throttle();
        let now = Instant::now();
        for name in ["alice", "bob", "carol", "dave", "erin"] {
            t.record_failure(name, HOME, now);
        }
        assert_eq!(t.check("frank", HOME, now), Err(WINDOW));
        assert_eq!(t.check("frank", CAFE, now), Ok(()));
    }

    #[test]
    fn a_success_clears_the_account_but_not_the_address() {
        let mut t = throttle();
        let now = Instant::now();
        fail_times(&mut t, 3, "alice", HOME, now);
        t.record_success("alice");
        assert_eq!(t.check("alice", CAFE, now), Ok(()));
        fail_times(&mut t, 2, "bob", HOME, now);
        assert_eq!(t.check("alice", HOME, now), Err(WINDOW), "5 from HOME");
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_ipv4_client_its_ipv4_address() {
        let mut t = throttle();
        let now = Instant::now();
        for i in 0..5u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            t.record_failure(&format!("user{i}"), addr, now);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let next_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 0));
        assert!(t.check("someone", same_64, now).is_err());
        assert_eq!(t.check("someone", next_64, now), Ok(()));

        let IpAddr::V4(cafe) = CAFE else {
            unreachable!()
        };
        fail_times(&mut t, 5, "x", IpAddr::V6(cafe.to_ipv6_mapped()), now);
        assert!(t.check("y", CAFE, now).is_err());
        assert_eq!(t.check("y", HOME, now), Ok(()), "not all of ::ffff:0:0/64");
    }

    #[test]
    fn long_names_share_an_entry_of_bounded_size() {
        let mut t = throttle();
        let now = Instant::now();
        let base = "a".repeat(MAX_NAME_CHARS);
        for tail in ["x", "y", "z"] {
            t.record_failure(&format!("{base}{tail}"), HOME, now);
        }
        assert!(t.check(&format!("{base}w"), CAFE, now).is_err());
        assert!(t
            .entries
            .keys()
            .all(|k| !matches!(k, Key::Account(n) if n.len() > MAX_NAME_CHARS)));
    }

    #[test]
    fn the_map_stays_bounded_and_keeps_locks_over_unlocked_entries() {
        let limits = Limits {
            account: 3,
            address: 1000,
            window: WINDOW,
        };
        let mut t = Throttle::with_capacity(limits, 10);
        let start = Instant::now();
        fail_times(&mut t, 3, "alice", HOME, start);
        for i in 0..50 {
            let now = start + Duration::from_secs(i);
            t.record_failure(&format!("made-up-{i}"), HOME, now);
            assert!(t.entries.len() <= 10);
        }
        let now = start + Duration::from_secs(50);
        assert!(t.check("alice", CAFE, now).is_err(), "the lock survives");

        // Once the window has passed, the expired entries go first.
        let later = start + 3 * WINDOW;
        t.record_failure("new", CAFE, later);
        assert_eq!(t.entries.len(), 2, "only new and CAFE are live");
    }
}
