//! Sessions between a viewer and a producer: starting one (at once, or
//! when the producer joins, for a viewer that asked to wait), relaying its
//! SDP and ICE, and ending it. Part of the pure [`SignallingCore`].

use super::*;

impl SignallingCore {
    pub(super) fn wake_awaiting_sessions(
        &mut self,
        conn: ConnId,
        room: &str,
        id: &str,
        out: &mut Vec<Action>,
    ) {
        let mut still_waiting = VecDeque::with_capacity(self.awaited.len());
        while let Some(session_id) = self.awaited.pop_front() {
            let Some(session) = self.sessions.get_mut(&session_id) else {
                continue;
            };
            let matches = matches!(&session.target, SessionTarget::Awaited { peer, .. } if peer == id)
                && session.room == room;
            if !matches {
                still_waiting.push_back(session_id);
                continue;
            }
            session.target = SessionTarget::Present(conn);
            let offer = session.offer.take();
            let requester = session.requester;
            let requester_id = self
                .peer(requester)
                .map(|p| p.id.clone())
                .unwrap_or_default();
            if let Some(peer) = self.peer_mut(conn) {
                peer.sessions.push(session_id.clone());
            }
            send(
                out,
                conn,
                ServerMessage::SessionRequested {
                    session: session_id,
                    peer: requester_id,
                    offer,
                },
            );
        }
        self.awaited = still_waiting;
    }

    pub(super) fn start_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        target_id: PeerId,
        wait: bool,
        offer: Option<SessionDescription>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        if let Some(offer) = &offer {
            check_offer(offer)?;
        }
        let requester = self.peer(conn).expect("registered");
        let Some(room) = requester.room.clone() else {
            return Err((
                ErrorCode::NotInRoom,
                "join a room before starting a session".into(),
            ));
        };
        self.require(conn, Grant::Subscribe, &room)?;
        let requester = self.peer(conn).expect("registered");
        if requester.id == target_id {
            return Err((
                ErrorCode::SelfSession,
                "a peer cannot start a session with itself".into(),
            ));
        }
        if requester.sessions.len() >= self.limits.max_sessions_per_peer {
            return Err((
                ErrorCode::TooManySessions,
                format!(
                    "at most {} sessions per peer",
                    self.limits.max_sessions_per_peer
                ),
            ));
        }
        let target_conn = self
            .peer_ids
            .get(&target_id)
            .copied()
            .filter(|c| self.peer(*c).and_then(|p| p.room.as_deref()) == Some(room.as_str()));
        let target = match target_conn {
            Some(target_conn) => {
                let busy = self
                    .peer(target_conn)
                    .map(|p| p.sessions.len())
                    .unwrap_or(0);
                if busy >= self.limits.max_sessions_per_peer {
                    return Err((
                        ErrorCode::TooManySessions,
                        format!("peer \"{target_id}\" has reached its limit of sessions"),
                    ));
                }
                SessionTarget::Present(target_conn)
            }
            None if wait => SessionTarget::Awaited {
                peer: target_id.clone(),
                deadline: now + self.limits.session_wait_timeout,
            },
            None => {
                return Err((
                    ErrorCode::UnknownPeer,
                    format!("no peer \"{target_id}\" in room \"{room}\""),
                ));
            }
        };

        let session_id = loop {
            let id = self.random_id("s-", 12);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let requester_id = self.peer(conn).expect("registered").id.clone();
        if let Some(peer) = self.peer_mut(conn) {
            peer.sessions.push(session_id.clone());
        }
        send(
            out,
            conn,
            ServerMessage::SessionStarted {
                session: session_id.clone(),
                peer: target_id,
            },
        );
        let held_offer = match target {
            SessionTarget::Present(target_conn) => {
                if let Some(peer) = self.peer_mut(target_conn) {
                    peer.sessions.push(session_id.clone());
                }
                send(
                    out,
                    target_conn,
                    ServerMessage::SessionRequested {
                        session: session_id.clone(),
                        peer: requester_id,
                        offer,
                    },
                );
                None
            }
            SessionTarget::Awaited { .. } => {
                self.awaited.push_back(session_id.clone());
                offer
            }
        };
        self.sessions.insert(
            session_id,
            Session {
                room,
                requester: conn,
                target,
                offer: held_offer,
            },
        );
        Ok(())
    }

    /// The other party of `session`, checking that `conn` is one of its parties.
    pub(super) fn counterpart(
        &self,
        conn: ConnId,
        session_id: &str,
    ) -> Result<(ConnId, PeerId), (ErrorCode, String)> {
        let Some(session) = self.sessions.get(session_id) else {
            return Err((
                ErrorCode::UnknownSession,
                format!("no session \"{session_id}\""),
            ));
        };
        if !session.involves(conn) {
            return Err((
                ErrorCode::NotInSession,
                format!("not a party of session \"{session_id}\""),
            ));
        }
        match session.other_party(conn) {
            Some(other) => Ok((other, self.peer(conn).expect("registered").id.clone())),
            None => Err((
                ErrorCode::UnknownPeer,
                format!("session \"{session_id}\" is still waiting for its peer to join"),
            )),
        }
    }

    pub(super) fn relay_sdp(
        &mut self,
        conn: ConnId,
        session: SessionId,
        sdp: SessionDescription,
        out: &mut Vec<Action>,
    ) -> Outcome {
        check_sdp(&sdp, "sdp.sdp")?;
        let (other, from) = self.counterpart(conn, &session)?;
        send(out, other, ServerMessage::Sdp { session, from, sdp });
        Ok(())
    }

    pub(super) fn relay_ice(
        &mut self,
        conn: ConnId,
        session: SessionId,
        candidate: Option<IceCandidate>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let (other, from) = self.counterpart(conn, &session)?;
        send(
            out,
            other,
            ServerMessage::Ice {
                session,
                from,
                candidate,
            },
        );
        Ok(())
    }

    pub(super) fn end_session_by(
        &mut self,
        conn: ConnId,
        session: SessionId,
        reason: Option<String>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        match self.sessions.get(&session) {
            None => {
                return Err((
                    ErrorCode::UnknownSession,
                    format!("no session \"{session}\""),
                ));
            }
            // An admin may end anyone's session.
            Some(s) if !s.involves(conn) && !self.is_admin(conn) => {
                return Err((
                    ErrorCode::NotInSession,
                    format!("not a party of session \"{session}\""),
                ));
            }
            Some(_) => {}
        }
        let reason = reason.unwrap_or_else(|| "ended".into());
        self.end_session(&session, Some(conn), &reason, out);
        Ok(())
    }

    /// Forgets a session and tells every party other than `by`.
    pub(super) fn end_session(
        &mut self,
        session_id: &str,
        by: Option<ConnId>,
        reason: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(session) = self.sessions.remove(session_id) else {
            return;
        };
        let mut parties = vec![session.requester];
        if let SessionTarget::Present(target) = session.target {
            parties.push(target);
        }
        for party in parties {
            if let Some(peer) = self.peer_mut(party) {
                peer.sessions.retain(|s| s != session_id);
            }
            if Some(party) != by {
                send(
                    out,
                    party,
                    ServerMessage::SessionEnded {
                        session: session_id.to_owned(),
                        reason: reason.to_owned(),
                    },
                );
            }
        }
    }
}

fn check_sdp(sdp: &SessionDescription, field: &str) -> Outcome {
    if sdp.sdp.trim_start().starts_with("v=0") {
        Ok(())
    } else {
        Err((
            ErrorCode::InvalidMessage,
            format!("\"{field}\" is not an SDP description (it must start with \"v=0\")"),
        ))
    }
}

/// The offer a `start-session` may carry must be one.
fn check_offer(offer: &SessionDescription) -> Outcome {
    if offer.kind != SdpKind::Offer {
        return Err((
            ErrorCode::InvalidMessage,
            "\"offer\" must be an SDP offer (type \"offer\"), not an answer".into(),
        ));
    }
    check_sdp(offer, "offer.sdp")
}
