//! Failed-authentication throttling per client address.
//!
//! Only refused credentials count, and once an address is over its allowance every attempt
//! from it is refused before its credentials are looked at, so a guess that happens to be
//! right teaches nothing either. General-purpose limiters (governor, tower_governor) count
//! every request and cannot look without spending, which is why this small GCRA lives here.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many tracked addresses, expired entries are swept on the next failure.
const SWEEP_AT: usize = 4096;

pub struct FailedAuthThrottle {
    /// Time one failure occupies; `per_minute` failures fill the window.
    interval: Duration,
    window: Duration,
    /// Per address: the theoretical time at which its recorded failures have drained.
    drained_at: Mutex<HashMap<IpAddr, Instant>>,
}

impl FailedAuthThrottle {
    /// Allows `per_minute` failed authentications per address and minute (burst included).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| FailedAuthThrottle {
            interval: Duration::from_secs(60) / per_minute,
            window: Duration::from_secs(60),
            drained_at: Mutex::new(HashMap::new()),
        })
    }

    /// `Some(wait)` while the address may not try again.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        self.blocked_at(client, Instant::now())
    }

    fn blocked_at(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.drained_at.lock().expect("throttle lock");
        let drained = *map.get(&client)?;
        let backlog = drained.checked_duration_since(now)?;
        // Room for one more failure while the backlog is at most window − interval.
        let room = self.window - self.interval;
        (backlog > room).then(|| backlog - room)
    }

    /// Records a refused credential from the address.
    pub fn failed(&self, client: IpAddr) {
        self.failed_at(client, Instant::now());
    }

    fn failed_at(&self, client: IpAddr, now: Instant) {
        let mut map = self.drained_at.lock().expect("throttle lock");
        if map.len() >= SWEEP_AT {
            map.retain(|_, drained| *drained > now);
        }
        let drained = map.entry(client).or_insert(now);
        *drained = (*drained).max(now) + self.interval;
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
            assert_eq!(t.blocked_at(ip, now), None);
            t.failed_at(ip, now);
        }
        let wait = t.blocked_at(ip, now).expect("blocked after 3 failures");
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(t.blocked_at(other, now), None, "per address");
        assert!(t.blocked_at(ip, now + Duration::from_secs(19)).is_some());
        assert_eq!(t.blocked_at(ip, now + Duration::from_secs(20)), None);
    }

    #[test]
    fn zero_disables() {
        assert!(FailedAuthThrottle::per_minute(0).is_none());
    }
}
