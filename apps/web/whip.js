// gst-peer WHIP publisher (RFC 9725): a MediaStream into any WHIP endpoint
// (ours at /whip/{room}, or another server's). Dependency-free ES module;
// documented in docs/web.md and docs/protocol.md ("WHIP").
//
//   import { WhipPublisher } from '/whip.js';
//   const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
//   const publisher = new WhipPublisher('/whip/live', {token: 'secret'});
//   await publisher.publish(stream);   // resolves once the answer is applied
//   ...
//   await publisher.stop();            // DELETE: the session ends, recordings finalize

/** An HTTP answer other than the one expected; `status` is the HTTP code. */
export class WhipError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class WhipPublisher {
  /**
   * @param {string} endpoint the WHIP endpoint URL (absolute or relative)
   * @param {object} options `token` (Bearer), `iceServers`, `gatherTimeoutMs`
   *   (how long to wait for our candidates before posting: the offer
   *   carries them, so a server need not accept trickle)
   */
  constructor(endpoint, { token, iceServers = [], gatherTimeoutMs = 2000 } = {}) {
    this.endpoint = new URL(endpoint, location.href).href;
    this.token = token;
    this.iceServers = iceServers;
    this.gatherTimeoutMs = gatherTimeoutMs;
    this.pc = null;
    this.resource = null; // the session URL from Location
    this.answer = null; // the answer's SDP, as received
    this.timings = {};
  }

  headers(contentType) {
    const headers = {};
    if (contentType) headers['Content-Type'] = contentType;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** Sends every track of `stream`; resolves when the answer is applied. */
  async publish(stream) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    for (const track of stream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered();
    const started = performance.now();
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: this.headers('application/sdp'),
      body: pc.localDescription.sdp,
    });
    this.timings.postMs = performance.now() - started;
    if (response.status !== 201) {
      const text = (await response.text()).trim();
      pc.close();
      this.pc = null;
      throw new WhipError(response.status, `WHIP ${response.status}: ${text}`);
    }
    const location_ = response.headers.get('Location');
    this.resource = location_ ? new URL(location_, this.endpoint).href : null;
    const answer = await response.text();
    this.answer = answer;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    return this;
  }

  /** Waits until ICE gathering completes, or `gatherTimeoutMs`. */
  gathered() {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== 'complete') return;
        pc.removeEventListener('icegatheringstatechange', done);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        pc.removeEventListener('icegatheringstatechange', done);
        resolve();
      }, this.gatherTimeoutMs);
      pc.addEventListener('icegatheringstatechange', done);
    });
  }

  /** Resolves when the media connection is up (or rejects if it fails). */
  connected(timeoutMs = 10000) {
    const pc = this.pc;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pc.connectionState === 'connected') {
          cleanup();
          resolve();
        } else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
          cleanup();
          reject(new Error(`connection ${pc.connectionState}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`not connected after ${timeoutMs} ms (${pc.connectionState})`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        pc.removeEventListener('connectionstatechange', check);
      };
      pc.addEventListener('connectionstatechange', check);
      check();
    });
  }

  /** DELETE the session and close the connection; the status of the DELETE. */
  async stop() {
    let status = null;
    if (this.resource) {
      const response = await fetch(this.resource, { method: 'DELETE', headers: this.headers() });
      status = response.status;
      this.resource = null;
    }
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    return status;
  }
}
