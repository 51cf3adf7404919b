//! Rooms: joining (with the room and publish checks), changing what one
//! publishes, leaving, listing, and relaying application messages. Part
//! of the pure [`SignallingCore`].

use super::*;

impl SignallingCore {
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        room: RoomId,
        streams: Vec<StreamInfo>,
        meta: Value,
        presence: bool,
        out: &mut Vec<Action>,
    ) -> Outcome {
        if !protocol::is_valid_name(&room) {
            return Err((
                ErrorCode::InvalidRoom,
                format!("room \"{room}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        self.check_meta(&meta)?;
        let peer = self.peer(conn).expect("registered");
        if let Some(current) = &peer.room {
            return Err((
                ErrorCode::AlreadyInRoom,
                format!("already in room \"{current}\"; leave it first"),
            ));
        }
        self.check_room(conn, &room)?;
        if !streams.is_empty() {
            self.require(conn, Grant::Publish, &room)?;
        }
        match self.rooms.get(&room) {
            Some(existing) if existing.members.len() >= self.limits.max_peers_per_room => {
                return Err((
                    ErrorCode::RoomFull,
                    format!(
                        "room \"{room}\" is full ({} peers)",
                        self.limits.max_peers_per_room
                    ),
                ));
            }
            None if self.rooms.len() >= self.limits.max_rooms => {
                return Err((
                    ErrorCode::ServerFull,
                    format!(
                        "the server holds its maximum of {} rooms",
                        self.limits.max_rooms
                    ),
                ));
            }
            _ => {}
        }

        let peer = self.peer_mut(conn).expect("registered");
        peer.room = Some(room.clone());
        peer.streams = streams;
        if !meta.is_null() {
            peer.meta = meta;
        }
        let info = peer.info();
        let id = info.id.clone();

        let entry = self.rooms.entry(room.clone()).or_default();
        // Only those who watch the room are told; without presence a join
        // touches nothing per member.
        let others = entry.watchers.clone();
        let roster = presence.then(|| entry.members.clone());
        entry.members.push(conn);
        if presence {
            entry.watchers.push(conn);
        }

        let peers = roster
            .unwrap_or_default()
            .iter()
            .filter_map(|other| self.peer(*other))
            .map(Peer::info)
            .collect();
        send(
            out,
            conn,
            ServerMessage::Joined {
                room: room.clone(),
                id: id.clone(),
                peers,
            },
        );
        if !others.is_empty() {
            out.push(Action::Send {
                to: others,
                message: Arc::new(ServerMessage::PeerJoined {
                    room: room.clone(),
                    peer: info,
                }),
            });
        }
        self.wake_awaiting_sessions(conn, &room, &id, out);
        Ok(())
    }

    pub(super) fn update(
        &mut self,
        conn: ConnId,
        streams: Option<Vec<StreamInfo>>,
        meta: Option<Value>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        if let Some(meta) = &meta {
            self.check_meta(meta)?;
        }
        if streams.as_ref().is_some_and(|s| !s.is_empty()) {
            let room = self
                .peer(conn)
                .and_then(|p| p.room.clone())
                .unwrap_or_default();
            self.require(conn, Grant::Publish, &room)?;
        }
        let peer = self.peer_mut(conn).expect("registered");
        if let Some(streams) = streams {
            peer.streams = streams;
        }
        if let Some(meta) = meta {
            peer.meta = meta;
        }
        let info = peer.info();
        if let Some(room) = peer.room.clone() {
            let others = self.room_watchers_except(&room, conn);
            if !others.is_empty() {
                out.push(Action::Send {
                    to: others,
                    message: Arc::new(ServerMessage::PeerUpdated { room, peer: info }),
                });
            }
        }
        Ok(())
    }

    fn room_watchers_except(&self, room: &str, conn: ConnId) -> Vec<ConnId> {
        self.rooms
            .get(room)
            .map(|r| r.watchers.iter().copied().filter(|m| *m != conn).collect())
            .unwrap_or_default()
    }

    pub(super) fn room_members_except(&self, room: &str, conn: ConnId) -> Vec<ConnId> {
        self.rooms
            .get(room)
            .map(|r| r.members.iter().copied().filter(|m| *m != conn).collect())
            .unwrap_or_default()
    }

    pub(super) fn leave(&mut self, conn: ConnId, out: &mut Vec<Action>) -> Outcome {
        let Some(room) = self.peer(conn).and_then(|p| p.room.clone()) else {
            return Err((ErrorCode::NotInRoom, "not in a room".into()));
        };
        self.leave_room(conn, "peer-left", out);
        send(out, conn, ServerMessage::Left { room });
        Ok(())
    }

    /// Takes the peer out of its room, ending its sessions and telling the room.
    pub(super) fn leave_room(&mut self, conn: ConnId, reason: &str, out: &mut Vec<Action>) {
        let sessions = match self.peer_mut(conn) {
            Some(peer) => std::mem::take(&mut peer.sessions),
            None => return,
        };
        for session in sessions {
            self.end_session(&session, Some(conn), reason, out);
        }
        let Some(peer) = self.peer_mut(conn) else {
            return;
        };
        let Some(room_name) = peer.room.take() else {
            return;
        };
        peer.streams.clear();
        let id = peer.id.clone();
        if let Some(room) = self.rooms.get_mut(&room_name) {
            room.members.retain(|m| *m != conn);
            room.watchers.retain(|m| *m != conn);
            if room.members.is_empty() {
                self.rooms.remove(&room_name);
            } else if !room.watchers.is_empty() {
                out.push(Action::Send {
                    to: room.watchers.clone(),
                    message: Arc::new(ServerMessage::PeerLeft {
                        room: room_name,
                        id,
                    }),
                });
            }
        }
    }

    pub(super) fn list(
        &mut self,
        conn: ConnId,
        room: Option<RoomId>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let own = self.peer(conn).and_then(|p| p.room.clone());
        let room = match room.or_else(|| own.clone()) {
            Some(room) => room,
            None => {
                return Err((
                    ErrorCode::NotInRoom,
                    "not in a room; name one with \"room\"".into(),
                ));
            }
        };
        // Who is in a room (and their meta) is for its members to know.
        if own.as_deref() != Some(room.as_str()) && !self.is_admin(conn) {
            return Err((
                ErrorCode::Forbidden,
                format!("listing room \"{room}\" needs the admin grant (or being in it)"),
            ));
        }
        let Some(members) = self.rooms.get(&room).map(|r| &r.members) else {
            return Err((
                ErrorCode::UnknownRoom,
                format!("there is no room \"{room}\""),
            ));
        };
        let peers = members
            .iter()
            .filter(|m| **m != conn)
            .filter_map(|m| self.peer(*m))
            .map(Peer::info)
            .collect();
        send(out, conn, ServerMessage::Peers { room, peers });
        Ok(())
    }

    pub(super) fn relay_message(
        &self,
        conn: ConnId,
        to: Option<&str>,
        data: &RawValue,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let peer = self.peer(conn).expect("registered");
        let Some(room) = peer.room.as_deref() else {
            return Err((
                ErrorCode::NotInRoom,
                "join a room before sending messages".into(),
            ));
        };
        self.require(conn, Grant::Data, room)?;
        let recipients = match to {
            Some(target) => {
                let found = self
                    .peer_ids
                    .get(target)
                    .copied()
                    .filter(|c| self.peer(*c).and_then(|p| p.room.as_deref()) == Some(room));
                match found {
                    Some(target_conn) => vec![target_conn],
                    None => {
                        return Err((
                            ErrorCode::UnknownPeer,
                            format!("no peer \"{target}\" in room \"{room}\""),
                        ));
                    }
                }
            }
            None => self.room_members_except(room, conn),
        };
        if !recipients.is_empty() {
            let text = protocol::encode_relayed_message(&peer.id, room, to, data);
            out.push(Action::SendText {
                to: recipients,
                text,
            });
        }
        Ok(())
    }
}
