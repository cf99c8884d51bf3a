//! Abuse limits kept in memory: frame rates per IP address (the
//! per-connection bucket lives in the socket loop) and failed logins per
//! account and address. Every number comes from `[limits]` in the config.
//! Maps are bounded: when one grows past `MAX_TRACKED` entries the idle
//! ones are dropped, so a spray of addresses cannot grow memory.

use crate::config::LimitSettings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses (or account+address pairs) tracked at once.
const MAX_TRACKED: usize = 50_000;

/// A token bucket: `burst` tokens, refilled at `per_sec`.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, burst: u32, per_sec: u32, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * f64::from(per_sec);
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Failures {
    count: u32,
    first: Instant,
}

/// Shared limit state of one server.
pub struct AbuseLimits {
    pub settings: LimitSettings,
    ip_frames: Mutex<HashMap<IpAddr, Bucket>>,
    logins: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl AbuseLimits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            ip_frames: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
        }
    }

    /// Whether one more frame from `ip` is within the address's allowance.
    pub fn ip_frame_allowed(&self, ip: IpAddr) -> bool {
        let (burst, rate) = (
            self.settings.ip_frames_burst,
            self.settings.ip_frames_per_sec,
        );
        let now = Instant::now();
        let mut buckets = self.ip_frames.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            // A full bucket is the same as no bucket: forget those.
            let idle = Duration::from_secs_f64(f64::from(burst) / f64::from(rate.max(1)));
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < idle);
        }
        buckets
            .entry(ip)
            .or_insert_with(|| Bucket::full(burst, now))
            .allow(burst, rate, now)
    }

    /// `Some(wait)` while `username` from `ip` is locked out after too many
    /// failed logins.
    pub fn login_locked(&self, username: &str, ip: IpAddr) -> Option<Duration> {
        let window = self.settings.login_window();
        let now = Instant::now();
        let logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        let entry = logins.get(&(username.to_owned(), ip))?;
        let elapsed = now.saturating_duration_since(entry.first);
        (entry.count >= self.settings.login_failures && elapsed < window).then(|| window - elapsed)
    }

    /// Counts a failed login.
    pub fn login_failed(&self, username: &str, ip: IpAddr) {
        let window = self.settings.login_window();
        let now = Instant::now();
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        if logins.len() >= MAX_TRACKED {
            logins.retain(|_, f| now.saturating_duration_since(f.first) < window);
        }
        let entry = logins.entry((username.to_owned(), ip)).or_insert(Failures {
            count: 0,
            first: now,
        });
        if now.saturating_duration_since(entry.first) >= window {
            *entry = Failures {
                count: 0,
                first: now,
            };
        }
        entry.count += 1;
    }

    /// A successful login clears the account's failures from that address.
    pub fn login_succeeded(&self, username: &str, ip: IpAddr) {
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        logins.remove(&(username.to_owned(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(3, start);
        assert!((0..3).all(|_| bucket.allow(3, 2, start)));
        assert!(!bucket.allow(3, 2, start));
        assert!(bucket.allow(3, 2, start + Duration::from_millis(500)));
        assert!(!bucket.allow(3, 2, start + Duration::from_millis(500)));
        // Never more than the burst, however long it rested.
        let later = start + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| bucket.allow(3, 2, later)).count(), 3);
    }

    #[test]
    fn logins_lock_per_account_and_address() {
        let limits = AbuseLimits::new(LimitSettings {
            login_failures: 2,
            ..LimitSettings::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        limits.login_failed("alice", a);
        assert!(limits.login_locked("alice", a).is_none());
        limits.login_failed("alice", a);
        assert!(limits.login_locked("alice", a).is_some());
        assert!(limits.login_locked("alice", b).is_none(), "other address");
        assert!(limits.login_locked("bob", a).is_none(), "other account");
        limits.login_succeeded("alice", a);
        assert!(limits.login_locked("alice", a).is_none());
    }

    #[test]
    fn ip_buckets_are_per_address() {
        let limits = AbuseLimits::new(LimitSettings {
            ip_frames_burst: 2,
            ip_frames_per_sec: 1,
            ..LimitSettings::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limits.ip_frame_allowed(a) && limits.ip_frame_allowed(a));
        assert!(!limits.ip_frame_allowed(a));
        assert!(limits.ip_frame_allowed("10.0.0.2".parse().unwrap()));
    }
}
