//! When a session heals its media path by restarting ICE, and when it
//! gives up. Pure (times are passed in), so that the rules are unit-tested;
//! the glue that feeds it and acts on it is in `session.rs`.
//!
//! - **Triggers** (once the session has been connected): the ICE
//!   connection state `disconnected` for [`Config::disconnected_grace`]
//!   (2 s), or `failed`, or nothing received from the peer for the
//!   *silence limit*: 2.5 × the longest gap seen between arrivals while
//!   healthy (slowly forgotten), at least [`Config::min_silence`] (3 s) and
//!   at most [`Config::max_silence`] (15 s). A receiver gets media every
//!   few milliseconds; a sender hears only RTCP, which GStreamer receivers
//!   send every 1–5 s, hence the limit that follows what the peer does
//!   (until three gaps have been seen, at least 8 s: a peer that reports
//!   every 5 s, randomized by ±50% as RFC 3550 asks, is not taken for
//!   dead).
//!   GStreamer 1.22's libnice runs no consent checks, so for a path that
//!   drops packets the silence is usually the first sign.
//! - **Attempts.** The side that made the offer restarts: an attempt
//!   succeeds when something arrives from the peer after it started
//!   (and ICE is not `failed`), even during the backoff that follows it;
//!   otherwise it times out after twice what the session's first
//!   connection took, within [`Config::min_attempt_timeout`] (1.5 s) and
//!   [`Config::max_attempt_timeout`] (5 s), and the next comes after a
//!   backoff of 250 ms doubling to 2 s. Attempts are short because
//!   libnice retransmits a check at doubling intervals (200 ms, 400 ms,
//!   … 1.6 s, 3.2 s): a path that comes back late in a long attempt
//!   waits for the next, not for the checks (measured: a 3 s attempt
//!   never healed a path that returned in its second half). After
//!   [`Config::give_up_after`] (30 s) of attempts the session is given up.
//! - **Protocols** ([`Triggers`]): all of the above on our protocol; only
//!   the ICE state with WHIP/WHEP (a server may refuse the PATCH); never
//!   with PeerJS, which has no renegotiation.
//! - **The answering side** does not restart by itself; a restart offer
//!   from the peer opens a window ([`Config::answer_window`], 10 s, renewed
//!   by each offer) in which ICE `failed` is expected and ignored (checks
//!   with the new credentials fail while the path is still down).

use std::time::{Duration, Instant};

/// What may start a restart, by signalling protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Triggers {
    /// ICE state and silence: our protocol, where the peer (an element or
    /// a page) answers a re-offer in the same session.
    #[default]
    All,
    /// ICE `failed` or `disconnected` only: a WHIP/WHEP server may refuse
    /// the restart PATCH (an error for the element), so a mere silence
    /// does not risk it.
    IceState,
    /// Never: PeerJS has no renegotiation.
    Never,
}

impl Triggers {
    /// For an element's `uri` (an invalid one fails elsewhere first).
    pub fn for_uri(uri: Option<&str>) -> Triggers {
        Self::for_protocol(crate::signaller::protocol_name(uri).unwrap_or("native"))
    }

    pub fn for_protocol(protocol: &str) -> Triggers {
        match protocol {
            "native" => Triggers::All,
            "whip" | "whep" => Triggers::IceState,
            _ => Triggers::Never,
        }
    }
}

/// Gaps between arrivals to see before the silence limit follows them.
const GAPS_TO_LEARN: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub disconnected_grace: Duration,
    pub min_silence: Duration,
    /// The least silence limit while the peer's rhythm is being learnt.
    pub learning_silence: Duration,
    pub max_silence: Duration,
    pub min_attempt_timeout: Duration,
    pub max_attempt_timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub give_up_after: Duration,
    pub answer_window: Duration,
    pub triggers: Triggers,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disconnected_grace: Duration::from_secs(2),
            min_silence: Duration::from_secs(3),
            learning_silence: Duration::from_secs(8),
            max_silence: Duration::from_secs(15),
            min_attempt_timeout: Duration::from_millis(1500),
            max_attempt_timeout: Duration::from_secs(5),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            give_up_after: Duration::from_secs(30),
            answer_window: Duration::from_secs(10),
            triggers: Triggers::All,
        }
    }
}

/// The ICE connection state, as far as healing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceHealth {
    Checking,
    Connected,
    Disconnected,
    Failed,
}

/// Why a restart was started.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Disconnected,
    Failed,
    Silent(Duration),
    /// The peer sent an offer with new ICE credentials.
    Remote,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Disconnected => write!(f, "ICE disconnected"),
            Trigger::Failed => write!(f, "ICE failed"),
            Trigger::Silent(for_) => write!(
                f,
                "nothing received from the peer for {:.1} s",
                for_.as_secs_f64()
            ),
            Trigger::Remote => write!(f, "the peer restarts ICE"),
        }
    }
}

/// What the glue must do or announce.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Restart ICE now (make a new offer with new credentials).
    Restart { attempt: u32, trigger: Trigger },
    /// The path works again, `after` the first attempt.
    Healed { attempts: u32, after: Duration },
    /// No attempt worked (or, answering, no restart came): end the session.
    GiveUp { attempts: u32, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Not connected yet: failures are the negotiation's, not ours to heal.
    NotConnected,
    Healthy,
    /// An attempt under way since `at`.
    Attempting {
        attempt: u32,
        first: Instant,
        at: Instant,
    },
    /// Waiting out the backoff after an attempt (started `at`) timed out.
    Backoff {
        attempt: u32,
        first: Instant,
        at: Instant,
        until: Instant,
    },
    /// Answering: the peer restarted ICE at `first`, last offer at `at`.
    Answering {
        first: Instant,
        at: Instant,
    },
    GaveUp,
}

#[derive(Debug)]
pub struct RestartPolicy {
    config: Config,
    /// We made the offer: restarts are ours to make.
    offerer: bool,
    phase: Phase,
    created: Instant,
    /// How long the session took to connect the first time: the measure
    /// of how long an attempt may take on this path.
    first_connection: Option<Duration>,
    ice: IceHealth,
    ice_since: Instant,
    /// The latest arrival from the peer seen, and the one before.
    last_arrival: Option<Instant>,
    /// The longest gap between arrivals seen while healthy, decaying.
    usual_gap: Duration,
    /// Gaps measured so far: until a few are, the peer's rhythm is
    /// unknown and the silence limit is the longest.
    gaps_seen: u32,
}

impl RestartPolicy {
    pub fn new(now: Instant, offerer: bool, config: Config) -> Self {
        RestartPolicy {
            config,
            offerer,
            phase: Phase::NotConnected,
            created: now,
            first_connection: None,
            ice: IceHealth::Checking,
            ice_since: now,
            last_arrival: None,
            usual_gap: Duration::ZERO,
            gaps_seen: 0,
        }
    }

    pub fn set_offerer(&mut self, offerer: bool) {
        self.offerer = offerer;
    }

    /// How long the peer may be silent before its path is held broken.
    pub fn silence_limit(&self) -> Duration {
        if self.gaps_seen < GAPS_TO_LEARN {
            return self
                .usual_gap
                .mul_f64(2.5)
                .clamp(self.config.learning_silence, self.config.max_silence);
        }
        self.usual_gap
            .mul_f64(2.5)
            .clamp(self.config.min_silence, self.config.max_silence)
    }

    /// How long an attempt may take before the next: twice the first
    /// connection (negotiation, gathering and checks over this path).
    pub fn attempt_timeout(&self) -> Duration {
        self.first_connection
            .map_or(self.config.max_attempt_timeout, |took| took * 2)
            .clamp(
                self.config.min_attempt_timeout,
                self.config.max_attempt_timeout,
            )
    }

    pub fn on_ice(&mut self, now: Instant, health: IceHealth) {
        if health != self.ice {
            self.ice = health;
            self.ice_since = now;
        }
        if health == IceHealth::Connected && self.phase == Phase::NotConnected {
            self.phase = Phase::Healthy;
            self.first_connection = Some(now.saturating_duration_since(self.created));
        }
    }

    /// The latest time something arrived from the peer (the glue samples
    /// it every tick; the same value again means nothing new came).
    pub fn on_arrival(&mut self, latest: Instant) {
        if self.last_arrival.is_some_and(|last| latest <= last) {
            return;
        }
        if let Some(last) = self.last_arrival
            && self.phase == Phase::Healthy
        {
            let gap = latest - last;
            // Long gaps are remembered at once, then forgotten slowly
            // (5% a sample), so one quiet stretch does not set the limit
            // for ever.
            self.usual_gap = gap.max(self.usual_gap.mul_f64(0.95));
            self.gaps_seen = self.gaps_seen.saturating_add(1);
        }
        self.last_arrival = Some(latest);
    }

    /// The peer sent an offer with new ICE credentials.
    pub fn on_remote_restart(&mut self, now: Instant) -> Option<Action> {
        match self.phase {
            Phase::Answering { first, .. } => {
                self.phase = Phase::Answering { first, at: now };
                None
            }
            Phase::GaveUp => None,
            _ => {
                self.phase = Phase::Answering {
                    first: now,
                    at: now,
                };
                Some(Action::Restart {
                    attempt: 1,
                    trigger: Trigger::Remote,
                })
            }
        }
    }

    /// Whether the connection failing now is expected (a restart is under
    /// way or due) rather than the end of the session.
    pub fn tolerates_failure(&self) -> bool {
        match self.phase {
            Phase::Attempting { .. } | Phase::Backoff { .. } | Phase::Answering { .. } => true,
            // ICE itself still connected: DTLS failed, which no restart heals.
            Phase::Healthy => {
                self.offerer
                    && self.config.triggers != Triggers::Never
                    && self.ice != IceHealth::Connected
            }
            Phase::NotConnected | Phase::GaveUp => false,
        }
    }

    fn arrived_since(&self, at: Instant) -> bool {
        self.last_arrival.is_some_and(|last| last > at)
    }

    fn silent_for(&self, now: Instant) -> Duration {
        self.last_arrival
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
    }

    pub fn tick(&mut self, now: Instant) -> Option<Action> {
        let config = self.config;
        match self.phase.clone() {
            Phase::NotConnected | Phase::GaveUp => None,
            Phase::Healthy => {
                if !self.offerer || config.triggers == Triggers::Never {
                    return None;
                }
                let trigger = match self.ice {
                    IceHealth::Failed => Some(Trigger::Failed),
                    IceHealth::Disconnected
                        if now - self.ice_since >= config.disconnected_grace =>
                    {
                        Some(Trigger::Disconnected)
                    }
                    _ if config.triggers == Triggers::All
                        && self.last_arrival.is_some()
                        && self.silent_for(now) >= self.silence_limit() =>
                    {
                        Some(Trigger::Silent(self.silent_for(now)))
                    }
                    _ => None,
                }?;
                self.phase = Phase::Attempting {
                    attempt: 1,
                    first: now,
                    at: now,
                };
                Some(Action::Restart {
                    attempt: 1,
                    trigger,
                })
            }
            Phase::Attempting { attempt, first, at } => {
                if self.arrived_since(at) && self.ice != IceHealth::Failed {
                    self.phase = Phase::Healthy;
                    return Some(Action::Healed {
                        attempts: attempt,
                        after: now - first,
                    });
                }
                if now - at < self.attempt_timeout() {
                    return None;
                }
                if now - first >= config.give_up_after {
                    self.phase = Phase::GaveUp;
                    return Some(Action::GiveUp {
                        attempts: attempt,
                        reason: format!(
                            "the connection broke ({}) and {attempt} ICE restarts over {:.0} s did \
                             not bring it back",
                            self.ice_summary(now),
                            (now - first).as_secs_f64()
                        ),
                    });
                }
                let backoff = config
                    .first_backoff
                    .saturating_mul(1 << (attempt - 1).min(16))
                    .min(config.max_backoff);
                self.phase = Phase::Backoff {
                    attempt,
                    first,
                    at,
                    until: now + backoff,
                };
                None
            }
            Phase::Backoff {
                attempt,
                first,
                at,
                until,
            } => {
                // The timed-out attempt's checks went on and found the
                // path (libnice retransmits them for longer than our
                // timeout): a new attempt would only disturb media that
                // flows again.
                if self.arrived_since(at) && self.ice != IceHealth::Failed {
                    self.phase = Phase::Healthy;
                    return Some(Action::Healed {
                        attempts: attempt,
                        after: now - first,
                    });
                }
                if now < until {
                    return None;
                }
                let attempt = attempt + 1;
                self.phase = Phase::Attempting {
                    attempt,
                    first,
                    at: now,
                };
                let trigger = match self.ice {
                    IceHealth::Failed => Trigger::Failed,
                    IceHealth::Disconnected => Trigger::Disconnected,
                    _ => Trigger::Silent(self.silent_for(now)),
                };
                Some(Action::Restart { attempt, trigger })
            }
            Phase::Answering { first, at } => {
                if self.arrived_since(at) && self.ice != IceHealth::Failed {
                    self.phase = Phase::Healthy;
                    return Some(Action::Healed {
                        attempts: 1,
                        after: now - first,
                    });
                }
                if now - at < config.answer_window {
                    return None;
                }
                if self.ice == IceHealth::Failed {
                    self.phase = Phase::GaveUp;
                    return Some(Action::GiveUp {
                        attempts: 1,
                        reason: format!(
                            "the peer restarted ICE and the connection did not come back within {} s",
                            config.answer_window.as_secs()
                        ),
                    });
                }
                // Not failed, merely quiet: the offerer keeps trying, or
                // the session ends by other means (signalling, watchdogs).
                self.phase = Phase::Healthy;
                None
            }
        }
    }

    fn ice_summary(&self, now: Instant) -> String {
        match self.ice {
            IceHealth::Failed => "ICE failed".into(),
            IceHealth::Disconnected => "ICE disconnected".into(),
            _ => format!(
                "nothing received from the peer for {:.0} s",
                self.silent_for(now).as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn connected(offerer: bool) -> (RestartPolicy, Instant) {
        let start = Instant::now();
        let mut policy = RestartPolicy::new(start, offerer, Config::default());
        policy.on_ice(start, IceHealth::Connected);
        (policy, start)
    }

    /// Arrivals every `every` from `from` to `to`, ticking every 250 ms.
    fn run(
        policy: &mut RestartPolicy,
        from: Instant,
        to: Instant,
        every: Option<Duration>,
    ) -> Vec<(Duration, Action)> {
        let mut actions = Vec::new();
        let mut now = from;
        let mut next_arrival = from;
        while now <= to {
            if let Some(every) = every {
                while next_arrival <= now {
                    policy.on_arrival(next_arrival);
                    next_arrival += every;
                }
            }
            if let Some(action) = policy.tick(now) {
                actions.push((now - from, action));
            }
            now += 250 * MS;
        }
        actions
    }

    #[test]
    fn an_unknown_rhythm_gets_a_longer_limit() {
        let (mut policy, start) = connected(true);
        policy.on_arrival(start);
        policy.on_arrival(start + 1000 * MS);
        assert_eq!(policy.silence_limit(), 8000 * MS);
        // A report 7 s late while learning is no outage.
        policy.on_arrival(start + 8000 * MS);
        assert!(policy.tick(start + 8000 * MS).is_none());
        assert_eq!(policy.silence_limit(), 15000 * MS);
    }

    #[test]
    fn steady_media_never_restarts() {
        let (mut policy, start) = connected(true);
        let actions = run(&mut policy, start, start + 60 * 1000 * MS, Some(33 * MS));
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn a_peer_reporting_every_five_seconds_is_not_taken_for_dead() {
        let (mut policy, start) = connected(true);
        let actions = run(&mut policy, start, start + 60 * 1000 * MS, Some(5000 * MS));
        assert!(actions.is_empty(), "{actions:?}");
        assert!(policy.silence_limit() >= 12 * 1000 * MS);
    }

    #[test]
    fn silence_restarts_after_the_limit_then_heals_when_media_returns() {
        let (mut policy, start) = connected(true);
        let outage = start + 10 * 1000 * MS;
        assert!(run(&mut policy, start, outage, Some(1000 * MS)).is_empty());
        // Reports every second: the limit is the 3 s floor.
        assert_eq!(policy.silence_limit(), 3000 * MS);
        let actions = run(&mut policy, outage, outage + 5 * 1000 * MS, None);
        let (at, first) = &actions[0];
        assert!(
            matches!(
                first,
                Action::Restart {
                    attempt: 1,
                    trigger: Trigger::Silent(_)
                }
            ),
            "{first:?}"
        );
        // The last arrival was at 10 s, so 3 s after it.
        assert!(*at >= 2750 * MS && *at <= 3250 * MS, "{at:?}");
        // The path returns at 15 s: healed at the next tick.
        let back = outage + 5 * 1000 * MS;
        let actions = run(&mut policy, back, back + 2000 * MS, Some(1000 * MS));
        assert!(
            matches!(actions.first(), Some((_, Action::Healed { .. }))),
            "{actions:?}"
        );
        assert!(actions[0].0 <= 250 * MS);
    }

    #[test]
    fn attempts_back_off_then_give_up_with_a_reason() {
        let (mut policy, start) = connected(true);
        policy.on_arrival(start);
        policy.on_ice(start + 100 * MS, IceHealth::Failed);
        let actions = run(&mut policy, start, start + 60 * 1000 * MS, None);
        let restarts: Vec<Duration> = actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Restart { .. }))
            .map(|(at, _)| *at)
            .collect();
        assert!(
            matches!(
                actions[0].1,
                Action::Restart {
                    attempt: 1,
                    trigger: Trigger::Failed
                }
            ),
            "failed restarts at once: {actions:?}"
        );
        // 1.5 s per attempt (a connection that took no time), then 250 ms,
        // 500 ms, 1 s, 2 s, 2 s, ...
        let gaps: Vec<u128> = restarts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert_eq!(gaps[..5], [1750, 2000, 2500, 3500, 3500], "{gaps:?}");
        let Some((at, Action::GiveUp { attempts, reason })) = actions.last() else {
            panic!("no give-up: {actions:?}");
        };
        assert_eq!(*attempts as usize, restarts.len());
        assert!(
            reason.contains("ICE failed")
                && reason.contains(&format!("{attempts} ICE restarts over 3")),
            "{reason}"
        );
        let first = restarts[0];
        assert!(
            *at >= first + 30 * 1000 * MS && *at <= first + 33 * 1000 * MS,
            "gave up after {at:?}"
        );
        // Nothing more once given up.
        assert!(policy.tick(start + 120 * 1000 * MS).is_none());
        assert!(!policy.tolerates_failure());
    }

    #[test]
    fn an_attempt_may_take_twice_what_the_first_connection_took() {
        let start = Instant::now();
        for (took, timeout) in [
            (0, 1500),
            (600, 1500),
            (1200, 2400),
            (2000, 4000),
            (9000, 5000),
        ] {
            let mut policy = RestartPolicy::new(start, true, Config::default());
            policy.on_ice(start + took * MS, IceHealth::Connected);
            assert_eq!(
                policy.attempt_timeout(),
                timeout * MS,
                "connected after {took} ms"
            );
        }
    }

    #[test]
    fn a_timed_out_attempt_that_finds_the_path_during_the_backoff_heals() {
        let (mut policy, start) = connected(true);
        policy.on_arrival(start);
        policy.on_ice(start + 100 * MS, IceHealth::Disconnected);
        // Restart at 2.25 s (the grace, at a tick), timed out 1.5 s
        // later, back off 250 ms.
        let actions = run(&mut policy, start, start + 3800 * MS, None);
        assert!(
            matches!(actions[..], [(_, Action::Restart { attempt: 1, .. })]),
            "{actions:?}"
        );
        // The first attempt's checks get through during the backoff.
        policy.on_ice(start + 3850 * MS, IceHealth::Connected);
        policy.on_arrival(start + 3850 * MS);
        assert!(
            matches!(
                policy.tick(start + 3900 * MS),
                Some(Action::Healed { attempts: 1, .. })
            ),
            "healed, no second attempt"
        );
        assert!(policy.tick(start + 6000 * MS).is_none());
    }

    #[test]
    fn disconnected_waits_for_its_grace() {
        let (mut policy, start) = connected(true);
        policy.on_ice(start, IceHealth::Disconnected);
        assert!(policy.tick(start + 1900 * MS).is_none());
        // Connected again within the grace: nothing.
        policy.on_ice(start + 1950 * MS, IceHealth::Connected);
        assert!(policy.tick(start + 2500 * MS).is_none());
        policy.on_ice(start + 3000 * MS, IceHealth::Disconnected);
        assert_eq!(
            policy.tick(start + 5000 * MS),
            Some(Action::Restart {
                attempt: 1,
                trigger: Trigger::Disconnected
            })
        );
    }

    #[test]
    fn protocols_without_renegotiation_restart_less_or_never() {
        let start = Instant::now();
        for (protocol, restarts_on_silence, restarts_on_failure) in [
            ("native", true, true),
            ("whip", false, true),
            ("whep", false, true),
            ("peerjs", false, false),
        ] {
            let config = Config {
                triggers: Triggers::for_protocol(protocol),
                ..Config::default()
            };
            let mut silent = RestartPolicy::new(start, true, config);
            silent.on_ice(start, IceHealth::Connected);
            silent.on_arrival(start);
            let later = start + 20 * 1000 * MS;
            assert_eq!(
                silent.tick(later).is_some(),
                restarts_on_silence,
                "{protocol}"
            );
            let mut failed = RestartPolicy::new(start, true, config);
            failed.on_ice(start, IceHealth::Connected);
            failed.on_ice(start, IceHealth::Failed);
            assert_eq!(
                failed.tolerates_failure(),
                restarts_on_failure,
                "{protocol}"
            );
            assert_eq!(
                failed.tick(later).is_some(),
                restarts_on_failure,
                "{protocol}"
            );
        }
    }

    #[test]
    fn a_dtls_failure_with_ice_connected_is_not_healed() {
        let (policy, _) = connected(true);
        assert!(!policy.tolerates_failure());
    }

    #[test]
    fn nothing_before_the_first_connection() {
        let start = Instant::now();
        let mut policy = RestartPolicy::new(start, true, Config::default());
        policy.on_ice(start, IceHealth::Failed);
        assert!(policy.tick(start + 5000 * MS).is_none());
        assert!(
            !policy.tolerates_failure(),
            "a failed negotiation ends the session"
        );
    }

    #[test]
    fn the_answerer_never_restarts_but_waits_for_the_peers_restart() {
        let (mut policy, start) = connected(false);
        policy.on_arrival(start);
        let actions = run(&mut policy, start, start + 20 * 1000 * MS, None);
        assert!(actions.is_empty(), "{actions:?}");
        assert!(!policy.tolerates_failure());

        let offer = start + 20 * 1000 * MS;
        assert_eq!(
            policy.on_remote_restart(offer),
            Some(Action::Restart {
                attempt: 1,
                trigger: Trigger::Remote
            })
        );
        policy.on_ice(offer + 2000 * MS, IceHealth::Failed);
        assert!(policy.tolerates_failure());
        // A second offer renews the window without a second announcement.
        assert_eq!(policy.on_remote_restart(offer + 6000 * MS), None);
        policy.on_ice(offer + 7000 * MS, IceHealth::Connected);
        policy.on_arrival(offer + 7100 * MS);
        assert_eq!(
            policy.tick(offer + 7250 * MS),
            Some(Action::Healed {
                attempts: 1,
                after: 7250 * MS
            })
        );
    }

    #[test]
    fn the_answerer_gives_up_when_failed_outlasts_the_window() {
        let (mut policy, start) = connected(false);
        policy.on_remote_restart(start);
        policy.on_ice(start + 1000 * MS, IceHealth::Failed);
        assert!(policy.tick(start + 9000 * MS).is_none());
        let Some(Action::GiveUp { reason, .. }) = policy.tick(start + 10_000 * MS) else {
            panic!("no give-up");
        };
        assert!(reason.contains("10 s"), "{reason}");
    }
}
