import { PeerClient } from '/peer.js';
import { StatsPanel, followStats } from '/stats.js';
import { params, showError, showStatus, clearError, setupChat, describeData, pageToken, connectError, followSignalling, followIceRestarts } from '/ui.js';
import { drawAnalysis } from '/analysis.js';

const room = params.get('room') || 'default';
let producer = params.get('producer');
const video = document.getElementById('video');
const page = (window.peerPage = { state: 'connecting', room, messages: [], analysis: [] });

const client = new PeerClient({
  id: params.get('id') || undefined,
  token: pageToken,
  // ?relay=1: only through the TURN server the signalling server hands out.
  iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
});
page.client = client;
try {
  await client.connect();
} catch (err) {
  page.state = err.code === 'unauthorized' || err.code === 'forbidden' ? 'refused' : 'unreachable';
  showStatus('');
  showError(connectError(client, err));
  throw err;
}
client.addEventListener('close', (event) => {
  page.state = 'disconnected';
  showError(`Lost the signalling server: ${event.detail}`);
});
// Once watching, what to show again after an outage.
let watching = () => `Connecting to "${producer}"…`;
followSignalling(client, page, () => watching());

await client.join(room);
if (!producer) {
  const first = client.producers()[0];
  if (first) producer = first.id;
}
if (!producer) {
  showStatus(`Room "${room}" has no producer yet; waiting for one…`);
  producer = await new Promise((resolve) => {
    const onPeer = (event) => {
      if (event.detail.streams && event.detail.streams.length) {
        client.removeEventListener('peer-joined', onPeer);
        client.removeEventListener('peer-updated', onPeer);
        resolve(event.detail.id);
      }
    };
    client.addEventListener('peer-joined', onPeer);
    client.addEventListener('peer-updated', onPeer);
  });
}
document.getElementById('title').textContent = `${producer} in ${room}`;
const path = location.pathname === '/cursors' ? '/cursors' : '/watch';
history.replaceState(null, '', `${path}?room=${encodeURIComponent(room)}&producer=${encodeURIComponent(producer)}`);
showStatus(client.peers.has(producer) ? `Connecting to "${producer}"…` : `Waiting for producer "${producer}" to start in room "${room}"…`);

client.addEventListener('peer-left', (event) => {
  if (event.detail === producer) {
    page.state = 'producer-gone';
    showError(`The producer "${producer}" left the room.`);
  }
});

/** Asks for the session; asked again once back when signalling was lost
 * before the server answered. */
async function startWatching() {
  for (;;) {
    try {
      // ?offer=1: this page makes the offer (as a WHEP player would).
      return await client.watch(producer, { wait: true, offer: params.get('offer') === '1' });
    } catch (err) {
      if (err.code !== 'closed' || client.signalling === 'closed') throw err;
      await new Promise((resolve) => client.addEventListener('signalling-restored', resolve, { once: true }));
    }
  }
}
const session = await startWatching();
page.session = session;
watching = () => `Watching "${producer}" in room "${room}".`;
followIceRestarts(session, page, () => watching());
video.srcObject = session.stream;
session.addEventListener('track', () => {
  video.srcObject = session.stream;
  video.play().catch(() => {});
});
session.addEventListener('ended', (event) => {
  page.state = 'ended';
  showError(`The stream from "${producer}" ended: ${event.detail}`);
});
session.addEventListener('state', (event) => {
  // Once: after an ICE restart the status line tells that story.
  if (event.detail === 'connected' && !page.connectedOnce) {
    page.connectedOnce = true;
    showStatus(watching());
  }
});
video.addEventListener('playing', () => {
  page.state = 'playing';
  clearError();
});

const chat = setupChat(document.getElementById('chat'), (text) => session.send('chat', text));
session.addEventListener('message', (event) => {
  const { label, data } = event.detail;
  page.messages.push({ label, data });
  if (label === 'audiotap') {
    const report = JSON.parse(data);
    page.analysis.push(report);
    if (page.analysis.length > 100) page.analysis.shift();
    document.getElementById('analysis').hidden = false;
    drawAnalysis(document.getElementById('meter'), report);
  } else {
    chat.add(producer, describeData(data));
  }
});

const sound = document.getElementById('sound');
sound.addEventListener('click', () => {
  video.muted = !video.muted;
  sound.textContent = video.muted ? 'Turn sound on' : 'Sound is on (click to mute)';
  video.play().catch(() => {});
});

followStats(session, new StatsPanel(document.getElementById('stats')));

// /cursors: the pointer over the video is drawn into a canvassrc broadcast.
if (location.pathname === '/cursors' || params.get('cursors')) {
  const { shareCursor } = await import('/cursors.js');
  page.cursor = shareCursor(video, session, client.id);
  showStatus(`Watching "${producer}": move the pointer over the picture to draw your cursor into it.`);
}
