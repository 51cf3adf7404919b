// When a page's session heals its media path by restarting ICE, and when
// it gives up: the elements' policy (plugins/webrtc/src/ice_restart.rs,
// docs/elements.md "ICE restarts"), so a page and a pipeline behave alike.
// Pure: times (ms, performance.now()) are passed in.
//
// - Triggers, once connected, on the side that made the offer: the ICE
//   connection state `disconnected` for 2 s, or `failed`, or nothing
//   received from the peer for the silence limit: 2.5 × the longest gap
//   seen between arrivals (slowly forgotten), 3–15 s (8 s at least until
//   three gaps were seen). Chromium marks a path that drops everything
//   `disconnected` only ~5 s in, so for short outages the silence is the
//   first sign.
// - Attempts: one succeeds when something arrives from the peer after it
//   started (and ICE is not `failed`); else after 3 s the next comes after
//   250 ms doubling to 4 s, 6 at most; then the session is given up.
// - The answering side never restarts by itself; the peer's restart offer
//   opens a 10 s window (renewed by each offer) in which `failed` is
//   expected; still failed at its end, the session is given up.

export const RESTART_CONFIG = Object.freeze({
  disconnectedGraceMs: 2000,
  minSilenceMs: 3000,
  learningSilenceMs: 8000,
  maxSilenceMs: 15000,
  attemptTimeoutMs: 3000,
  firstBackoffMs: 250,
  maxBackoffMs: 4000,
  maxAttempts: 6,
  answerWindowMs: 10000,
});

/** Gaps between arrivals to see before the silence limit follows them. */
const GAPS_TO_LEARN = 3;

/** ICE connection states as far as healing is concerned. */
function health(iceConnectionState) {
  switch (iceConnectionState) {
    case 'connected':
    case 'completed':
      return 'connected';
    case 'disconnected':
      return 'disconnected';
    case 'failed':
      return 'failed';
    default:
      return 'checking';
  }
}

/** The decisions, as actions: `{restart: {attempt, reason, byPeer}}`,
 * `{healed: {attempts, afterMs, byPeer}}`, `{giveUp: {attempts, reason}}`. */
export class RestartPolicy {
  constructor(now, offerer, config = RESTART_CONFIG) {
    this.config = config;
    this.offerer = offerer;
    // notConnected, healthy, attempting, backoff, answering, gaveUp
    this.phase = { name: 'notConnected' };
    this.ice = 'checking';
    this.iceSince = now;
    this.lastArrival = null;
    this.usualGap = 0;
    this.gapsSeen = 0;
  }

  /** How long the peer may be silent before its path is held broken. */
  silenceLimit() {
    const least = this.gapsSeen < GAPS_TO_LEARN ? this.config.learningSilenceMs : this.config.minSilenceMs;
    return Math.min(Math.max(this.usualGap * 2.5, least), this.config.maxSilenceMs);
  }

  onIce(now, iceConnectionState) {
    const state = health(iceConnectionState);
    if (state !== this.ice) {
      this.ice = state;
      this.iceSince = now;
    }
    if (state === 'connected' && this.phase.name === 'notConnected') this.phase = { name: 'healthy' };
  }

  /** The latest time something arrived from the peer (sampled; the same
   * value again means nothing new came). */
  onArrival(latest) {
    if (this.lastArrival !== null && latest <= this.lastArrival) return;
    if (this.lastArrival !== null && this.phase.name === 'healthy') {
      // Long gaps are remembered at once, forgotten slowly (5% a sample).
      this.usualGap = Math.max(latest - this.lastArrival, this.usualGap * 0.95);
      this.gapsSeen += 1;
    }
    this.lastArrival = latest;
  }

  /** The peer sent an offer with new ICE credentials. */
  onRemoteRestart(now) {
    if (this.phase.name === 'answering') {
      this.phase.at = now;
      return null;
    }
    if (this.phase.name === 'gaveUp') return null;
    this.phase = { name: 'answering', first: now, at: now };
    return { restart: { attempt: 1, reason: 'the peer restarts ICE', byPeer: true } };
  }

  /** Whether the connection failing now is expected (a restart is under
   * way or due) rather than the end of the session. */
  toleratesFailure() {
    switch (this.phase.name) {
      case 'attempting':
      case 'backoff':
      case 'answering':
        return true;
      // ICE itself still connected: DTLS failed, which no restart heals.
      case 'healthy':
        return this.offerer && this.ice !== 'connected';
      default:
        return false;
    }
  }

  _silentFor(now) {
    return this.lastArrival === null ? 0 : Math.max(0, now - this.lastArrival);
  }

  _arrivedSince(at) {
    return this.lastArrival !== null && this.lastArrival > at;
  }

  _reason(now) {
    if (this.ice === 'failed') return 'ICE failed';
    if (this.ice === 'disconnected') return 'ICE disconnected';
    return `nothing received from the peer for ${(this._silentFor(now) / 1000).toFixed(1)} s`;
  }

  tick(now) {
    const config = this.config;
    const phase = this.phase;
    switch (phase.name) {
      case 'healthy': {
        if (!this.offerer) return null;
        const broken = this.ice === 'failed'
          || (this.ice === 'disconnected' && now - this.iceSince >= config.disconnectedGraceMs)
          || (this.lastArrival !== null && this._silentFor(now) >= this.silenceLimit());
        if (!broken) return null;
        this.phase = { name: 'attempting', attempt: 1, first: now, at: now };
        return { restart: { attempt: 1, reason: this._reason(now), byPeer: false } };
      }
      case 'attempting': {
        if (this._arrivedSince(phase.at) && this.ice !== 'failed') {
          this.phase = { name: 'healthy' };
          return { healed: { attempts: phase.attempt, afterMs: Math.round(now - phase.first), byPeer: false } };
        }
        if (now - phase.at < config.attemptTimeoutMs) return null;
        if (phase.attempt >= config.maxAttempts) {
          this.phase = { name: 'gaveUp' };
          return {
            giveUp: {
              attempts: phase.attempt,
              reason: `the connection broke (${this._reason(now)}) and ${phase.attempt} ICE restarts over ${Math.round((now - phase.first) / 1000)} s did not bring it back`,
            },
          };
        }
        const backoff = Math.min(config.firstBackoffMs * 2 ** (phase.attempt - 1), config.maxBackoffMs);
        this.phase = { name: 'backoff', attempt: phase.attempt, first: phase.first, until: now + backoff };
        return null;
      }
      case 'backoff': {
        if (now < phase.until) return null;
        const attempt = phase.attempt + 1;
        this.phase = { name: 'attempting', attempt, first: phase.first, at: now };
        return { restart: { attempt, reason: this._reason(now), byPeer: false } };
      }
      case 'answering': {
        if (this._arrivedSince(phase.at) && this.ice !== 'failed') {
          this.phase = { name: 'healthy' };
          return { healed: { attempts: 1, afterMs: Math.round(now - phase.first), byPeer: true } };
        }
        if (now - phase.at < config.answerWindowMs) return null;
        if (this.ice === 'failed') {
          this.phase = { name: 'gaveUp' };
          return { giveUp: { attempts: 1, reason: `the peer restarted ICE and the connection did not come back within ${config.answerWindowMs / 1000} s` } };
        }
        // Not failed, merely quiet: the offerer keeps trying, or the
        // session ends by other means (signalling).
        this.phase = { name: 'healthy' };
        return null;
      }
      default:
        return null;
    }
  }
}
