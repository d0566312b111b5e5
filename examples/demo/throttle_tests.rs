use std::net::Ipv4Addr;

use super::*;

const WINDOW: Duration = Duration::from_secs(900);
const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const CAFE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const FAR: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

fn limits() -> Limits {
    Limits {
        pair: 3,
        address: 5,
        account: 6,
        window: WINDOW,
    }
}

fn throttle() -> Throttle {
    Throttle::new(limits())
}

fn fail_times(t: &mut Throttle, n: u32, account: &str, addr: IpAddr, now: Instant) {
    for _ in 0..n {
        t.record_failure(account, addr, now);
    }
}

/// The `n`th address of 10.0.0.0/8.
fn nth(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

#[test]
fn failures_pause_that_address_for_that_account_only() {
    let mut t = throttle();
    let start = Instant::now();
    fail_times(&mut t, 2, "alice", CAFE, start);
    assert_eq!(t.check("alice", CAFE, start), Ok(Standing::Unknown));
    let third = start + Duration::from_secs(60);
    t.record_failure("alice", CAFE, third);
    assert_eq!(t.check("alice", CAFE, third), Err(WINDOW));
    assert_eq!(t.check("alice", HOME, third), Ok(Standing::Unknown));
    assert_eq!(t.check("bob", CAFE, third), Ok(Standing::Unknown));
    let later = third + WINDOW / 3;
    assert_eq!(t.check("alice", CAFE, later), Err(WINDOW - WINDOW / 3));
    assert_eq!(
        t.check("alice", CAFE, third + WINDOW),
        Ok(Standing::Unknown)
    );
}

#[test]
fn failures_elsewhere_never_pause_a_known_address() {
    let mut t = throttle();
    let start = Instant::now();
    t.record_success("alice", HOME, start);
    // Every count that can pause alice from elsewhere, well past its limit: her own address's
    // count at CAFE, CAFE's count over accounts, and alice's count over addresses.
    fail_times(&mut t, 10, "alice", CAFE, start);
    for n in 0..20 {
        t.record_failure("alice", nth(n), start);
    }
    assert!(t.check("alice", CAFE, start).is_err());
    assert!(t.check("alice", FAR, start).is_err(), "new addresses wait");
    assert_eq!(t.check("alice", HOME, start), Ok(Standing::Known));
}

#[test]
fn an_address_that_sprays_accounts_is_paused_except_where_it_is_known() {
    let mut t = throttle();
    let now = Instant::now();
    t.record_success("carol", CAFE, now);
    for name in ["alice", "bob", "dave", "erin", "frank"] {
        t.record_failure(name, CAFE, now);
    }
    assert_eq!(t.check("grace", CAFE, now), Err(WINDOW));
    assert_eq!(t.check("grace", HOME, now), Ok(Standing::Unknown));
    // carol shares the address (a café's NAT) and signed in from it before.
    assert_eq!(t.check("carol", CAFE, now), Ok(Standing::Known));
}

#[test]
fn guessing_one_account_from_many_addresses_pauses_only_new_addresses() {
    let mut t = throttle();
    let start = Instant::now();
    t.record_success("alice", HOME, start);
    for n in 0..5 {
        t.record_failure("alice", nth(n), start);
    }
    assert_eq!(t.check("alice", FAR, start), Ok(Standing::Unknown), "5 < 6");
    t.record_failure("alice", nth(5), start);
    assert_eq!(t.check("alice", FAR, start), Err(WINDOW));
    assert_eq!(t.check("alice", HOME, start), Ok(Standing::Known));
    assert_eq!(t.check("alice", FAR, start + WINDOW), Ok(Standing::Unknown));
}

#[test]
fn a_known_address_past_its_limit_is_slowed_not_locked() {
    let mut t = throttle();
    let start = Instant::now();
    t.record_success("alice", HOME, start);
    // Someone behind the same address guesses: three failures reach the limit.
    fail_times(&mut t, 3, "alice", HOME, start);
    let step = WINDOW / 3;
    assert_eq!(t.check("alice", HOME, start), Err(step));
    assert_eq!(t.check("alice", HOME, start + step), Ok(Standing::Known));
    // Each further failure buys another wait of one step, never the whole window: the guesser
    // gets three tries a window, the owner waits at most one step.
    t.record_failure("alice", HOME, start + step);
    assert_eq!(t.check("alice", HOME, start + step), Err(step));
    assert_eq!(
        t.check("alice", HOME, start + 2 * step),
        Ok(Standing::Known)
    );
    // The right password ends the count.
    t.record_success("alice", HOME, start + 2 * step);
    t.record_failure("alice", HOME, start + 2 * step);
    assert_eq!(
        t.check("alice", HOME, start + 2 * step),
        Ok(Standing::Known)
    );
}

#[test]
fn an_address_stays_known_for_a_while_and_each_account_keeps_a_few() {
    let mut t = throttle();
    let start = Instant::now();
    t.record_success("alice", HOME, start);
    assert_eq!(t.check("alice", HOME, start), Ok(Standing::Known));
    assert_eq!(
        t.check("bob", HOME, start),
        Ok(Standing::Unknown),
        "per account"
    );
    assert_eq!(
        t.check("alice", HOME, start + KNOWN_FOR),
        Ok(Standing::Unknown)
    );

    for n in 0..KNOWN_PER_ACCOUNT as u32 + 3 {
        t.record_success("bob", nth(n), start + Duration::from_secs(n.into()));
    }
    let list = &t.known["bob"];
    assert_eq!(list.len(), KNOWN_PER_ACCOUNT);
    assert_eq!(
        t.check("bob", nth(0), start),
        Ok(Standing::Unknown),
        "oldest gone"
    );
    let newest = nth(KNOWN_PER_ACCOUNT as u32 + 2);
    assert_eq!(t.check("bob", newest, start), Ok(Standing::Known));
}

#[test]
fn a_failed_password_makes_no_address_known() {
    let mut t = throttle();
    let now = Instant::now();
    t.record_failure("alice", HOME, now);
    assert_eq!(t.check("alice", HOME, now), Ok(Standing::Unknown));
    assert!(t.known.is_empty());
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
    assert_eq!(t.check("someone", next_64, now), Ok(Standing::Unknown));

    let IpAddr::V4(cafe) = CAFE else {
        unreachable!()
    };
    t.record_success("x", IpAddr::V6(cafe.to_ipv6_mapped()), now);
    assert_eq!(t.check("x", CAFE, now), Ok(Standing::Known));
    fail_times(&mut t, 5, "y", IpAddr::V6(cafe.to_ipv6_mapped()), now);
    assert!(t.check("z", CAFE, now).is_err());
    assert_eq!(
        t.check("z", HOME, now),
        Ok(Standing::Unknown),
        "not all of ::ffff:0:0/64"
    );
}

#[test]
fn long_names_share_an_entry_of_bounded_size() {
    let mut t = throttle();
    let now = Instant::now();
    let base = "a".repeat(MAX_NAME_CHARS);
    for tail in ["x", "y", "z"] {
        t.record_failure(&format!("{base}{tail}"), CAFE, now);
    }
    assert!(t.check(&format!("{base}w"), CAFE, now).is_err());
    t.record_success(&format!("{base}v"), HOME, now);
    let long = |name: &String| name.len() > MAX_NAME_CHARS;
    assert!(t.entries.keys().all(|k| match k {
        Key::Pair(name, _) | Key::Account(name) => !long(name),
        Key::Address(_) => true,
    }));
    assert!(!t.known.keys().any(long));
}

#[test]
fn the_map_stays_bounded_and_keeps_pauses_over_counts_below_their_limit() {
    let limits = Limits {
        pair: 3,
        address: 1000,
        account: 1000,
        window: WINDOW,
    };
    let mut t = Throttle::with_capacity(limits, 10);
    let start = Instant::now();
    fail_times(&mut t, 3, "alice", CAFE, start);
    for i in 0..50 {
        let now = start + Duration::from_secs(i);
        t.record_failure(&format!("made-up-{i}"), HOME, now);
        assert!(t.entries.len() <= 10);
    }
    let now = start + Duration::from_secs(50);
    assert!(t.check("alice", CAFE, now).is_err(), "the pause survives");

    // Once the window has passed, the expired entries go first.
    let later = start + 3 * WINDOW;
    t.record_failure("new", FAR, later);
    assert_eq!(
        t.entries.len(),
        3,
        "only new's, FAR's and their pair's are live"
    );
}

#[test]
fn known_accounts_stay_bounded_and_the_least_recent_goes() {
    let mut t = throttle();
    let start = Instant::now();
    for n in 0..MAX_ACCOUNTS_KNOWN as u64 + 1 {
        t.record_success(&format!("user{n}"), HOME, start + Duration::from_secs(n));
    }
    assert_eq!(t.known.len(), MAX_ACCOUNTS_KNOWN);
    assert!(!t.known.contains_key("user0"));
    assert!(t.known.contains_key("user1"));
}
