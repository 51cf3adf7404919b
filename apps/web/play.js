// Plays any WHEP URL (ours or another server's) with /whep.js:
// /play?url=/whep/live/cam[&token=T] starts at once.
import { WhepPlayer } from '/whep.js';
import { params, showError, showStatus, clearError, pageToken } from '/ui.js';

const page = (window.peerPage = { state: 'idle' });
const video = document.getElementById('video');
const urlInput = document.getElementById('url');
const tokenInput = document.getElementById('token');
urlInput.value = params.get('url') || '';
// A token from the link, already taken out of the address bar (ui.js).
tokenInput.value = pageToken || '';

async function play(url, token) {
  clearError();
  if (page.player) await page.player.stop().catch(() => {});
  const player = new WhepPlayer(url, { token: token || undefined });
  page.player = player;
  page.state = 'connecting';
  showStatus(`Connecting to ${url}…`);
  try {
    video.srcObject = await player.play();
    await player.connected();
    page.state = 'playing';
    showStatus(`Playing ${url}`);
  } catch (err) {
    page.state = 'failed';
    page.error = err.message;
    showStatus('');
    showError(err.message);
  }
}

document.getElementById('form').addEventListener('submit', (event) => {
  event.preventDefault();
  play(urlInput.value, tokenInput.value);
});
document.getElementById('sound').addEventListener('click', () => {
  video.muted = false;
});
document.getElementById('stop').addEventListener('click', async () => {
  if (page.player) page.deleteStatus = await page.player.stop();
  page.state = 'stopped';
  showStatus('Stopped');
});
if (urlInput.value) play(urlInput.value, tokenInput.value);
