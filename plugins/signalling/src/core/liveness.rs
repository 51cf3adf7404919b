//! Connections over time: signs of life and the message rate, heartbeats, the
//! hello deadline, forgetting a connection, and sessions that waited too
//! long for their peer. Part of the pure [`SignallingCore`].

use super::*;

impl SignallingCore {
    pub(super) fn touch(&mut self, conn: ConnId, now: Instant) -> bool {
        match self.connections.get_mut(&conn) {
            Some(connection) => {
                connection.last_seen = now;
                connection.pinged = false;
                true
            }
            None => false,
        }
    }

    /// Takes one message from the connection's allowance (its
    /// [`RateBucket`]); false, with a `rate-limited` error at most once a
    /// second, when there is none left.
    pub(super) fn within_rate(
        &mut self,
        conn: ConnId,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(connection) = self.connections.get_mut(&conn) else {
            return false;
        };
        match connection.rate.take(&self.limits, now) {
            RateVerdict::Allowed => true,
            RateVerdict::Dropped => false,
            RateVerdict::Tell => {
                let message = rate_limited_message(&self.limits);
                send_error(out, conn, ErrorCode::RateLimited, message, None, None);
                false
            }
        }
    }

    /// A `meta` must fit [`Limits::max_meta_bytes`]: it is copied to every
    /// member of the room and into every `list`.
    pub(super) fn check_meta(&self, meta: &Value) -> Outcome {
        let size = json_size(meta);
        if size > self.limits.max_meta_bytes {
            return Err((
                ErrorCode::MessageTooLarge,
                format!(
                    "meta of {size} bytes exceeds the limit of {} bytes",
                    self.limits.max_meta_bytes
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn forget_connection(&mut self, conn: ConnId, reason: &str, out: &mut Vec<Action>) {
        // Ends its sessions, awaited ones included: a requester is always
        // in a room and holds every session it requested.
        self.leave_room(conn, reason, out);
        if let Some(connection) = self.connections.remove(&conn)
            && let Some(peer) = connection.peer
        {
            self.peer_ids.remove(&peer.id);
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut dead = Vec::new();
        let mut mute = Vec::new();
        let mut gone = Vec::new();
        for (conn, connection) in self.connections.iter_mut() {
            let silent = now.saturating_duration_since(connection.last_seen);
            if let Some(until) = connection.detached_until {
                // No socket to ping: it resumes in time, or it is gone.
                if until <= now {
                    gone.push(*conn);
                }
            } else if connection.peer.is_none()
                && now.saturating_duration_since(connection.opened) >= self.limits.hello_timeout
            {
                mute.push(*conn);
            } else if silent >= self.limits.heartbeat_timeout {
                dead.push(*conn);
            } else if silent >= self.limits.heartbeat_interval && !connection.pinged {
                connection.pinged = true;
                out.push(Action::Ping { conn: *conn });
            }
        }
        for conn in dead {
            self.forget_connection(conn, "peer-timed-out", out);
            out.push(Action::Close {
                conn,
                code: ErrorCode::HeartbeatTimeout,
                reason: format!("nothing received for {:?}", self.limits.heartbeat_timeout),
            });
        }
        for conn in gone {
            self.forget_connection(conn, "peer-disconnected", out);
        }
        for conn in mute {
            self.forget_connection(conn, "peer-timed-out", out);
            out.push(Action::Close {
                conn,
                code: ErrorCode::HelloTimeout,
                reason: format!("no hello within {:?}", self.limits.hello_timeout),
            });
        }

        while let Some((deadline, _)) = self.awaited_deadlines.front()
            && *deadline <= now
        {
            let (_, session_id) = self.awaited_deadlines.pop_front().expect("front");
            // Sessions that started or ended meanwhile are no longer awaited.
            if let Some(SessionTarget::Awaited { peer, .. }) =
                self.sessions.get(&session_id).map(|s| &s.target)
            {
                let reason = format!("peer \"{peer}\" did not join in time");
                self.end_session(&session_id, None, &reason, out);
            }
        }
    }
}

/// The message rate limit of one connection: a token bucket refilled at
/// [`Limits::message_rate`] up to [`Limits::message_burst`]. Kept by the
/// core for its connections, and by transports that check frames before
/// they reach the core (the PeerJS sockets, whose heartbeats and held
/// messages never do).
#[derive(Debug, Clone)]
pub struct RateBucket {
    /// Messages it may still send now.
    allowance: f64,
    /// When `allowance` was last topped up.
    at: Instant,
    /// When it was last told it is rate-limited (told at most once a second).
    told: Option<Instant>,
}

/// What a [`RateBucket`] says of one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allowed,
    /// Over the rate: drop it and tell the sender (at most once a second).
    Tell,
    /// Over the rate, and told less than a second ago: drop it quietly.
    Dropped,
}

impl RateBucket {
    /// A full bucket: a new connection may send a burst at once.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        RateBucket {
            allowance: limits.message_burst,
            at: now,
            told: None,
        }
    }

    pub fn take(&mut self, limits: &Limits, now: Instant) -> RateVerdict {
        let elapsed = now.saturating_duration_since(self.at);
        self.allowance = (self.allowance + elapsed.as_secs_f64() * limits.message_rate)
            .min(limits.message_burst);
        self.at = now;
        if self.allowance >= 1.0 {
            self.allowance -= 1.0;
            return RateVerdict::Allowed;
        }
        let told_recently = self
            .told
            .is_some_and(|told| now.saturating_duration_since(told) < Duration::from_secs(1));
        if told_recently {
            return RateVerdict::Dropped;
        }
        self.told = Some(now);
        RateVerdict::Tell
    }
}

/// What a rate-limited sender is told (after the `rate-limited` code).
pub fn rate_limited_message(limits: &Limits) -> String {
    format!(
        "more than {} messages per second (bursts of {}); messages are dropped until the rate falls",
        limits.message_rate, limits.message_burst
    )
}

/// Bytes of `value` as compact JSON, counted without building the text.
fn json_size(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}
