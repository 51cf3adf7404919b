//! Connections over time: signs of life and their rate, heartbeats, the
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

    pub(super) fn forget_connection(&mut self, conn: ConnId, reason: &str, out: &mut Vec<Action>) {
        self.leave_room(conn, reason, out);
        // Sessions this peer requested while its target had not yet arrived.
        let orphaned: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.requester == conn)
            .map(|(id, _)| id.clone())
            .collect();
        for session in orphaned {
            self.sessions.remove(&session);
        }
        if let Some(connection) = self.connections.remove(&conn)
            && let Some(peer) = connection.peer
        {
            self.peer_ids.remove(&peer.id);
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut dead = Vec::new();
        for (conn, connection) in self.connections.iter_mut() {
            let silent = now.saturating_duration_since(connection.last_seen);
            if silent >= self.limits.heartbeat_timeout {
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

        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.target, SessionTarget::Awaited { deadline, .. } if deadline <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for session_id in expired {
            if let Some(SessionTarget::Awaited { peer, .. }) =
                self.sessions.get(&session_id).map(|s| &s.target)
            {
                let reason = format!("peer \"{peer}\" did not join in time");
                self.end_session(&session_id, None, &reason, out);
            }
            self.awaited.retain(|s| *s != session_id);
        }
    }
}
