//! Measurements: HDR latency histograms, shared counters, and CPU and RSS
//! read from `/proc` (so the figures are the kernel's, not ours).

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The run's time origin; message texts carry microseconds since it, so
/// the receiving task computes latency without any shared lookup.
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

pub fn now_us() -> u64 {
    origin().elapsed().as_micros() as u64
}

/// A latency histogram in microseconds (1 µs to 10 min, 3 digits).
pub struct Hist(Mutex<Histogram<u64>>);

impl Hist {
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts.
        let h = Histogram::new_with_bounds(1, 600_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits are valid"));
        Self(Mutex::new(h))
    }

    pub fn record_us(&self, us: u64) {
        if let Ok(mut h) = self.0.lock() {
            // saturating: an outlier beyond the range is clamped, not lost
            h.saturating_record(us.max(1));
        }
    }

    pub fn record(&self, d: Duration) {
        self.record_us(d.as_micros() as u64);
    }

    /// `n=… p50=…ms p99=…ms p99.9=…ms max=…ms`
    pub fn summary(&self) -> String {
        let Ok(h) = self.0.lock() else {
            return "n=? (poisoned)".into();
        };
        if h.is_empty() {
            return "n=0".into();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "n={} p50={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        )
    }

    pub fn count(&self) -> u64 {
        self.0.lock().map(|h| h.len()).unwrap_or(0)
    }
}

/// Everything the tasks count. Plain relaxed atomics: they are read only
/// between steps and at the end.
#[derive(Default)]
pub struct Counters {
    /// Distinct customer messages generated (each has one client_msg_id).
    pub cust_sent: AtomicU64,
    /// Distinct customer messages acknowledged.
    pub cust_acked: AtomicU64,
    /// Acks for an id already acknowledged (a resend raced its first ack).
    pub dup_acks: AtomicU64,
    /// First acks marked `duplicate`: a resend of a message the server had
    /// stored although its ack was lost with the old socket.
    pub stored_before_resend: AtomicU64,
    /// Sends skipped because the customer had too many unacknowledged.
    pub skipped: AtomicU64,
    pub agent_sent: AtomicU64,
    pub agent_acked: AtomicU64,
    /// Customer messages delivered to an agent (live, after accept).
    pub to_agent: AtomicU64,
    /// Agent messages delivered to the customer.
    pub to_customer: AtomicU64,
    /// Events whose seq skipped ahead (a gap) or went back (a duplicate).
    pub seq_gaps: AtomicU64,
    pub seq_dups: AtomicU64,
    pub errors: AtomicU64,
    pub offers: AtomicU64,
    pub accepts: AtomicU64,
    pub rejects: AtomicU64,
    /// `accept`s sent again after a retryable `unavailable`.
    pub accept_retries: AtomicU64,
    pub ended: AtomicU64,
    pub pings: AtomicU64,
    pub pongs: AtomicU64,
    pub resumes: AtomicU64,
    /// Customers that got their first `queue_position` (the router has
    /// processed their chat and their connection).
    pub positioned: AtomicU64,
    /// Sockets that closed or failed when the scenario did not close them.
    pub unexpected_closes: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// utime + stime of a process in clock ticks (USER_HZ, 100 on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Microseconds per clock tick (USER_HZ is 100 on every Linux ABI we run on).
pub const US_PER_TICK: u64 = 10_000;

/// Resident set size in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `uptime`'s load averages, to note with every figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
