//! How often one IP address may ask for something that makes the server
//! hold state for it (a WHIP or WHEP POST: a peer in the core, a pending
//! answer, an element's pipeline on the other side). Connection caps do
//! not bound this: one keep-alive connection can POST again and again.
//! A token bucket per address, pure (time comes in), with a bounded table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A sustained rate and a burst, per address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained; zero or less: no limit.
    pub per_second: f64,
    /// Requests at once, after a quiet spell.
    pub burst: f64,
}

impl Default for RateLimit {
    /// Enough for a person reloading a player or a publisher retrying
    /// with backoff; a script flooding POSTs gets 429 after 20.
    fn default() -> Self {
        RateLimit {
            per_second: 5.0,
            burst: 20.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The buckets of the addresses seen lately.
#[derive(Debug)]
pub struct RequestRate {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    /// More addresses than this and full buckets (addresses quiet long
    /// enough to have their whole burst back) are forgotten: they would
    /// be recreated full anyway.
    max_tracked: usize,
}

impl RequestRate {
    pub fn new(limit: RateLimit) -> Self {
        RequestRate {
            limit,
            buckets: HashMap::new(),
            max_tracked: 10_000,
        }
    }

    /// Takes a token for `ip`, or says how long until one is there.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        if per_second <= 0.0 {
            return Ok(());
        }
        if self.buckets.len() >= self.max_tracked && !self.buckets.contains_key(&ip) {
            self.forget_full(now);
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    fn forget_full(&mut self, now: Instant) {
        let RateLimit { per_second, burst } = self.limit;
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
            b.tokens + elapsed * per_second < burst
        });
        // Every address busy (many addresses, each flooding): the table
        // still may not grow without bound. Starting them afresh lets a
        // burst through, once.
        if self.buckets.len() >= self.max_tracked {
            self.buckets.clear();
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000 + n))
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut rate = RequestRate::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            rate.admit(ip(1), t0).unwrap();
        }
        let wait = rate.admit(ip(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another address is not held back by the first.
        rate.admit(ip(2), t0).unwrap();
        // Half a second later, one more; not two.
        let t1 = t0 + Duration::from_millis(500);
        rate.admit(ip(1), t1).unwrap();
        assert!(rate.admit(ip(1), t1).is_err());
        // Quiet long enough: the whole burst is back, no more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            rate.admit(ip(1), t2).unwrap();
        }
        assert!(rate.admit(ip(1), t2).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let mut rate = RequestRate::new(RateLimit {
            per_second: 0.0,
            burst: 0.0,
        });
        let now = Instant::now();
        for _ in 0..1000 {
            rate.admit(ip(1), now).unwrap();
        }
        assert_eq!(rate.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let mut rate = RequestRate::new(RateLimit::default());
        rate.max_tracked = 100;
        let now = Instant::now();
        for n in 0..10_000 {
            let _ = rate.admit(ip(n), now + Duration::from_millis(n as u64));
            assert!(rate.tracked() <= 100);
        }
        // A flooding address keeps its (empty) bucket while quiet ones go.
        let mut rate = RequestRate::new(RateLimit::default());
        rate.max_tracked = 100;
        let t0 = Instant::now();
        while rate.admit(ip(0), t0).is_ok() {}
        for n in 1..100 {
            rate.admit(ip(n), t0 - Duration::from_secs(10)).unwrap();
        }
        rate.admit(ip(500), t0).unwrap();
        assert!(
            rate.admit(ip(0), t0).is_err(),
            "the flooder got its burst back"
        );
    }
}
