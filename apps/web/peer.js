// gst-peer browser client: signalling (docs/protocol.md) and WebRTC
// sessions, with no dependencies but its ICE restart policy
// (ice-restart.js). Documented in docs/web.md.

import { RestartPolicy } from './ice-restart.js';

export function defaultServerUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

/** An error with a machine-readable `code` (the server's error codes, or
 * `unreachable`, `closed`, `timeout`). */
export class PeerError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** How long a lost signalling connection is retried (the elements'
 * `signaller::reconnect-timeout`), and the waits between attempts: 250 ms
 * doubling to 2 s, ±25% jitter (the elements' `client::Backoff`). */
const RECONNECT_TIMEOUT_MS = 60000;
const RECONNECT_FIRST_WAIT_MS = 250;
const RECONNECT_MAX_WAIT_MS = 2000;

/** Close codes after which reconnecting is no use: the token was refused,
 * or another connection resumed this peer (docs/protocol.md). */
const FINAL_CLOSE_CODES = new Set([4001, 4003, 4011]);
/** Refusals of a `hello` that another attempt will not change. */
const FINAL_HELLO_ERRORS = new Set(['unauthorized', 'forbidden', 'invalid-name', 'already-registered']);

/** A connection to the signalling server: one peer, in at most one room.
 * A connection lost once registered is taken up again by itself (backoff
 * with jitter, for `reconnectTimeout` ms): the same id, the same room,
 * sessions untouched (their media never passed through the server).
 * Events: `peer-joined`, `peer-updated`, `peer-left` (detail: peer info or
 * id), `message` (detail: {from, data}), `error` (detail: PeerError),
 * `signalling-lost` (detail: {reason}), `signalling-restored` (detail:
 * {afterMs, resumed}), `close` (detail: reason; given up, or closed). */
export class PeerClient extends EventTarget {
  constructor({ url = defaultServerUrl(), id, meta, iceServers = [], token, iceTransportPolicy = 'all', reconnectTimeout = RECONNECT_TIMEOUT_MS } = {}) {
    super();
    this.iceTransportPolicy = iceTransportPolicy;
    this.url = url;
    this.requestedId = id;
    this.meta = meta;
    this.iceServers = iceServers;
    this._ownIceServers = iceServers.length > 0;
    this.token = token;
    this.reconnectTimeout = reconnectTimeout;
    this.id = null;
    this.room = null;
    this.peers = new Map();
    this.sessions = new Map();
    this.publisher = null;
    /** `connecting`, `connected`, `lost` (reconnecting) or `closed`. */
    this.signalling = 'connecting';
    this._waiters = [];
    this._socket = null;
    this._resume = null;
    this._joinMeta = undefined;
    this._joinStreams = [];
    this._lostAt = null;
    this._reconnecting = false;
    this._closing = false;
    this._nextWaitMs = RECONNECT_FIRST_WAIT_MS;
  }

  /** Opens the connection and registers; resolves with our peer id. A
   * server that never took us is not retried. */
  async connect() {
    const welcome = await this._open();
    this.signalling = 'connected';
    return welcome.id;
  }

  /** One WebSocket and its `hello`; resolves with the `welcome`. Asks for
   * the id we had (or were given), with the secret that resumes it. */
  _open() {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (err) {
        reject(new PeerError('unreachable', `cannot reach the signalling server at ${this.url}: ${err.message}`));
        return;
      }
      this._socket = socket;
      let welcomed = false;
      socket.onopen = () => {
        this._send({ type: 'hello', id: this.id || this.requestedId, meta: this.meta, token: this.token, resume: this._resume || undefined });
        this._expect(['welcome'], 'hello').then((welcome) => {
          welcomed = true;
          this.id = welcome.id;
          this._resume = welcome.resume || null;
          // The server's STUN/TURN servers (TURN with short-lived
          // credentials for us, fresh on every welcome), unless the page
          // gave its own.
          if (!this._ownIceServers && welcome.ice_servers) this.iceServers = welcome.ice_servers;
          resolve(welcome);
        }, (err) => {
          reject(err);
          if (socket.readyState <= WebSocket.OPEN) socket.close();
        });
      };
      socket.onmessage = (event) => {
        if (this._socket === socket) this._onMessage(JSON.parse(event.data));
      };
      socket.onclose = (event) => {
        if (this._socket !== socket) return;
        const reason = event.reason || (welcomed ? 'the signalling connection closed' : `cannot reach the signalling server at ${this.url}`);
        for (const waiter of this._waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new PeerError('closed', reason));
        }
        if (!welcomed) reject(new PeerError('unreachable', reason));
        else this._lost(event.code, reason);
      };
    });
  }

  /** The registered connection ended: reconnect, unless that is no use. */
  _lost(code, reason) {
    if (this._closing || this.reconnectTimeout <= 0 || FINAL_CLOSE_CODES.has(code) || reason.startsWith('replaced')) {
      this._giveUp(reason);
      return;
    }
    if (this._lostAt === null) {
      this._lostAt = performance.now();
      this.signalling = 'lost';
      this.dispatchEvent(new CustomEvent('signalling-lost', { detail: { reason } }));
    }
    // Lost again while re-registering: the running loop tries again.
    if (!this._reconnecting) this._reconnect(reason);
  }

  /** Attempts until registered again or the timeout passes: the first at
   * once, then spaced by the backoff. */
  async _reconnect(reason) {
    this._reconnecting = true;
    const deadline = this._lostAt + this.reconnectTimeout;
    let first = true;
    try {
      while (!this._closing) {
        if (!first) {
          const wait = Math.min(this._nextWait(), Math.max(0, deadline - performance.now()));
          await new Promise((resolve) => { this._reconnectTimer = setTimeout(resolve, wait); });
          if (this._closing) return;
        }
        first = false;
        try {
          await this._register();
          return;
        } catch (err) {
          if (FINAL_HELLO_ERRORS.has(err.code)) {
            this._giveUp(`the server refused us on reconnecting: ${err.message}`);
            return;
          }
          // Not up yet, or `name-taken` while the server still holds our
          // old connection: another attempt.
        }
        if (performance.now() >= deadline) break;
      }
      if (!this._closing) this._giveUp(`${reason}; no signalling server to reconnect to for ${Math.round(this.reconnectTimeout / 1000)} s`);
    } finally {
      this._reconnecting = false;
    }
  }

  /** One reconnection attempt: hello, then the room again. A server that
   * still held us resumes us (room and sessions); a restarted one knows
   * nothing, so we join again with what we publish. */
  async _register() {
    const welcome = await this._open();
    if (welcome.resumed) {
      const kept = new Set(welcome.resumed.sessions || []);
      for (const session of [...this.sessions.values()]) {
        if (session.id !== null && !kept.has(session.id)) session._ended('the session ended while signalling was lost');
      }
      // Best effort: back in the room whatever its answer.
      if (this.room) await this._refreshPeers().catch(() => {});
    } else if (this.room) {
      try {
        await this._join(this.room, this.publisher ? describeStreams(this.publisher.stream) : this._joinStreams, this._joinMeta);
      } catch (err) {
        // Registered but not back in the room: this connection goes (the
        // server knows none of our sessions, so a clean close costs
        // nothing) and the next attempt does not find our id held by it.
        const socket = this._socket;
        this._socket = null;
        if (socket) socket.close(1000, 'retrying');
        throw err;
      }
    }
    // Lost again meanwhile: the loop that called us tries again.
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) throw new PeerError('closed', 'the signalling connection closed while re-registering');
    const afterMs = Math.round(performance.now() - this._lostAt);
    this._lostAt = null;
    this._nextWaitMs = RECONNECT_FIRST_WAIT_MS;
    this.signalling = 'connected';
    this.dispatchEvent(new CustomEvent('signalling-restored', { detail: { afterMs, resumed: Boolean(welcome.resumed) } }));
  }

  /** After a resume: who joined and left while we were away (the server
   * told our lost connection). */
  async _refreshPeers() {
    this._send({ type: 'list' });
    const { peers } = await this._expect(['peers'], 'list');
    const now = new Map(peers.map((peer) => [peer.id, peer]));
    const before = this.peers;
    this.peers = now;
    for (const id of before.keys()) if (!now.has(id)) this._peerLeft(id);
    for (const [id, peer] of now) if (!before.has(id)) this.dispatchEvent(new CustomEvent('peer-joined', { detail: peer }));
  }

  /** The wait before the next attempt (and the one after grows). */
  _nextWait() {
    const wait = this._nextWaitMs * (0.75 + Math.random() * 0.5);
    this._nextWaitMs = Math.min(this._nextWaitMs * 2, RECONNECT_MAX_WAIT_MS);
    return wait;
  }

  /** No more signalling: sessions end (the page can tell nobody about
   * them any more) and `close` says why. */
  _giveUp(reason) {
    if (this.signalling === 'closed') return;
    this.signalling = 'closed';
    clearTimeout(this._reconnectTimer);
    for (const session of [...this.sessions.values()]) session._ended(`signalling lost: ${reason}`);
    this.dispatchEvent(new CustomEvent('close', { detail: reason }));
  }

  /** Joins a room; resolves with the peers already there. */
  async join(room, { streams = [], meta } = {}) {
    const peers = await this._join(room, streams, meta);
    this._joinStreams = streams;
    this._joinMeta = meta;
    return peers;
  }

  async _join(room, streams, meta) {
    this._send({ type: 'join', room, streams, meta });
    const joined = await this._expect(['joined'], 'join');
    this.room = joined.room;
    this.peers = new Map(joined.peers.map((peer) => [peer.id, peer]));
    return joined.peers;
  }

  async leave() {
    this._send({ type: 'leave' });
    await this._expect(['left'], 'leave');
    this.room = null;
    this.peers.clear();
  }

  /** Every room of the server with its producers. */
  async listRooms() {
    this._send({ type: 'list-rooms' });
    return (await this._expect(['rooms'], 'list-rooms')).rooms;
  }

  /** Producers of the joined room, in order of joining. */
  producers() {
    return [...this.peers.values()].filter((peer) => peer.streams && peer.streams.length > 0);
  }

  /** Receives `producer`'s streams. With `wait`, a producer that has not
   * joined yet is waited for. Resolves with a Session once the server
   * accepted; media follows in its `track` events. */
  async watch(producer, { wait = false, offer = false } = {}) {
    if (offer) {
      // We offer (as a WHEP player does); the producer answers it.
      const session = new Session(this, null, producer, { offerer: true });
      session.pc.addTransceiver('video', { direction: 'recvonly' });
      session.pc.addTransceiver('audio', { direction: 'recvonly' });
      const description = await session.pc.createOffer();
      session._awaitingAnswer = true;
      await session.pc.setLocalDescription(description);
      this._send({ type: 'start-session', peer: producer, wait, offer: { type: 'offer', sdp: description.sdp } });
      const started = await this._expect(['session-started'], 'start-session');
      session._named(started.session);
      this.sessions.set(session.id, session);
      return session;
    }
    this._send({ type: 'start-session', peer: producer, wait });
    const started = await this._expect(['session-started'], 'start-session');
    const session = new Session(this, started.session, producer, { offerer: false });
    this.sessions.set(session.id, session);
    return session;
  }

  /** Offers `stream` to every peer that asks for it, opening `dataChannels`
   * with each. Changes our announced streams (join the room first). */
  async publish(stream, { dataChannels = ['chat'] } = {}) {
    if (!this.room) throw new PeerError('not-in-room', 'join a room before publishing');
    this.publisher = new Publisher(this, stream, dataChannels);
    this._send({ type: 'update', streams: describeStreams(stream) });
    return this.publisher;
  }

  /** An application message through the server (not a data channel). */
  send(data, to) {
    this._send({ type: 'message', to, data });
  }

  close() {
    this._closing = true;
    for (const session of [...this.sessions.values()]) session.close('closed');
    if (this._socket) this._socket.close(1000, 'bye');
    // Between two attempts there is no socket to say so.
    if (this.signalling === 'lost') this._giveUp('closed');
  }

  _send(message) {
    if (this._socket && this._socket.readyState === WebSocket.OPEN) this._socket.send(JSON.stringify(message));
  }

  /** The next message of one of `types`, or the error answering `request`. */
  _expect(types, request, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const waiter = { types, request, resolve, reject };
      waiter.timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        reject(new PeerError('timeout', `no answer to "${request}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this._waiters.push(waiter);
    });
  }

  _settle(message) {
    const index = this._waiters.findIndex((w) =>
      message.type === 'error' ? w.request === message.request : w.types.includes(message.type));
    if (index < 0) return false;
    const [waiter] = this._waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    if (message.type === 'error') waiter.reject(new PeerError(message.code, message.message));
    else waiter.resolve(message);
    return true;
  }

  /** A peer left the room (or vanished and its resume window passed): its
   * sessions with us end here too, even one the server no longer knows
   * (it restarted), so no RTCPeerConnection lingers. */
  _peerLeft(id) {
    this.peers.delete(id);
    for (const session of [...this.sessions.values()]) if (session.peer === id) session._ended(`"${id}" left`);
    this.dispatchEvent(new CustomEvent('peer-left', { detail: id }));
  }

  _onMessage(message) {
    const session = message.session && this.sessions.get(message.session);
    switch (message.type) {
      case 'peer-joined':
      case 'peer-updated':
        this.peers.set(message.peer.id, message.peer);
        this.dispatchEvent(new CustomEvent(message.type, { detail: message.peer }));
        return;
      case 'peer-left':
        this._peerLeft(message.id);
        return;
      case 'session-requested':
        if (this.publisher) this.publisher._onRequest(message.session, message.peer, message.offer);
        else this._send({ type: 'end-session', session: message.session, reason: 'nothing published here' });
        return;
      case 'sdp':
        if (session) session._onDescription(message.sdp);
        return;
      case 'ice':
        if (session) session._onCandidate(message.candidate);
        return;
      case 'session-ended':
        if (session) session._ended(message.reason);
        return;
      case 'message':
        this.dispatchEvent(new CustomEvent('message', { detail: { from: message.from, data: message.data } }));
        return;
      default:
        if (this._settle(message)) return;
        if (message.type === 'error' && message.session && this.sessions.has(message.session)) {
          this.sessions.get(message.session)._onServerError(new PeerError(message.code, message.message));
          return;
        }
        if (message.type === 'error') {
          this.dispatchEvent(new CustomEvent('error', { detail: new PeerError(message.code, message.message) }));
        }
    }
  }
}

function describeStreams(stream) {
  return stream.getTracks().map((track) => {
    const settings = track.getSettings ? track.getSettings() : {};
    const info = { kind: track.kind, label: track.label };
    if (settings.width) Object.assign(info, { width: settings.width, height: settings.height });
    return info;
  });
}

/** How often a session samples what arrived from its peer and lets its
 * ICE restart policy (ice-restart.js) decide. */
const RECOVERY_TICK_MS = 500;
/** How long an answering session waits, once its connection failed, for
 * the offering peer's ICE restart (the elements wait as long). */
const RESTART_WAIT_MS = 10000;

/** The `a=ice-ufrag` of a description: a new one means an ICE restart. */
function iceUfrag(sdp) {
  const match = /^a=ice-ufrag:(\S+)/m.exec(sdp || '');
  return match ? match[1] : null;
}

/** One WebRTC connection with one peer. `stream` holds what it receives.
 * A broken media path heals by ICE restart in the same session, as the
 * elements do it (ice-restart.js). Events: `track` (detail:
 * MediaStreamTrack), `message` (detail: {label, data}), `channel-open`
 * (detail: label), `state` (detail: connection state),
 * `ice-restart-started` (detail: {attempt, reason, byPeer}),
 * `ice-restart-succeeded` (detail: {attempts, afterMs, byPeer}),
 * `ice-restart-failed` (detail: {attempts, reason}), `ended` (detail:
 * reason). */
export class Session extends EventTarget {
  constructor(client, id, peer, { offerer }) {
    super();
    this.client = client;
    this.id = id;
    this.peer = peer;
    this.offerer = offerer;
    this.ended = false;
    this.stream = new MediaStream();
    this.channels = new Map();
    this._earlyCandidates = [];
    this._lastStats = null;
    this._recovery = new RestartPolicy(performance.now(), offerer);
    /** Bytes received on the transport at the last sample. */
    this._bytesReceived = 0;
    this._remoteUfrag = null;
    /** An offer of ours is out: only then is an answer applied. */
    this._awaitingAnswer = false;
    this.pc = new RTCPeerConnection({
      iceServers: client.iceServers,
      iceTransportPolicy: client.iceTransportPolicy,
      bundlePolicy: 'max-bundle',
    });
    this.pc.ontrack = (event) => {
      this.stream.addTrack(event.track);
      this.dispatchEvent(new CustomEvent('track', { detail: event.track }));
    };
    // Candidates of a session the server has not named yet (we offered in
    // start-session) wait for its id.
    this._unsent = [];
    this.pc.onicecandidate = (event) => {
      const candidate = event.candidate ? event.candidate.toJSON() : null;
      if (this.id === null) this._unsent.push(candidate);
      else client._send({ type: 'ice', session: this.id, candidate });
    };
    this.pc.ondatachannel = (event) => this._adopt(event.channel);
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      this.dispatchEvent(new CustomEvent('state', { detail: state }));
      if (state === 'failed') this._failed();
    };
    this.pc.oniceconnectionstatechange = () => {
      this._recovery.onIce(performance.now(), this.pc.iceConnectionState);
      if (this.pc.iceConnectionState === 'connected') clearTimeout(this._restartWait);
    };
    this._ticker = setInterval(() => this._tickRecovery(), RECOVERY_TICK_MS);
  }

  /** Samples what arrived (the transport's received bytes: media, RTCP,
   * DTLS, SCTP, STUN) and carries out what the policy decides. */
  async _tickRecovery() {
    if (this.ended || this._sampling) return;
    this._sampling = true;
    try {
      const report = await this.pc.getStats();
      let received = 0;
      report.forEach((entry) => {
        if (entry.type === 'transport') received += entry.bytesReceived || 0;
      });
      const now = performance.now();
      if (received > this._bytesReceived) {
        this._bytesReceived = received;
        this._recovery.onArrival(now);
      }
      if (!this.ended) this._act(this._recovery.tick(now));
    } catch {
      // Closed meanwhile.
    } finally {
      this._sampling = false;
    }
  }

  _act(action) {
    if (!action || this.ended) return;
    if (action.restart) {
      this.dispatchEvent(new CustomEvent('ice-restart-started', { detail: action.restart }));
      // A new offer with new ICE credentials in this session (only the
      // side that made the first offer restarts: no glare).
      if (!action.restart.byPeer) this._offer({ iceRestart: true }).catch((err) => this.close(`cannot make an ICE restart offer: ${err.message}`));
    } else if (action.healed) {
      this.dispatchEvent(new CustomEvent('ice-restart-succeeded', { detail: action.healed }));
    } else if (action.giveUp) {
      this.dispatchEvent(new CustomEvent('ice-restart-failed', { detail: action.giveUp }));
      this.close(action.giveUp.reason);
    }
  }

  /** A failed connection ends the session unless a restart is under way
   * or due (ice-restart.js); the answering side waits a while for the
   * peer's restart offer. */
  _failed() {
    if (this._recovery.toleratesFailure()) return;
    if (this.offerer || this._recovery.phase.name === 'notConnected') {
      this.close('the connection failed');
      return;
    }
    clearTimeout(this._restartWait);
    this._restartWait = setTimeout(() => {
      if (this.pc.connectionState === 'failed' && !this._recovery.toleratesFailure()) this.close('the connection failed and the peer did not restart ICE');
    }, RESTART_WAIT_MS);
  }

  /** The server refused something about this session: one it no longer
   * knows (it restarted) cannot be renegotiated through it. */
  _onServerError(error) {
    const restarting = ['attempting', 'backoff'].includes(this._recovery.phase.name);
    if (restarting && (error.code === 'unknown-session' || error.code === 'not-in-session')) {
      this.close(`cannot restart ICE: the signalling server no longer knows this session (${error.message})`);
      return;
    }
    this.client.dispatchEvent(new CustomEvent('error', { detail: error }));
  }

  /** The server named the session we offered in. */
  _named(id) {
    this.id = id;
    for (const candidate of this._unsent.splice(0)) this.client._send({ type: 'ice', session: id, candidate });
  }

  /** Opens a data channel (before the offer, on the offering side). */
  openChannel(label, options = {}) {
    this._adopt(this.pc.createDataChannel(label, options));
  }

  /** Sends a string, ArrayBuffer or typed array on channel `label`; false
   * when that channel is not open. */
  send(label, data) {
    const channel = this.channels.get(label);
    if (!channel || channel.readyState !== 'open') return false;
    channel.send(data);
    return true;
  }

  close(reason = 'closed') {
    if (this.ended) return;
    this.client._send({ type: 'end-session', session: this.id, reason });
    this._ended(reason);
  }

  /** A summary of getStats for people: bitrate (bit/s, in or out), frames
   * per second, resolution, packets lost, jitter (s), round-trip time (s). */
  async stats() {
    const report = await this.pc.getStats();
    const now = performance.now();
    const summary = { time: now, bytes: 0, packetsLost: 0, framesPerSecond: 0, width: 0, height: 0, jitter: 0, roundTripTime: 0, audioBytes: 0 };
    report.forEach((entry) => {
      const inbound = entry.type === 'inbound-rtp';
      const outbound = entry.type === 'outbound-rtp';
      if (inbound || outbound) {
        const bytes = inbound ? entry.bytesReceived : entry.bytesSent;
        summary.bytes += bytes || 0;
        if (entry.kind === 'audio') summary.audioBytes += bytes || 0;
        if (inbound) {
          summary.packetsLost += entry.packetsLost || 0;
          if (entry.kind === 'video' || entry.mediaType === 'video') summary.jitter = entry.jitter || 0;
        }
        if (entry.frameWidth) {
          summary.width = entry.frameWidth;
          summary.height = entry.frameHeight;
          summary.framesPerSecond = entry.framesPerSecond || 0;
        }
      }
      if (entry.type === 'remote-inbound-rtp') {
        summary.packetsLost += entry.packetsLost || 0;
        if (entry.roundTripTime) summary.roundTripTime = entry.roundTripTime;
      }
      if (entry.type === 'candidate-pair' && entry.nominated && entry.currentRoundTripTime !== undefined) {
        summary.roundTripTime = entry.currentRoundTripTime;
      }
    });
    const last = this._lastStats;
    summary.bitrate = last ? ((summary.bytes - last.bytes) * 8000) / (now - last.time) : 0;
    this._lastStats = summary;
    return summary;
  }

  _adopt(channel) {
    channel.binaryType = 'arraybuffer';
    this.channels.set(channel.label, channel);
    channel.onopen = () => this.dispatchEvent(new CustomEvent('channel-open', { detail: channel.label }));
    channel.onmessage = (event) => {
      this.dispatchEvent(new CustomEvent('message', { detail: { label: channel.label, data: event.data } }));
    };
    if (channel.readyState === 'open') channel.onopen();
  }

  async _offer(options = {}) {
    const offer = await this.pc.createOffer(options);
    this._awaitingAnswer = true;
    // Sent before it is applied, so no candidate can overtake it.
    this.client._send({ type: 'sdp', session: this.id, sdp: { type: offer.type, sdp: offer.sdp } });
    await this.pc.setLocalDescription(offer);
  }

  async _onDescription(description) {
    // An answer to an offer already answered (a restart overtaken by the
    // next) has nothing left to apply.
    if (description.type === 'answer') {
      if (!this._awaitingAnswer) return;
      this._awaitingAnswer = false;
    }
    const ufrag = iceUfrag(description.sdp);
    if (description.type === 'offer' && this._remoteUfrag && ufrag && ufrag !== this._remoteUfrag) {
      clearTimeout(this._restartWait);
      this._act(this._recovery.onRemoteRestart(performance.now()));
    }
    if (ufrag) this._remoteUfrag = ufrag;
    try {
      await this.pc.setRemoteDescription(description);
      for (const candidate of this._earlyCandidates.splice(0)) await this.pc.addIceCandidate(candidate);
      if (description.type === 'offer') {
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        this.client._send({ type: 'sdp', session: this.id, sdp: { type: answer.type, sdp: answer.sdp } });
      }
    } catch (err) {
      this.close(`cannot use the peer's description: ${err.message}`);
    }
  }

  async _onCandidate(candidate) {
    if (!candidate || !candidate.candidate) return;
    if (!this.pc.remoteDescription) this._earlyCandidates.push(candidate);
    else await this.pc.addIceCandidate(candidate).catch(() => {});
  }

  _ended(reason) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this._restartWait);
    clearInterval(this._ticker);
    this.client.sessions.delete(this.id);
    this.pc.close();
    this.dispatchEvent(new CustomEvent('ended', { detail: reason }));
  }
}

/** What `PeerClient.publish` returns: one outgoing Session per viewer.
 * Events: `session` (detail: Session) when a viewer connects. */
export class Publisher extends EventTarget {
  constructor(client, stream, dataChannels) {
    super();
    this.client = client;
    this.stream = stream;
    this.dataChannels = dataChannels;
    this.sessions = new Map();
  }

  /** A viewer asks; with `offer` it offered (a peersrc with
   * viewer-offer, say) and we answer, else we offer. */
  async _onRequest(sessionId, peer, offer) {
    const session = new Session(this.client, sessionId, peer, { offerer: !offer });
    this.client.sessions.set(sessionId, session);
    this.sessions.set(sessionId, session);
    session.addEventListener('ended', () => this.sessions.delete(sessionId));
    for (const track of this.stream.getTracks()) session.pc.addTrack(track, this.stream);
    this.dispatchEvent(new CustomEvent('session', { detail: session }));
    if (offer) {
      await session._onDescription(offer);
      // Channels ride on the offer's data section, when it has one.
      if (offer.sdp.includes('m=application')) for (const label of this.dataChannels) session.openChannel(label);
      return;
    }
    for (const label of this.dataChannels) session.openChannel(label);
    await session._offer().catch((err) => session.close(`cannot make an offer: ${err.message}`));
  }

  /** Swaps the outgoing track of that kind in every session without
   * renegotiating (a new camera, say). */
  async replaceTrack(track) {
    const old = this.stream.getTracks().find((t) => t.kind === track.kind);
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    this.stream.addTrack(track);
    for (const session of this.sessions.values()) {
      const sender = session.pc.getSenders().find((s) => s.track === old || (s.track && s.track.kind === track.kind));
      if (sender) await sender.replaceTrack(track);
    }
  }

  /** Mutes (sends black/silence) or unmutes a kind of track. */
  setEnabled(kind, enabled) {
    for (const track of this.stream.getTracks()) if (track.kind === kind) track.enabled = enabled;
  }

  /** Sends on data channel `label` to every viewer; how many got it. */
  send(label, data) {
    let sent = 0;
    for (const session of this.sessions.values()) if (session.send(label, data)) sent += 1;
    return sent;
  }

  stop() {
    for (const session of [...this.sessions.values()]) session.close('the publisher stopped');
    for (const track of this.stream.getTracks()) track.stop();
    this.client._send({ type: 'update', streams: [] });
    this.client.publisher = null;
  }
}
