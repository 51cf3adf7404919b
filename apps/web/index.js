import { PeerClient } from '/peer.js';
import { showError, showStatus, clearError, pageToken, connectError } from '/ui.js';

window.peerPage = { rooms: [] };
const body = document.getElementById('rooms');

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  return a;
}

function render(rooms) {
  body.replaceChildren();
  for (const room of rooms) {
    const row = body.insertRow();
    row.insertCell().textContent = room.room;
    row.insertCell().textContent = room.peers;
    const producers = row.insertCell();
    for (const producer of room.producers) {
      const title = producer.meta && producer.meta.title ? ` (${producer.meta.title})` : '';
      producers.append(link(`/watch?room=${encodeURIComponent(room.room)}&producer=${encodeURIComponent(producer.id)}`, `▶ ${producer.id}${title}`), ' ');
    }
    if (!room.producers.length) producers.textContent = 'none yet';
    row.insertCell().append(link(`/publish?room=${encodeURIComponent(room.room)}`, 'publish here'));
  }
  showStatus(rooms.length ? `${rooms.length} room(s). Click a producer to watch it.` : 'No rooms yet: publish something, or start a pipeline with peersink.');
}

document.getElementById('go').addEventListener('submit', (event) => {
  event.preventDefault();
  location.href = `/publish?room=${encodeURIComponent(event.target.room.value)}`;
});

const client = new PeerClient({ token: pageToken });
try {
  await client.connect();
  const refresh = async () => {
    window.peerPage.rooms = await client.listRooms();
    render(window.peerPage.rooms);
  };
  await refresh();
  setInterval(refresh, 2000);
  client.addEventListener('close', (event) => showError(`Lost the signalling server: ${event.detail}. Reload when it is back.`));
  clearError();
} catch (err) {
  showStatus('');
  showError(err.code === 'forbidden' ? `Listing rooms needs an admin token: ${err.message}` : connectError(client, err));
}
