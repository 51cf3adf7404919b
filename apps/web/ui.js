// Small page helpers shared by the pages: query parameters, banners, chat.

export const params = new URLSearchParams(location.search);

/** The access token of a join link (`?token=`), taken out of the address
 * bar at once (it grants what the link grants: one screenshot or shared
 * URL away from a leak) and kept for this tab only. */
export const pageToken = (() => {
  const fromLink = params.get('token');
  if (fromLink) {
    params.delete('token');
    const clean = new URL(location.href);
    clean.searchParams.delete('token');
    history.replaceState(null, '', clean);
    sessionStorage.setItem('gst-peer-token', fromLink);
    return fromLink;
  }
  return sessionStorage.getItem('gst-peer-token') || undefined;
})();

/** What to tell a person when connecting failed. */
export function connectError(client, err) {
  if (err.code === 'unauthorized' || err.code === 'forbidden') {
    return `The server refused this page: ${err.message}. Open it with the link (token) you were given.`;
  }
  return `Cannot reach the signalling server at ${client.url}. Is "peer serve" running? (${err.message})`;
}

export function showStatus(text) {
  document.getElementById('status').textContent = text;
}

export function showError(text) {
  const banner = document.getElementById('error');
  banner.textContent = text;
  window.peerPage.error = text;
}

export function clearError() {
  document.getElementById('error').textContent = '';
  window.peerPage.error = null;
}

/** A chat box in `container`; `send(text)` returns whether it went out. */
export function setupChat(container, send) {
  container.innerHTML = '<h3>Chat</h3><ol></ol><form><input name="text" autocomplete="off" placeholder="say something"> <button>Send</button></form>';
  const list = container.querySelector('ol');
  const form = container.querySelector('form');
  const add = (from, text) => {
    const item = document.createElement('li');
    const who = document.createElement('span');
    who.className = 'from';
    who.textContent = from;
    item.append(who, document.createTextNode(text));
    list.append(item);
    list.scrollTop = list.scrollHeight;
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = form.text.value.trim();
    if (!text) return;
    add('me', send(text) ? text : `${text} (not sent: no open channel)`);
    form.text.value = '';
  });
  return { add };
}

/** Text for a data-channel message: strings as they are, binary by size. */
export function describeData(data) {
  return typeof data === 'string' ? data : `[${data.byteLength} bytes]`;
}

/** Signalling outages of `client` in the status line, and in
 * `page.signalling` for scripts: `lost` and `restored` entries. `carryOn()`
 * is the status to show again once back. */
export function followSignalling(client, page, carryOn) {
  page.signalling = [];
  client.addEventListener('signalling-lost', (event) => {
    page.signalling.push({ event: 'lost', reason: event.detail.reason, at: Date.now() });
    showStatus(`Lost the signalling server (${event.detail.reason}): reconnecting. Media already flowing goes on.`);
  });
  client.addEventListener('signalling-restored', (event) => {
    const { afterMs, resumed } = event.detail;
    page.signalling.push({ event: 'restored', afterMs, resumed, id: client.id, at: Date.now() });
    showStatus(`Back on the signalling server after ${(afterMs / 1000).toFixed(1)} s. ${carryOn()}`);
  });
}

/** ICE restarts of `session` in the status line, and in
 * `page.iceRestarts` for scripts. */
export function followIceRestarts(session, page, carryOn) {
  page.iceRestarts = page.iceRestarts || [];
  const record = (event) => page.iceRestarts.push({ event: event.type, session: session.id, ...event.detail, at: Date.now() });
  session.addEventListener('ice-restart-started', (event) => {
    record(event);
    const { attempt, reason, byPeer } = event.detail;
    showStatus(byPeer
      ? `The media path with "${session.peer}" broke: it restarts ICE, this page answers…`
      : `The media path with "${session.peer}" broke (${reason}): restarting ICE, attempt ${attempt}…`);
  });
  session.addEventListener('ice-restart-succeeded', (event) => {
    record(event);
    showStatus(`Media path with "${session.peer}" restored by ICE restart after ${(event.detail.afterMs / 1000).toFixed(1)} s. ${carryOn()}`);
  });
  session.addEventListener('ice-restart-failed', record);
}
