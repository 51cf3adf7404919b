//! Resuming a peer: a connection lost without a close (a killed process, a
//! dropped network) leaves its peer in place for `resume_window`, and a
//! `hello` with the peer's `resume` secret, on a new connection, takes the
//! id, the room and the sessions back: nobody else is told anything, and
//! sessions whose media never passed through here go on. The same hello
//! also takes the peer over from a connection the server still thinks
//! alive (its network went before the heartbeat noticed). Part of the pure
//! [`SignallingCore`].

use super::*;

impl SignallingCore {
    /// A fresh resume secret: 128 bits from the CSPRNG, in base 32.
    pub(super) fn secret(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        (0..26)
            .map(|_| ALPHABET[self.secrets.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    /// Whether `secret` resumes peer `id`, compared in constant time.
    pub(super) fn may_resume(&self, id: &str, secret: &str) -> bool {
        if self.limits.resume_window.is_zero() {
            return false;
        }
        let Some(peer) = self.peer_ids.get(id).and_then(|conn| self.peer(*conn)) else {
            return false;
        };
        let (a, b) = (peer.resume.as_bytes(), secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }

    /// Moves peer `id` onto `conn` with its room and sessions; the old
    /// connection, if still open, is closed as `replaced`.
    pub(super) fn resume(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: &str,
        allowed: Allowed,
        out: &mut Vec<Action>,
    ) {
        let old = self.peer_ids[id];
        let Some(mut old_connection) = self.connections.remove(&old) else {
            return;
        };
        let Some(mut peer) = old_connection.peer.take() else {
            return;
        };
        if let Some(room) = peer.room.as_ref().and_then(|room| self.rooms.get_mut(room)) {
            for member in room
                .members
                .iter_mut()
                .chain(room.watchers.iter_mut())
                .filter(|m| **m == old)
            {
                *member = conn;
            }
        }
        for session_id in &peer.sessions {
            if let Some(session) = self.sessions.get_mut(session_id) {
                if session.requester == old {
                    session.requester = conn;
                }
                if let SessionTarget::Present(target) = &mut session.target
                    && *target == old
                {
                    *target = conn;
                }
            }
        }
        // A fresh secret: the one just used has crossed the network again.
        peer.resume = self.secret();
        peer.allowed = allowed;
        let resumed = protocol::Resumed {
            room: peer.room.clone(),
            sessions: peer.sessions.clone(),
        };
        self.peer_ids.insert(id.to_owned(), conn);
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.peer = Some(peer);
        }
        if old_connection.detached_until.is_none() {
            out.push(Action::Close {
                conn: old,
                code: ErrorCode::Replaced,
                reason: format!("peer \"{id}\" resumed on another connection"),
            });
        }
        self.welcome(now, conn, id.to_owned(), Some(resumed), out);
    }

    /// The socket of `conn` was lost: a registered peer waits for a
    /// resume; anything else is forgotten.
    pub(super) fn detach(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Action>) {
        let window = self.limits.resume_window;
        match self.connections.get_mut(&conn) {
            Some(connection) if connection.peer.is_some() && !window.is_zero() => {
                connection.detached_until = Some(now + window);
            }
            Some(_) => self.forget_connection(conn, "peer-disconnected", out),
            None => {}
        }
    }
}
