//! What the core says to the PeerJS adapter's peers, in PeerJS words; the
//! adapter's deadlines; the [`Adapter`] implementation.

use super::*;

/// Reasons the core gives when a session ends because a party went away.
/// PeerJS tells nobody then: a client that lost the server (or called
/// `peer.disconnect()`) keeps its peer-to-peer connections.
const DEPARTURES: &[&str] = &["peer-left", "peer-disconnected", "peer-timed-out"];

impl PeerJsAdapter {
    pub(super) fn on_core_message(
        &mut self,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<AdapterAction>,
    ) {
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let socket = client.socket;
        let me = client.id.clone();
        match message {
            ServerMessage::Joined { .. } if !client.open => {
                client.open = true;
                write(out, socket, json!({"type": "OPEN"}));
                let room = client.room.clone();
                self.release(&room, &me, out);
            }
            // Told to every peer of the room, so cheap when nothing waits.
            ServerMessage::PeerJoined { peer, .. } if !self.held.is_empty() => {
                let room = client.room.clone();
                if self.held.contains_key(&(room.clone(), peer.id.clone())) {
                    self.release(&room, &peer.id, out);
                }
            }
            ServerMessage::Error {
                code,
                message,
                request,
                ..
            } => match request.as_deref() {
                Some("hello" | "join") => {
                    // Taken by a peer of another protocol, or a limit of
                    // the core (room or server full).
                    if *code == ErrorCode::NameTaken {
                        refuse(out, socket, "ID-TAKEN", ID_TAKEN);
                    } else {
                        refuse(out, socket, "ERROR", message);
                    }
                    self.forget(conn);
                    out.push(AdapterAction::Disconnect { conn });
                }
                // The callee cannot take the session (too many of them):
                // for PeerJS, it is unavailable.
                Some("start-session") => {
                    if let Some(starting) = client.starting.pop_front() {
                        tracing::debug!(id = me, dst = starting.dst, message, "call refused");
                        write(
                            out,
                            socket,
                            json!({"type": "EXPIRE", "src": starting.dst, "dst": me}),
                        );
                    }
                }
                _ => tracing::debug!(id = me, message, "refused by the core"),
            },
            ServerMessage::SessionStarted { session, .. } => {
                let Some(Starting {
                    dst,
                    connection_id,
                    payload,
                    early,
                }) = client.starting.pop_front()
                else {
                    return;
                };
                for frame in early {
                    let message = frame
                        .payload
                        .as_ref()
                        .and_then(|p| session_message(&frame.kind, p, session.clone()));
                    if let Some(message) = message {
                        out.push(AdapterAction::ToCore { conn, message });
                    }
                }
                client.links.push(ClientLink {
                    other: dst,
                    connection_id: connection_id.clone(),
                    session: session.clone(),
                });
                let mut extras = match payload {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                extras.remove("sdp");
                extras.remove("connectionId");
                let kind = match extras.remove("type") {
                    Some(Value::String(kind)) => kind,
                    _ => "media".into(),
                };
                self.offers.insert(
                    session.clone(),
                    Offered {
                        connection_id,
                        kind,
                        extras,
                        parties: 1,
                    },
                );
            }
            ServerMessage::SessionRequested {
                session,
                peer,
                offer,
            } => {
                let Some(offer) = offer else {
                    // Asked to make an offer (a native viewer asking a
                    // producer): a PeerJS client offers only when its app
                    // calls or connects.
                    out.push(AdapterAction::ToCore {
                        conn,
                        message: ClientMessage::EndSession {
                            session: session.clone(),
                            reason: Some(format!(
                                "\"{me}\" is a PeerJS peer: it offers when its app calls, \
                                 and answers offers"
                            )),
                        },
                    });
                    return;
                };
                let token = random_token(&mut self.rng, 10);
                let offered = self
                    .offers
                    .entry(session.clone())
                    .and_modify(|o| o.parties += 1)
                    .or_insert_with(|| Offered {
                        // A native peer calls: a media call by PeerJS's names.
                        connection_id: format!("mc_{token}"),
                        kind: "media".into(),
                        extras: Map::new(),
                        parties: 1,
                    });
                let client = self.clients.get_mut(&conn).expect("ours");
                client.links.push(ClientLink {
                    other: peer.clone(),
                    connection_id: offered.connection_id.clone(),
                    session: session.clone(),
                });
                let mut payload = offered.extras.clone();
                payload.insert("sdp".into(), json!(offer));
                payload.insert("type".into(), json!(offered.kind));
                payload.insert("connectionId".into(), json!(offered.connection_id));
                write(
                    out,
                    socket,
                    json!({"type": "OFFER", "src": peer, "dst": me, "payload": payload}),
                );
            }
            ServerMessage::Sdp { session, from, sdp } => {
                // PeerJS has no renegotiation: only the answer goes on.
                if sdp.kind != SdpKind::Answer {
                    tracing::debug!(id = me, "an offer in a running session, not for PeerJS");
                    return;
                }
                let Some((connection_id, kind)) = self.connection_of(conn, session) else {
                    return;
                };
                write(
                    out,
                    socket,
                    json!({"type": "ANSWER", "src": from, "dst": me, "payload": {
                        "sdp": sdp, "type": kind, "connectionId": connection_id,
                    }}),
                );
            }
            ServerMessage::Ice {
                session,
                from,
                candidate,
            } => {
                // PeerJS sends no end-of-candidates.
                let Some(candidate) = candidate.as_ref().filter(|c| !c.candidate.is_empty()) else {
                    return;
                };
                let Some((connection_id, kind)) = self.connection_of(conn, session) else {
                    return;
                };
                write(
                    out,
                    socket,
                    json!({"type": "CANDIDATE", "src": from, "dst": me, "payload": {
                        "candidate": candidate, "type": kind, "connectionId": connection_id,
                    }}),
                );
            }
            ServerMessage::SessionEnded { session, reason } => {
                let Some(index) = client.links.iter().position(|l| l.session == *session) else {
                    return;
                };
                let link = client.links.remove(index);
                // The other side closed it (a pipeline ending the viewer,
                // refusing the call): PeerJS's LEAVE closes the client's
                // connections with that peer, so only once none is left.
                if !DEPARTURES.contains(&reason.as_str())
                    && !client.links.iter().any(|l| l.other == link.other)
                {
                    write(
                        out,
                        socket,
                        json!({"type": "LEAVE", "src": link.other, "dst": me}),
                    );
                }
                self.unlink(session);
            }
            _ => {}
        }
    }

    /// The PeerJS connection by which the client of `conn` knows core
    /// session `session`: its id and its type (`media` or `data`), as
    /// ANSWER and CANDIDATE frames carry them.
    fn connection_of(&self, conn: ConnId, session: &str) -> Option<(&str, &str)> {
        let link = self
            .clients
            .get(&conn)?
            .links
            .iter()
            .find(|l| l.session == session)?;
        Some((link.connection_id.as_str(), self.offer_kind(session)))
    }

    fn offer_kind(&self, session: &str) -> &str {
        self.offers
            .get(session)
            .map_or("media", |o| o.kind.as_str())
    }

    /// One of our clients is no longer a party of `session`.
    pub(super) fn unlink(&mut self, session: &str) {
        if let Some(offered) = self.offers.get_mut(session) {
            offered.parties = offered.parties.saturating_sub(1);
            if offered.parties == 0 {
                self.offers.remove(session);
            }
        }
    }

    /// Forgets client `conn` (the caller tells the core, or the core told us).
    pub(super) fn forget(&mut self, conn: ConnId) {
        let Some(client) = self.clients.remove(&conn) else {
            return;
        };
        if self.watchers.get(&client.room) == Some(&conn) {
            self.watchers.remove(&client.room);
        }
        if self.by_socket.get(&client.socket) == Some(&conn) {
            self.by_socket.remove(&client.socket);
        }
        if self.by_id.get(&client.id) == Some(&conn) {
            self.by_id.remove(&client.id);
        }
        for link in client.links {
            self.unlink(&link.session);
        }
    }

    /// Closes client `conn`'s socket and takes it out of the core.
    pub(super) fn drop_client(&mut self, conn: ConnId, reason: &str, out: &mut Vec<AdapterAction>) {
        if let Some(client) = self.clients.get(&conn) {
            out.push(AdapterAction::CloseSocket {
                socket: client.socket,
                code: CLOSE_NORMAL,
                reason: reason.to_owned(),
            });
        }
        self.forget(conn);
        out.push(AdapterAction::Disconnect { conn });
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<AdapterAction>) {
        let alive = self.config.alive_timeout;
        let silent: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_seen) >= alive)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in silent {
            tracing::debug!(conn, "PeerJS client silent for {alive:?}: dropped");
            self.drop_client(conn, "no heartbeat", out);
        }

        let expire = self.config.expire_timeout;
        let expired: Vec<(Arc<str>, PeerId)> = self
            .held
            .iter()
            .filter(|(_, held)| now.saturating_duration_since(held.since) >= expire)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            let held = self.held.remove(&key).expect("listed");
            self.unhold(&held.frames);
            let mut told: Vec<ConnId> = Vec::new();
            for (conn, src, _, _) in held.frames {
                if told.contains(&conn) {
                    continue;
                }
                told.push(conn);
                if let Some(client) = self.clients.get(&conn).filter(|c| c.id == src) {
                    write(
                        out,
                        client.socket,
                        json!({"type": "EXPIRE", "src": key.1, "dst": src}),
                    );
                }
            }
        }
    }
}

impl Adapter for PeerJsAdapter {
    fn owns(&self, conn: ConnId) -> bool {
        self.clients.contains_key(&conn)
    }

    fn is_idle(&self) -> bool {
        self.clients.is_empty()
    }

    fn core_sent(
        &mut self,
        _now: Instant,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<AdapterAction>,
    ) {
        self.on_core_message(conn, message, out);
    }

    fn closed(&mut self, _now: Instant, conn: ConnId, out: &mut Vec<AdapterAction>) {
        if let Some(client) = self.clients.get(&conn) {
            out.push(AdapterAction::CloseSocket {
                socket: client.socket,
                code: CLOSE_NORMAL,
                reason: "dropped by the server".into(),
            });
        }
        self.forget(conn);
    }

    fn abandoned(&mut self, _now: Instant, _request: RequestId, _out: &mut Vec<AdapterAction>) {}

    fn tick(&mut self, now: Instant, out: &mut Vec<AdapterAction>) {
        self.on_tick(now, out);
    }
}
