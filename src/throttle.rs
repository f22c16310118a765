//! Failed-authentication throttling per client address.
//!
//! Only refused credentials count. A lookup first *reserves* one failure in the address's
//! allowance (check and record are one atomic step of the cache entry), and a key that turns
//! out to be valid gives the reservation back: so N concurrent wrong keys from one address
//! cost at most the allowance in lookups, whatever their timing. Once an address is over its
//! allowance every attempt from it is refused before its credentials are looked at, except
//! keys that authenticated recently: a client behind the same NAT or proxy cannot lock an
//! administrator out. General-purpose limiters (governor, tower_governor) count every request
//! and cannot refund, which is why this small GCRA lives here; its storage is moka, bounded in
//! entries and expiring idle addresses.
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache;

/// Addresses tracked at once; beyond it the least useful entries are evicted.
const MAX_ADDRESSES: u64 = 100_000;
/// Keys remembered as recently valid, and for how long.
const MAX_TRUSTED_KEYS: u64 = 10_000;
const TRUSTED_KEY_TTL: Duration = Duration::from_secs(15 * 60);

pub struct FailedAuthThrottle {
    /// Time one failure occupies; `per_minute` failures fill the window.
    interval: Duration,
    window: Duration,
    /// Per address: the theoretical time at which its recorded failures have drained.
    drained_at: Cache<IpAddr, Instant>,
    /// SHA-256 hashes (hex) of keys that authenticated recently.
    trusted_keys: Cache<String, ()>,
}

/// The throttle's key for an address: IPv4 as is, IPv6 by its /64 (one subscriber's prefix:
/// an attacker gets 2^64 addresses from one prefix, not 2^64 allowances).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl FailedAuthThrottle {
    /// Allows `per_minute` failed authentications per address and minute (burst included).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let window = Duration::from_secs(60);
        (per_minute > 0).then(|| FailedAuthThrottle {
            interval: window / per_minute,
            window,
            // An address idle for a whole window has drained: forgetting it changes nothing.
            drained_at: Cache::builder()
                .max_capacity(MAX_ADDRESSES)
                .time_to_idle(window)
                .build(),
            trusted_keys: Cache::builder()
                .max_capacity(MAX_TRUSTED_KEYS)
                .time_to_live(TRUSTED_KEY_TTL)
                .build(),
        })
    }

    /// Reserves one failure for the address before its credentials are looked up; `Err(wait)`
    /// while the address may not try again.
    pub fn reserve(&self, client: IpAddr) -> Result<(), Duration> {
        self.reserve_at(address_key(client), Instant::now())
    }

    fn reserve_at(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        // Room for one more failure while the backlog is at most window − interval.
        let room = self.window - self.interval;
        let mut refused = None;
        self.drained_at.entry(key).and_compute_with(|entry| {
            let drained = entry.map_or(now, |e| e.into_value()).max(now);
            let backlog = drained - now;
            if backlog > room {
                refused = Some(backlog - room);
                Op::Nop
            } else {
                Op::Put(drained + self.interval)
            }
        });
        refused.map_or(Ok(()), Err)
    }

    /// Gives back a reservation whose credentials were not refused (valid, or the lookup
    /// failed for another reason).
    pub fn refund(&self, client: IpAddr) {
        let interval = self.interval;
        self.drained_at
            .entry(address_key(client))
            .and_compute_with(|entry| match entry {
                Some(e) => Op::Put(
                    e.into_value()
                        .checked_sub(interval)
                        .unwrap_or(Instant::now()),
                ),
                None => Op::Nop,
            });
    }

    /// Remembers a key hash that authenticated, so its holder is served even from an address
    /// that others' failures have put over its allowance.
    pub fn trust(&self, key_hash: &str) {
        self.trusted_keys.insert(key_hash.to_owned(), ());
    }

    pub fn is_trusted(&self, key_hash: &str) -> bool {
        self.trusted_keys.contains_key(key_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_allowance_and_frees_one_interval_later() {
        let t = FailedAuthThrottle::per_minute(3).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.reserve_at(ip, now), Ok(()));
        }
        let wait = t.reserve_at(ip, now).expect_err("blocked after 3 failures");
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(t.reserve_at(other, now), Ok(()), "per address");
        assert!(t.reserve_at(ip, now + Duration::from_secs(19)).is_err());
        assert_eq!(t.reserve_at(ip, now + Duration::from_secs(20)), Ok(()));
    }

    #[test]
    fn a_refund_returns_the_reservation() {
        let t = FailedAuthThrottle::per_minute(2).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..10 {
            t.reserve(ip).unwrap();
            t.refund(ip);
        }
        t.reserve(ip).unwrap();
        t.reserve(ip).unwrap();
        assert!(t.reserve(ip).is_err());
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_allowance() {
        let t = std::sync::Arc::new(FailedAuthThrottle::per_minute(20).unwrap());
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        let granted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        if t.reserve(ip).is_ok() {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 20);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_keys_are_remembered() {
        let t = FailedAuthThrottle::per_minute(1).unwrap();
        assert!(!t.is_trusted("ab"));
        t.trust("ab");
        assert!(t.is_trusted("ab"));
    }

    #[test]
    fn zero_disables() {
        assert!(FailedAuthThrottle::per_minute(0).is_none());
    }
}
