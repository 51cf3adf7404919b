// Plays any WHEP URL (ours or another server's) with /whep.js:
// /play?url=/whep/live/cam[&token=T] starts at once.
//
// It keeps playing by itself, as a player on a wall screen must: a
// connection that breaks (ICE `failed`, or `disconnected` for 2 s) is
// first healed by an ICE restart in the same session (PATCH); if the
// server refuses it (the session is gone: the producer or the server
// restarted) or it does not connect, a new session is asked for, again
// and again with backoff (250 ms doubling to 5 s, ±25% jitter) while the
// server says there is nothing to play yet (409) or cannot be reached.
// Only a refusal that waiting cannot change (401, 403, 400, or 404
// before anything played) is final.
import { WhepPlayer } from '/whep.js';
import { params, showError, showStatus, clearError, pageToken } from '/ui.js';

/** `disconnected` this long is a broken path (it often comes back alone). */
const DISCONNECTED_GRACE_MS = 2000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;
/** How long an ICE restart or a new session may take to connect. */
const CONNECT_TIMEOUT_MS = 5000;

// `reconnects`: how each break was healed ({how: 'ice-restart' |
// 'new-session', afterMs}), for people and tests.
const page = (window.peerPage = { state: 'idle', reconnects: [] });
const video = document.getElementById('video');
const urlInput = document.getElementById('url');
const tokenInput = document.getElementById('token');
urlInput.value = params.get('url') || '';
// A token from the link, already taken out of the address bar (ui.js).
tokenInput.value = pageToken || '';

/** One play request: replaced (and so cancelled) by the next play or stop. */
let current = null;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const jittered = (ms) => ms * (0.75 + Math.random() * 0.5);

/** Whether waiting can change `err` (network errors have no status). */
function retryable(err, played) {
  const status = err.status;
  if (status === undefined || status === 409 || status === 429 || status >= 500) return true;
  // The stream went away (its producer or the server restarted).
  return status === 404 && played;
}

/** Starts a session and waits until it plays; the player. */
async function connect(run) {
  const player = new WhepPlayer(run.url, { token: run.token || undefined });
  page.player = player;
  try {
    const stream = await player.play();
    await player.connected(CONNECT_TIMEOUT_MS);
    if (run.cancelled) throw new Error('cancelled');
    video.srcObject = stream;
    return player;
  } catch (err) {
    await player.stop().catch(() => {});
    throw err;
  }
}

/** New sessions until one plays, with backoff; null when cancelled or refused. */
async function connectWithRetries(run, played) {
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    if (run.cancelled) return null;
    try {
      return await connect(run);
    } catch (err) {
      if (run.cancelled) return null;
      if (!retryable(err, played)) {
        page.state = 'failed';
        page.error = err.message;
        showStatus('');
        showError(err.message);
        return null;
      }
      page.lastError = err.message;
      showStatus(
        err.status === 409 ? `Waiting for ${run.url} to be published…` : `Reconnecting to ${run.url}…`,
      );
    }
    await sleep(jittered(backoff));
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

/** Resolves when `player`'s connection breaks: failed, closed by the
 * peer, or disconnected for the grace. */
function broken(player) {
  const pc = player.pc;
  return new Promise((resolve) => {
    let timer = null;
    const check = () => {
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed') {
        done();
      } else if (state === 'disconnected') {
        if (!timer) timer = setTimeout(done, DISCONNECTED_GRACE_MS);
      } else if (timer) {
        clearTimeout(timer);
        timer = null;
      }
    };
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', check);
      resolve();
    };
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

/** ICE restart in the same session; whether it connected. */
async function restartIce(player) {
  try {
    await player.restartIce();
    await player.connected(CONNECT_TIMEOUT_MS);
    return true;
  } catch (err) {
    page.lastError = err.message;
    return false;
  }
}

async function keepPlaying(run) {
  let player = await connectWithRetries(run, false);
  while (player && !run.cancelled) {
    page.state = 'playing';
    clearError();
    showStatus(`Playing ${run.url}`);
    await broken(player);
    // Stopped from outside (player.stop() leaves no connection): not a break.
    if (run.cancelled || !player.pc) return;
    const brokeAt = performance.now();
    page.state = 'reconnecting';
    showStatus(`Connection lost: reconnecting to ${run.url}…`);
    if (await restartIce(player)) {
      page.reconnects.push({ how: 'ice-restart', afterMs: Math.round(performance.now() - brokeAt) });
      continue;
    }
    await player.stop().catch(() => {});
    player = await connectWithRetries(run, true);
    if (player) {
      page.reconnects.push({ how: 'new-session', afterMs: Math.round(performance.now() - brokeAt) });
    }
  }
}

async function play(url, token) {
  await stop();
  clearError();
  const run = { url, token, cancelled: false };
  current = run;
  page.state = 'connecting';
  showStatus(`Connecting to ${url}…`);
  await keepPlaying(run);
}

async function stop() {
  if (current) current.cancelled = true;
  current = null;
  if (page.player) page.deleteStatus = await page.player.stop().catch(() => null);
}

document.getElementById('form').addEventListener('submit', (event) => {
  event.preventDefault();
  play(urlInput.value, tokenInput.value);
});
document.getElementById('sound').addEventListener('click', () => {
  video.muted = false;
});
document.getElementById('stop').addEventListener('click', async () => {
  await stop();
  page.state = 'stopped';
  showStatus('Stopped');
});
if (urlInput.value) play(urlInput.value, tokenInput.value);
