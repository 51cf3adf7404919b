// gst-peer WHEP player (draft-ietf-wish-whep): plays any WHEP endpoint
// (ours at /whep/{room}[/{producer}], or another server's) into a
// MediaStream. Dependency-free ES module, beside /whip.js; documented in
// docs/web.md and docs/protocol.md ("WHEP").
//
//   import { WhepPlayer } from '/whep.js';
//   const player = new WhepPlayer('/whep/live/cam', {token: 'secret'});
//   video.srcObject = await player.play();   // resolves once the answer is applied
//   await player.restartIce();               // PATCH with new credentials, same session
//   await player.stop();                     // DELETE

/** An HTTP answer other than the one expected; `status` is the HTTP code. */
export class WhepError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The `a=<name>:` value of `sdp`. */
function attribute(sdp, name) {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith(`a=${name}:`));
  return line ? line.slice(name.length + 3).trim() : null;
}

/** An sdpfrag (RFC 8840): our credentials, the first section's mid and
 * candidates, as an ICE restart sends them. */
function fragment(sdp) {
  const lines = sdp.split(/\r?\n/);
  const out = [`a=ice-ufrag:${attribute(sdp, 'ice-ufrag')}`, `a=ice-pwd:${attribute(sdp, 'ice-pwd')}`];
  const first = lines.findIndex((l) => l.startsWith('m='));
  if (first >= 0) {
    const end = lines.findIndex((l, i) => i > first && l.startsWith('m='));
    const section = lines.slice(first, end < 0 ? lines.length : end);
    out.push(`m=${section[0].slice(2).split(' ')[0]} 9 UDP/TLS/RTP/SAVPF 0`);
    const mid = section.find((l) => l.startsWith('a=mid:'));
    if (mid) out.push(mid);
    out.push(...section.filter((l) => l.startsWith('a=candidate:')));
  }
  return out.join('\r\n') + '\r\n';
}

/** `sdp` with the credentials and candidates of an sdpfrag answer. */
function withFragment(sdp, frag) {
  const ufrag = attribute(frag, 'ice-ufrag');
  const pwd = attribute(frag, 'ice-pwd');
  const candidates = frag.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
  const lines = sdp.split(/\r?\n/).filter((l) => l && !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates');
  const out = [];
  let sections = 0;
  for (const line of lines) {
    if (line.startsWith('m=')) sections += 1;
    if (line.startsWith('a=ice-ufrag:')) out.push(`a=ice-ufrag:${ufrag}`);
    else if (line.startsWith('a=ice-pwd:')) out.push(`a=ice-pwd:${pwd}`);
    else out.push(line);
    // With BUNDLE the first section's transport carries everything.
    if (sections === 1 && line.startsWith('a=mid:')) out.push(...candidates);
  }
  return out.join('\r\n') + '\r\n';
}

export class WhepPlayer extends EventTarget {
  /**
   * @param {string} endpoint the WHEP endpoint URL (absolute or relative)
   * @param {object} options `token` (Bearer), `iceServers`, `gatherTimeoutMs`
   *   (how long to wait for our candidates before posting: the offer
   *   carries them, so a server need not accept trickle)
   */
  constructor(endpoint, { token, iceServers = [], gatherTimeoutMs = 2000 } = {}) {
    super();
    this.endpoint = new URL(endpoint, location.href).href;
    this.token = token;
    this.iceServers = iceServers;
    this.gatherTimeoutMs = gatherTimeoutMs;
    this.pc = null;
    this.resource = null; // the session URL from Location
    this.etag = null;
    this.answer = null; // the remote description's SDP, as applied
    this.stream = new MediaStream();
    this.timings = {};
  }

  headers(contentType, ifMatch) {
    const headers = {};
    if (contentType) headers['Content-Type'] = contentType;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (ifMatch) headers['If-Match'] = ifMatch;
    return headers;
  }

  /** Offers to receive audio and video; resolves with the MediaStream once
   * the answer (or, after a 406, our answer to the server's offer) is applied. */
  async play() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addEventListener('track', (event) => {
      this.stream.addTrack(event.track);
      this.dispatchEvent(new CustomEvent('track', { detail: event.track }));
    });
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered();
    const started = performance.now();
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: this.headers('application/sdp'),
      body: pc.localDescription.sdp,
    });
    this.timings.postMs = performance.now() - started;
    const body = await response.text();
    const location_ = response.headers.get('Location');
    this.resource = location_ ? new URL(location_, response.url || this.endpoint).href : null;
    this.etag = response.headers.get('ETag');
    if (response.status === 201) {
      this.answer = body;
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
    } else if (response.status === 406 && body.startsWith('v=0')) {
      // The server offers instead (WHEP -03): answer it by PATCH.
      await pc.setLocalDescription({ type: 'rollback' });
      await pc.setRemoteDescription({ type: 'offer', sdp: body });
      await pc.setLocalDescription(await pc.createAnswer());
      await this.gathered();
      const patched = await fetch(this.resource, {
        method: 'PATCH',
        headers: this.headers('application/sdp', this.etag),
        body: pc.localDescription.sdp,
      });
      if (!patched.ok) throw this.failed(patched.status, await patched.text());
      this.answer = body;
    } else {
      throw this.failed(response.status, body);
    }
    return this.stream;
  }

  failed(status, text) {
    if (this.pc) this.pc.close();
    this.pc = null;
    const retry = status === 409 ? ' (nothing published yet: retry later)' : '';
    return new WhepError(status, `WHEP ${status}: ${text.trim()}${retry}`);
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

  /** ICE restart in the same session: new credentials by PATCH
   * (If-Match "*"), the server's new ones back; the HTTP status. */
  async restartIce() {
    const pc = this.pc;
    pc.restartIce();
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await this.gathered();
    const response = await fetch(this.resource, {
      method: 'PATCH',
      headers: this.headers('application/trickle-ice-sdpfrag', '"*"'),
      body: fragment(pc.localDescription.sdp),
    });
    const body = await response.text();
    if (response.status !== 200) {
      await pc.setLocalDescription({ type: 'rollback' });
      throw new WhepError(response.status, `ICE restart refused: ${response.status} ${body.trim()}`);
    }
    this.etag = response.headers.get('ETag') || this.etag;
    this.answer = withFragment(this.answer, body);
    await pc.setRemoteDescription({ type: 'answer', sdp: this.answer });
    return response.status;
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
