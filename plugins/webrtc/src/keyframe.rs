//! Keyframe policy for a shared encoder.
//!
//! Every viewer of one encoder can ask for a keyframe (it joined, it lost
//! packets, it sent PLI or FIR). Granting each request would turn the
//! stream into keyframes when many viewers join at once, so requests are
//! coalesced: the first one after a quiet period is sent at once; those
//! that follow within `min_interval` of the last keyframe are folded into
//! one request sent when the interval has passed; and a keyframe the
//! encoder makes on its own answers every request made before it.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ask the encoder now.
    SendNow,
    /// Call [`KeyframeLimiter::fire`] at this time; a timer is needed.
    SendAt(Instant),
    /// Already covered by a request that is scheduled or in flight.
    Coalesced,
}

#[derive(Debug)]
pub struct KeyframeLimiter {
    min_interval: Duration,
    /// When the last keyframe was asked for or seen.
    last_keyframe: Option<Instant>,
    /// A request is in flight: asked for, its keyframe not yet seen.
    in_flight: bool,
    scheduled: Option<Instant>,
    pub requests: u64,
    pub sent: u64,
}

impl KeyframeLimiter {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeLimiter {
            min_interval,
            last_keyframe: None,
            in_flight: false,
            scheduled: None,
            requests: 0,
            sent: 0,
        }
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    pub fn set_min_interval(&mut self, min_interval: Duration) {
        self.min_interval = min_interval;
    }

    pub fn request(&mut self, now: Instant) -> Decision {
        self.requests += 1;
        // A request whose keyframe never showed up must not hold back
        // every later one.
        if self.in_flight
            && self
                .last_keyframe
                .is_some_and(|last| now >= last + self.min_interval * 3)
        {
            self.in_flight = false;
        }
        if self.in_flight || self.scheduled.is_some() {
            return Decision::Coalesced;
        }
        match self.last_keyframe {
            Some(last) if now < last + self.min_interval => {
                let at = last + self.min_interval;
                self.scheduled = Some(at);
                Decision::SendAt(at)
            }
            _ => {
                self.mark_sent(now);
                Decision::SendNow
            }
        }
    }

    /// The timer of a [`Decision::SendAt`] expired: whether to send now.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.scheduled {
            Some(at) if now >= at => {
                self.scheduled = None;
                self.mark_sent(now);
                true
            }
            _ => false,
        }
    }

    /// A keyframe went through the shared output.
    pub fn keyframe_seen(&mut self, now: Instant) {
        self.in_flight = false;
        self.scheduled = None;
        self.last_keyframe = Some(now);
    }

    fn mark_sent(&mut self, now: Instant) {
        self.sent += 1;
        self.in_flight = true;
        self.last_keyframe = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(300);

    #[test]
    fn first_request_is_sent_at_once() {
        let mut limiter = KeyframeLimiter::new(INTERVAL);
        assert_eq!(limiter.request(Instant::now()), Decision::SendNow);
    }

    #[test]
    fn hundred_joins_at_once_make_at_most_two_keyframes() {
        let t0 = Instant::now();
        let mut limiter = KeyframeLimiter::new(INTERVAL);
        let mut decisions = Vec::new();
        for i in 0..100 {
            decisions.push(limiter.request(t0 + Duration::from_millis(i)));
        }
        assert_eq!(decisions[0], Decision::SendNow);
        assert!(decisions[1..].iter().all(|d| *d == Decision::Coalesced));
        // The keyframe arrives; later joiners within the interval are folded
        // into one scheduled request.
        limiter.keyframe_seen(t0 + Duration::from_millis(40));
        let later: Vec<_> = (0..50)
            .map(|i| limiter.request(t0 + Duration::from_millis(100 + i)))
            .collect();
        assert_eq!(later[0], Decision::SendAt(t0 + Duration::from_millis(340)));
        assert!(later[1..].iter().all(|d| *d == Decision::Coalesced));
        assert!(!limiter.fire(t0 + Duration::from_millis(339)));
        assert!(limiter.fire(t0 + Duration::from_millis(340)));
        assert_eq!(limiter.sent, 2);
        assert_eq!(limiter.requests, 150);
    }

    #[test]
    fn a_natural_keyframe_answers_scheduled_requests() {
        let t0 = Instant::now();
        let mut limiter = KeyframeLimiter::new(INTERVAL);
        limiter.request(t0);
        limiter.keyframe_seen(t0 + Duration::from_millis(10));
        assert!(matches!(
            limiter.request(t0 + Duration::from_millis(20)),
            Decision::SendAt(_)
        ));
        limiter.keyframe_seen(t0 + Duration::from_millis(30));
        assert!(!limiter.fire(t0 + Duration::from_millis(400)));
        assert_eq!(limiter.sent, 1);
    }

    #[test]
    fn requests_after_a_quiet_period_are_immediate() {
        let t0 = Instant::now();
        let mut limiter = KeyframeLimiter::new(INTERVAL);
        limiter.request(t0);
        limiter.keyframe_seen(t0);
        assert_eq!(
            limiter.request(t0 + Duration::from_secs(1)),
            Decision::SendNow
        );
    }

    #[test]
    fn a_lost_keyframe_does_not_block_forever() {
        // The request was sent but its keyframe was never seen (e.g. the
        // encoder ignored it): a later request is coalesced, which would
        // starve viewers unless the in-flight flag expires.
        let t0 = Instant::now();
        let mut limiter = KeyframeLimiter::new(INTERVAL);
        limiter.request(t0);
        assert_eq!(
            limiter.request(t0 + Duration::from_millis(100)),
            Decision::Coalesced
        );
        assert_eq!(limiter.request(t0 + INTERVAL * 4), Decision::SendNow);
    }
}
