// The customer chat inside the widget iframe: start form, then one
// WebSocket to /ws/customer that resumes the conversation, replays missed
// events and reconnects with backoff. All text goes in through textContent.

const params = new URLSearchParams(location.search);
// With a site, the server picks the site's default queue unless one is named.
const site = params.get("site") || "";
const queue = params.get("queue") || (site ? "" : "Support");
const storageKey = `switchboard-chat:${site ? `site:${site}` : queue}`;
// The identity token the host page's backend signed (Switchboard.identify);
// kept in memory only and sent once, when the chat starts.
let identityToken = null;
const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"), name: $("name"), email: $("email"), startError: $("start-error"),
  chat: $("chat"), status: $("status"), messages: $("messages"), typing: $("typing"),
  composer: $("composer"), text: $("text"), send: $("send"), end: $("end"), newChat: $("new-chat"),
  minimise: $("minimise"),
};

// {conversation_id, token, last_seq, pending: [{client_msg_id, text}]}, kept
// in sessionStorage so a reload of the host page resumes the chat.
let session = load();
let ws = null;
let resumed = false;
let ended = false;
let lastSeq = 0; // highest seq shown on this page (a fresh page replays everything)
let retries = 0;
let retryTimer = null;
let pingTimer = null;
let typingSent = false;
let typingTimer = null;
let theirTypingTimer = null;
const bubbles = new Map(); // client_msg_id -> <li> of our own messages

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(storageKey));
    return s && s.conversation_id && s.token ? { last_seq: 0, pending: [], ...s } : null;
  } catch {
    return null;
  }
}

function save() {
  try {
    if (session) sessionStorage.setItem(storageKey, JSON.stringify(session));
    else sessionStorage.removeItem(storageKey);
  } catch { /* storage blocked: the chat still works until a reload */ }
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain-http deployments get this.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

// ---- views ----

function showStart(error = "") {
  ui.chat.hidden = true;
  ui.start.hidden = false;
  ui.startError.textContent = error;
  ui.name.focus();
}

function showChat() {
  ui.start.hidden = true;
  ui.chat.hidden = false;
  ui.messages.replaceChildren();
  bubbles.clear();
  lastSeq = 0;
  ended = false;
  setComposer(true);
  for (const item of session.pending) addOwnBubble(item);
  setStatus("Connecting…");
  ui.text.focus();
}

function setStatus(text) {
  ui.status.textContent = text;
  ui.status.hidden = !text;
}

function setComposer(enabled) {
  ui.text.disabled = !enabled;
  ui.send.disabled = !enabled;
  ui.end.hidden = !enabled;
  ui.newChat.hidden = enabled;
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function bubble(role, name, text, at) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.textContent = name;
  const when = document.createElement("time");
  if (at) when.textContent = timeOf(at);
  meta.append(who, when);
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text;
  li.append(meta, body);
  return li;
}

function note(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  ui.messages.append(li);
  scrollDown();
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function addOwnBubble(item) {
  const li = bubble("customer", "You", item.text);
  li.classList.add("pending");
  li.querySelector("time").textContent = "Sending…";
  bubbles.set(item.client_msg_id, li);
  ui.messages.append(li);
  scrollDown();
}

function delivered(id, at) {
  session.pending = session.pending.filter((p) => p.client_msg_id !== id);
  save();
  const li = bubbles.get(id);
  if (!li) return;
  li.classList.remove("pending", "failed");
  li.querySelector("time").textContent = at ? timeOf(at) : "Sent";
}

function failed(id, message) {
  session.pending = session.pending.filter((p) => p.client_msg_id !== id);
  save();
  const li = bubbles.get(id);
  if (!li) return;
  li.classList.remove("pending");
  li.classList.add("failed");
  li.querySelector("time").textContent = `Not sent: ${message}`;
}

// ---- connection ----

function connect() {
  clearTimeout(retryTimer);
  const url = new URL("/ws/customer", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  ws = socket;
  resumed = false;
  socket.addEventListener("open", () => {
    const { conversation_id, token } = session;
    socket.send(JSON.stringify({ type: "resume", conversation_id, token, last_seq: lastSeq }));
  });
  socket.addEventListener("message", (e) => {
    if (ws !== socket) return;
    try {
      handle(JSON.parse(e.data));
    } catch (err) {
      console.error("bad frame", err);
    }
  });
  socket.addEventListener("close", () => {
    if (ws !== socket) return;
    ws = null;
    resumed = false;
    clearInterval(pingTimer);
    if (session && !ended) reconnectLater();
  });
}

function reconnectLater() {
  const delay = Math.min(30000, 1000 * 2 ** retries) * (0.5 + Math.random() / 2);
  retries += 1;
  setStatus("Connection lost. Reconnecting…");
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function handle(msg) {
  switch (msg.type) {
    case "resumed": {
      resumed = true;
      retries = 0;
      clearInterval(pingTimer);
      pingTimer = setInterval(() => send({ type: "ping" }), 25000);
      const state = msg.conversation.state;
      if (state === "ended" || state === "abandoned") {
        setEnded();
      } else {
        setStatus(state === "active" ? "" : "Waiting for an agent…");
        session.pending.forEach(transmit);
      }
      break;
    }
    case "event":
      if (msg.seq <= lastSeq) return; // already shown
      lastSeq = msg.seq;
      session.last_seq = msg.seq;
      save();
      showEvent(msg);
      break;
    case "ack":
      delivered(msg.client_msg_id);
      break;
    case "queue_position":
      setStatus(queueText(msg.position, msg.estimated_wait_secs));
      break;
    case "typing":
      if (msg.author.role !== "customer") theirTyping(msg.author.name, msg.typing);
      break;
    case "error":
      handleError(msg);
      break;
    case "shutting_down":
      setStatus("The server is restarting. Reconnecting…");
      break;
    default:
      break; // pong and anything newer
  }
}

function queueText(position, waitSecs) {
  let text = `You are number ${position} in the queue.`;
  if (waitSecs != null) {
    text += waitSecs < 60 ? " Estimated wait: under a minute." : ` Estimated wait: about ${Math.round(waitSecs / 60)} min.`;
  }
  return text;
}

function showEvent(e) {
  if (e.kind === "message") {
    const own = e.author.role === "customer" && bubbles.get(e.client_msg_id);
    if (own) {
      ui.messages.append(own); // move into log order
      delivered(e.client_msg_id, e.at);
    } else {
      const name = e.author.role === "customer" ? "You" : e.author.name || "Support";
      ui.messages.append(bubble(e.author.role, name, e.text, e.at));
    }
    if (e.author.role === "agent") theirTyping(e.author.name, false);
    scrollDown();
    return;
  }
  note(e.text);
  if (e.kind === "joined") setStatus("");
  if (e.kind === "ended") setEnded();
}

function handleError(msg) {
  if (msg.code === "not_found" && !resumed) {
    // The stored conversation is gone (or its token is wrong): start over.
    session = null;
    save();
    ws?.close();
    ws = null;
    showStart("Your previous chat is no longer available. You can start a new one.");
  } else if (msg.code === "conversation_ended") {
    setEnded();
  } else if (msg.code === "unavailable") {
    // The server asks us to retry; pending messages stay pending.
    setStatus("The service is busy. Retrying…");
    if (resumed) setTimeout(() => session?.pending.forEach(transmit), 3000);
    else ws?.close(); // resume failed: reconnect with backoff
  } else if (msg.client_msg_id) {
    failed(msg.client_msg_id, msg.message);
  } else {
    setStatus(`Error: ${msg.message}`);
  }
}

function theirTyping(name, typing) {
  clearTimeout(theirTypingTimer);
  ui.typing.textContent = typing ? `${name} is typing…` : "";
  if (typing) theirTypingTimer = setTimeout(() => (ui.typing.textContent = ""), 10000);
}

function setEnded() {
  ended = true;
  clearTimeout(retryTimer);
  stopTyping();
  theirTyping("", false);
  for (const p of [...session.pending]) failed(p.client_msg_id, "the chat has ended");
  setComposer(false);
  setStatus("This chat has ended.");
  ui.newChat.focus();
}

// ---- composing ----

function transmit(item) {
  if (resumed) send({ type: "send", client_msg_id: item.client_msg_id, text: item.text });
}

function sendMessage() {
  const text = ui.text.value.trim();
  if (!text || ended || !session) return;
  const item = { client_msg_id: newId(), text };
  session.pending.push(item);
  save();
  addOwnBubble(item);
  ui.text.value = "";
  stopTyping();
  transmit(item);
}

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && resumed) send({ type: "typing", typing: false });
  typingSent = false;
}

ui.text.addEventListener("input", () => {
  if (!ui.text.value.trim()) return stopTyping();
  if (!typingSent && resumed) typingSent = send({ type: "typing", typing: true });
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 4000);
});
ui.text.addEventListener("blur", stopTyping);
ui.text.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendMessage();
  }
});
ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  sendMessage();
});

ui.end.addEventListener("click", () => {
  if (!confirm("End this chat?")) return;
  if (!resumed || !send({ type: "end" })) setStatus("Not connected. Try again in a moment.");
});

ui.newChat.addEventListener("click", () => {
  const old = ws;
  ws = null;
  old?.close();
  session = null;
  save();
  showStart();
});

function startRequest() {
  const request = { name: ui.name.value, email: ui.email.value };
  if (site) request.site = site;
  if (queue) request.queue = queue;
  if (site && identityToken) request.identity_token = identityToken;
  return request;
}

function startFailure(status, body) {
  if (status === 404 || status === 403) return "Chat is not available right now.";
  // The site requires a signed identity and the token was missing or stale.
  if (status === 401) return "We could not confirm who you are. Please reload the page and try again.";
  return body.message || `Could not start the chat (${status}).`;
}

// The host page hands over the identity token (widget.js posts it to this
// frame only, by our origin). A forged token gains nothing: the server
// verifies the signature.
window.addEventListener("message", (e) => {
  if (window.parent === window || e.source !== window.parent) return;
  if (e.data && e.data.type === "switchboard:identify" && typeof e.data.token === "string") {
    identityToken = e.data.token;
  }
});

ui.start.addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = ui.start.querySelector("button[type=submit]");
  button.disabled = true;
  ui.startError.textContent = "";
  try {
    const res = await fetch("/api/chats", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(startRequest()),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(startFailure(res.status, body));
    session = { conversation_id: body.conversation_id, token: body.token, last_seq: 0, pending: [] };
    save();
    showChat();
    connect();
  } catch (err) {
    ui.startError.textContent = err instanceof TypeError ? "Could not reach the server. Please try again." : err.message;
  } finally {
    button.disabled = false;
  }
});

// ---- frame chrome ----

function minimise() {
  parent.postMessage({ type: "switchboard:minimise" }, "*");
}
ui.minimise.hidden = window.parent === window;
ui.minimise.addEventListener("click", minimise);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && window.parent !== window) minimise();
});
window.addEventListener("online", () => {
  if (session && !ended && !ws) connect();
});

if (session) {
  showChat();
  connect();
} else {
  showStart();
}
