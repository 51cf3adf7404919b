// The PeerJS calling page: the npm `peerjs` client (served from this
// server, as npm ships it) talking to this server's PeerServer front end,
// like the PeerJS basic example: call or connect a peer by id, with chat.
//
// Parameters: ?id=ME (else the server picks one) &peer=ID &key=K &path=/P/
// &host=H &port=P &secure=0|1 (another PeerServer; default: this one)
// &call=1 (call `peer` at once) &connect=1 (open the chat at once)
// &serialization=binary|json|raw &answer=0 (do not answer calls).

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const page = (window.callPage = { state: "starting", error: null, calls: [], connections: [], received: [] });

function status(text) {
  page.state = text;
  $("status").textContent = text;
}

function fail(text) {
  page.error = String(text);
  $("error").textContent = page.error;
}

function show(from, text) {
  const item = document.createElement("li");
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from;
  item.append(who, document.createTextNode(text));
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function describe(data) {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return `(${data.byteLength} bytes)`;
  if (ArrayBuffer.isView(data)) return `(${data.byteLength} bytes)`;
  return JSON.stringify(data);
}

if (!window.Peer) {
  fail(window.peerjsMissing || "the peerjs client did not load");
  throw new Error("no peerjs");
}

const options = {
  host: params.get("host") || location.hostname,
  port: Number(params.get("port") || location.port || (location.protocol === "https:" ? 443 : 80)),
  secure: params.has("secure") ? params.get("secure") === "1" : location.protocol === "https:",
  path: params.get("path") || "/",
  key: params.get("key") || "peerjs",
  config: { iceServers: [] },
};
const peer = new Peer(params.get("id") || undefined, options);
page.peer = peer;
if (params.get("peer")) $("peer").value = params.get("peer");
if (params.get("serialization")) $("serialization").value = params.get("serialization");
if (params.get("answer") === "0") $("answer").checked = false;

let localStream = null;
async function camera() {
  if (!localStream) {
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    $("local").srcObject = localStream;
  }
  return localStream;
}

function watchCall(call) {
  page.calls.push(call);
  call.on("stream", (stream) => {
    $("remote").srcObject = stream;
    page.remoteStream = stream;
    status(`in a call with ${call.peer}`);
  });
  call.on("close", () => status(`call with ${call.peer} ended`));
  call.on("error", (err) => fail(`call: ${err.message || err}`));
}

function watchConnection(conn) {
  page.connections.push(conn);
  conn.on("open", () => status(`chat with ${conn.peer} open (${conn.serialization})`));
  conn.on("data", (data) => {
    page.received.push({ from: conn.peer, label: conn.label, data });
    show(conn.peer, describe(data));
  });
  conn.on("close", () => status(`chat with ${conn.peer} closed`));
  conn.on("error", (err) => fail(`connection: ${err.message || err}`));
}

peer.on("open", (id) => {
  $("me").textContent = id;
  status(`connected as ${id}`);
  if (params.get("call") === "1") $("call").click();
  if (params.get("connect") === "1") $("connect").click();
});
peer.on("call", async (call) => {
  if (!$("answer").checked) return;
  try {
    call.answer(await camera());
    watchCall(call);
    status(`answered ${call.peer}`);
  } catch (err) {
    fail(`cannot answer: ${err.message || err}`);
  }
});
peer.on("connection", watchConnection);
peer.on("error", (err) => fail(`${err.type || "error"}: ${err.message || err}`));
peer.on("disconnected", () => status("disconnected from the server"));

$("call").onclick = async () => {
  try {
    watchCall(peer.call($("peer").value, await camera()));
    status(`calling ${$("peer").value}…`);
  } catch (err) {
    fail(`cannot call: ${err.message || err}`);
  }
};
$("connect").onclick = () => {
  watchConnection(peer.connect($("peer").value, { reliable: true, serialization: $("serialization").value }));
};
$("hangup").onclick = () => {
  for (const call of page.calls) call.close();
  for (const conn of page.connections) conn.close();
};
$("chat").onsubmit = (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text) return;
  for (const conn of page.connections) if (conn.open) conn.send(text);
  show("me", text);
  $("text").value = "";
};
