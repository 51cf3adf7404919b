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
