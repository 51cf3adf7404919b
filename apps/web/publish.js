import { PeerClient } from '/peer.js';
import { StatsPanel, followStats } from '/stats.js';
import { params, showError, showStatus, clearError, setupChat, describeData, pageToken, connectError, followSignalling, followIceRestarts } from '/ui.js';

const room = params.get('room') || 'default';
const $ = (id) => document.getElementById(id);
const page = (window.peerPage = { state: 'idle', room, messages: [], canvasColor: null });
document.getElementById('title').textContent = `room ${room}`;

// Settings can come from the address, so a configured page can be shared.
for (const [param, id] of [['source', 'source'], ['size', 'size'], ['fps', 'fps']]) {
  if (params.get(param)) $(id).value = params.get(param);
}
if (params.get('width') && params.get('height')) {
  const size = `${params.get('width')}x${params.get('height')}`;
  if (![...$('size').options].some((o) => o.value === size)) $('size').add(new Option(size, size));
  $('size').value = size;
}
if (params.get('color')) page.canvasColor = `#${params.get('color')}`;

let client = null;
let publisher = null;
let stream = null;
let statsStarted = false;

function constraints() {
  const [width, height] = $('size').value.split('x').map(Number);
  const frameRate = Number($('fps').value);
  const camera = $('camera').value;
  return { width: { exact: width }, height: { exact: height }, frameRate, ...(camera ? { deviceId: { exact: camera } } : {}) };
}

function explain(err, what) {
  if (err.name === 'NotAllowedError') return `Permission to use the ${what} was denied. Allow it in the browser's site settings and try again.`;
  if (err.name === 'NotFoundError') return `No ${what} was found.`;
  if (err.name === 'NotReadableError') return `The ${what} is in use by another program.`;
  if (err.name === 'OverconstrainedError') return `The ${what} cannot do ${$('size').value} at ${$('fps').value} fps.`;
  if (!window.isSecureContext) return `The browser allows the ${what} only on localhost or HTTPS: start the server with "peer serve --tls".`;
  return `Cannot use the ${what}: ${err.message}`;
}

function drawCanvas(canvas) {
  const context = canvas.getContext('2d');
  const started = performance.now();
  const draw = () => {
    const t = (performance.now() - started) / 1000;
    if (page.canvasColor) {
      context.fillStyle = page.canvasColor;
      context.fillRect(0, 0, canvas.width, canvas.height);
    } else {
      context.fillStyle = '#203040';
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.fillStyle = '#3fa7ff';
      context.beginPath();
      context.arc(canvas.width / 2 + Math.cos(t) * canvas.width / 3, canvas.height / 2 + Math.sin(t * 1.3) * canvas.height / 3, 60, 0, Math.PI * 2);
      context.fill();
      context.fillStyle = '#fff';
      context.font = '48px sans-serif';
      context.fillText(new Date().toLocaleTimeString(), 40, 80);
    }
    page.canvasTimer = requestAnimationFrame(draw);
  };
  // requestAnimationFrame stops in hidden tabs; a timer keeps frames coming.
  draw();
  page.canvasInterval = setInterval(() => { cancelAnimationFrame(page.canvasTimer); draw(); }, 1000 / Number($('fps').value));
}

async function capture() {
  const source = $('source').value;
  const micChoice = $('microphone').value;
  const audio = micChoice === 'none' ? false : micChoice ? { deviceId: { exact: micChoice } } : true;
  if (source === 'camera') {
    try {
      return await navigator.mediaDevices.getUserMedia({ video: constraints(), audio });
    } catch (err) {
      throw new Error(explain(err, 'camera or microphone'));
    }
  }
  if (source === 'screen') {
    try {
      return await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: Number($('fps').value) }, audio: false });
    } catch (err) {
      throw new Error(err.name === 'NotAllowedError' ? 'Screen sharing was cancelled or refused.' : explain(err, 'screen'));
    }
  }
  const canvas = $('canvas');
  const [width, height] = $('size').value.split('x').map(Number);
  canvas.width = width;
  canvas.height = height;
  drawCanvas(canvas);
  const captured = canvas.captureStream(Number($('fps').value));
  if (audio) {
    try {
      const mic = await navigator.mediaDevices.getUserMedia({ audio });
      for (const track of mic.getAudioTracks()) captured.addTrack(track);
    } catch (err) {
      showError(explain(err, 'microphone') + ' Publishing the canvas without sound.');
    }
  }
  return captured;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [['videoinput', $('camera')], ['audioinput', $('microphone')]]) {
    const current = select.value;
    for (const option of [...select.options]) if (option.value && option.value !== 'none') option.remove();
    devices.filter((d) => d.kind === kind).forEach((device, i) => {
      select.add(new Option(device.label || `${kind === 'videoinput' ? 'camera' : 'microphone'} ${i + 1}`, device.deviceId));
    });
    select.value = current;
  }
  page.devices = devices.map((d) => ({ kind: d.kind, label: d.label, id: d.deviceId }));
}

async function start() {
  clearError();
  $('start').disabled = true;
  try {
    stream = await capture();
    page.stream = stream;
    $('preview').srcObject = stream;
    await listDevices().catch(() => {});
    if (!client) {
      client = new PeerClient({
  id: params.get('id') || undefined,
  token: pageToken,
  // ?relay=1: only through the TURN server the signalling server hands out.
  iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
});
      page.client = client;
      try {
        await client.connect();
      } catch (err) {
        page.refused = err.code === 'unauthorized' || err.code === 'forbidden';
        throw new Error(connectError(client, err));
      }
      client.addEventListener('close', (event) => showError(`Lost the signalling server: ${event.detail}`));
      followSignalling(client, page, publishing);
      await client.join(room);
    }
    publisher = await client.publish(stream, { dataChannels: ['chat'] });
    page.publisher = publisher;
    publisher.addEventListener('session', (event) => {
      const session = event.detail;
      showStatus(publishing());
      followIceRestarts(session, page, publishing);
      session.addEventListener('message', (message) => {
        page.messages.push({ from: session.peer, ...message.detail });
        chat.add(session.peer, describeData(message.detail.data));
      });
      session.addEventListener('ended', () => showStatus(publishing()));
      if (!statsStarted) {
        statsStarted = true;
        followStats(session, new StatsPanel($('stats')));
      }
    });
    page.state = 'publishing';
    const watch = `${location.origin}/watch?room=${encodeURIComponent(room)}&producer=${encodeURIComponent(client.id)}`;
    $('share').innerHTML = '';
    const link = document.createElement('a');
    link.href = watch;
    link.textContent = watch;
    $('share').append('Watch at ', link);
    showStatus(publishing());
    for (const id of ['stop', 'mute-video', 'mute-audio']) $(id).disabled = false;
  } catch (err) {
    page.state = 'failed';
    showError(err.message);
    $('start').disabled = false;
  }
}

/** The status line while publishing. */
function publishing() {
  if (!publisher) return '';
  const viewers = publisher.sessions.size;
  return `Publishing as "${client.id}" in room "${room}": ${viewers ? `${viewers} viewer(s)` : 'no viewers yet'}.`;
}

function stop() {
  if (publisher) publisher.stop();
  clearInterval(page.canvasInterval);
  publisher = null;
  page.state = 'idle';
  $('start').disabled = false;
  for (const id of ['stop', 'mute-video', 'mute-audio']) $(id).disabled = true;
  showStatus('Stopped.');
}

/** Switches the camera while live: the new track replaces the old one in
 * every session, without renegotiating. */
async function switchCamera() {
  if (!publisher || $('source').value !== 'camera') return;
  try {
    const fresh = await navigator.mediaDevices.getUserMedia({ video: constraints() });
    const track = fresh.getVideoTracks()[0];
    await publisher.replaceTrack(track);
    $('preview').srcObject = publisher.stream;
    page.replacedTracks = (page.replacedTracks || 0) + 1;
  } catch (err) {
    showError(explain(err, 'camera'));
  }
}
page.switchCamera = switchCamera;

const chat = setupChat($('chat'), (text) => (publisher ? publisher.send('chat', text) > 0 : false));
$('start').addEventListener('click', start);
$('stop').addEventListener('click', stop);
$('camera').addEventListener('change', switchCamera);
for (const kind of ['video', 'audio']) {
  const button = $(`mute-${kind}`);
  let muted = false;
  button.addEventListener('click', () => {
    muted = !muted;
    publisher.setEnabled(kind, !muted);
    button.textContent = `${muted ? 'Unmute' : 'Mute'} ${kind}`;
  });
}
if (params.get('autostart')) start();
