//! Token buckets for transfer rate limits (per session, and per user shared by the user's
//! sessions in one worker).
//!
//! Pure arithmetic over `Instant`s the caller passes in: the relay asks how many bytes it
//! may move now, moves at most that many, and reports them; when the bucket is empty it
//! asks how long to wait and sets a timer instead of polling.

use std::time::{Duration, Instant};

/// The smallest burst a bucket allows, so slow rates still move whole segments.
const MIN_BURST: u64 = 8 * 1024;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilling at `rate` bytes per second, holding at most a tenth of a second
    /// of traffic (and at least 8 KiB), starting full.
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        let rate = rate.max(1);
        let burst = (rate / 10).max(MIN_BURST);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// A bucket refilling at `rate` units per second and holding at most `burst` (both at
    /// least 1), starting full.
    pub fn with_burst(rate: u64, burst: u64, now: Instant) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            rate: rate.max(1),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = (elapsed.as_nanos().saturating_mul(u128::from(self.rate)) / 1_000_000_000)
            .min(u128::from(self.burst)) as u64;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(self.burst);
            // Advance by the time the earned tokens represent, keeping the remainder.
            let used = Duration::from_nanos(
                (u128::from(earned) * 1_000_000_000 / u128::from(self.rate)) as u64,
            );
            self.last = if self.tokens == self.burst {
                now
            } else {
                self.last + used
            };
        }
    }

    /// Bytes that may move now.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens
    }

    /// Records `bytes` moved.
    pub fn consume(&mut self, bytes: u64) {
        self.tokens = self.tokens.saturating_sub(bytes);
    }

    /// How long until `want` bytes (at most a full burst) are available.
    pub fn wait_for(&mut self, want: u64, now: Instant) -> Duration {
        self.refill(now);
        let want = want.min(self.burst);
        if self.tokens >= want {
            return Duration::ZERO;
        }
        let missing = want - self.tokens;
        let nanos = (u128::from(missing) * 1_000_000_000).div_ceil(u128::from(self.rate));
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_delivers_its_rate_over_time() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100_000, t0);
        let mut moved = bucket.available(t0);
        bucket.consume(moved);
        // Simulate a sender that takes everything it may, every millisecond, for 5 s.
        for ms in 1..=5000u64 {
            let now = t0 + Duration::from_millis(ms);
            let n = bucket.available(now);
            bucket.consume(n);
            moved += n;
        }
        let expected = 100_000 * 5 + (100_000 / 10); // rate * time + the initial burst
        let err = (moved as f64 - expected as f64).abs() / expected as f64;
        assert!(err < 0.01, "moved {moved}, expected {expected}");
    }

    #[test]
    fn an_empty_bucket_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10_000, t0);
        let burst = bucket.available(t0);
        assert_eq!(burst, MIN_BURST);
        bucket.consume(burst);
        let wait = bucket.wait_for(5_000, t0);
        assert!(
            wait >= Duration::from_millis(499) && wait <= Duration::from_millis(501),
            "{wait:?}"
        );
        assert!(bucket.available(t0 + wait) >= 5_000);
    }

    #[test]
    fn idle_time_does_not_grow_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1_000_000, t0);
        assert_eq!(bucket.available(t0 + Duration::from_secs(60)), 100_000);
    }
}
