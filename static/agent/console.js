// The agent console: log in over HTTP, then one WebSocket to /ws/agent.
// Offers and chats are tabs; chat events are deduplicated by seq and the
// last seq per conversation is sent as `resume` after a reconnect. All
// text goes in through textContent.

const $ = (id) => document.getElementById(id);
const ui = {
  agentBar: $("agent-bar"), who: $("who"), statusLabel: $("status-label"),
  ready: $("ready"), pause: $("pause"), logout: $("logout"),
  banner: $("banner"), bannerText: $("banner-text"), bannerRetry: $("banner-retry"),
  errors: $("errors"), notices: $("notices"),
  login: $("login"), username: $("username"), password: $("password"), loginError: $("login-error"),
  profiles: $("profiles"), profile: $("profile"), profileError: $("profile-error"),
  desk: $("desk"), tabs: $("tabs"), panels: $("panels"), empty: $("empty"),
};
const profileKey = "switchboard-agent-profile";

let ws = null;
let signedIn = false;
let retries = 0;
let retryTimer = null;
let pingTimer = null;
const tabs = new Map(); // conversation_id -> tab (see newTab)
let selected = null;
let myName = "You";

// ---- small helpers ----

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

function send(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function showError(code, message) {
  const li = el("li", "", `${code}: ${message}`);
  const close = el("button", "dismiss", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss error");
  close.addEventListener("click", () => li.remove());
  li.append(close);
  ui.errors.append(li);
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
}

function notice(text) {
  const li = el("li", "", text);
  ui.notices.append(li);
  setTimeout(() => li.remove(), 10000);
}

function banner(text, offerRetry = false) {
  ui.banner.hidden = !text;
  ui.bannerText.textContent = text;
  ui.bannerRetry.hidden = !offerRetry;
}

function show(view) {
  ui.login.hidden = view !== "login";
  ui.profiles.hidden = view !== "profiles";
  ui.desk.hidden = view !== "desk";
  ui.agentBar.hidden = view !== "desk";
}

// ---- login and connection ----

function showLogin(message = "") {
  stopSocket();
  banner("");
  for (const tab of [...tabs.values()]) removeTab(tab);
  show("login");
  ui.loginError.textContent = message;
  ui.username.focus();
}

ui.login.addEventListener("submit", async (e) => {
  e.preventDefault();
  ui.loginError.textContent = "";
  try {
    const res = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: ui.username.value, password: ui.password.value }),
    });
    if (res.status === 401) throw new Error("Wrong username or password.");
    if (!res.ok) throw new Error(`Login failed (${res.status}).`);
    ui.password.value = "";
    connect();
  } catch (err) {
    ui.loginError.textContent = err instanceof TypeError ? "Could not reach the server." : err.message;
  }
});

ui.logout.addEventListener("click", async () => {
  sessionStorage.removeItem(profileKey);
  stopSocket();
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  showLogin();
});

function stopSocket() {
  clearTimeout(retryTimer);
  clearInterval(pingTimer);
  const old = ws;
  ws = null;
  signedIn = false;
  old?.close(1000);
}

function connect() {
  clearTimeout(retryTimer);
  const url = new URL("/ws/agent", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  ws = socket;
  socket.addEventListener("message", (e) => {
    if (ws !== socket) return;
    try {
      handle(JSON.parse(e.data));
    } catch (err) {
      console.error("bad frame", err);
    }
  });
  socket.addEventListener("close", (e) => {
    if (ws !== socket) return; // closed on purpose
    ws = null;
    signedIn = false;
    clearInterval(pingTimer);
    if (e.code === 4001) return banner("You signed in from another window.", true);
    if (e.code === 4003) return showLogin("Your session has ended. Please log in again.");
    reconnectLater();
  });
}

async function reconnectLater() {
  banner("Reconnecting…");
  // A refused upgrade looks like any other close: ask whether we are still logged in.
  const me = await fetch("/api/me", { credentials: "same-origin" }).catch(() => null);
  if (ws || !ui.login.hidden) return; // reconnected or logged out meanwhile
  if (me && me.status === 401) return showLogin("Your session has ended. Please log in again.");
  const delay = Math.min(30000, 1000 * 2 ** retries) * (0.5 + Math.random() / 2);
  retries += 1;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

ui.bannerRetry.addEventListener("click", () => {
  banner("Reconnecting…");
  connect();
});

// ---- profiles and status ----

function signIn(profileId) {
  const resume = {};
  for (const tab of tabs.values()) if (tab.kind === "chat") resume[tab.id] = tab.lastSeq;
  send({ type: "sign_in", profile_id: profileId, resume });
}

function onHello(msg) {
  myName = msg.user.display_name;
  ui.who.textContent = myName;
  const stored = Number(sessionStorage.getItem(profileKey));
  if (msg.profiles.some((p) => p.id === stored)) return signIn(stored);
  ui.profile.replaceChildren(...msg.profiles.map((p) => {
    const option = el("option", "", p.name);
    option.value = p.id;
    return option;
  }));
  ui.profileError.textContent = msg.profiles.length ? "" : "You have no profiles. Ask a supervisor to grant you one.";
  ui.profiles.querySelector("button").disabled = !msg.profiles.length;
  banner("");
  show("profiles");
  ui.profile.focus();
}

ui.profiles.addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(profileKey, ui.profile.value);
  signIn(Number(ui.profile.value));
});

function showStatus(msg) {
  const status = typeof msg.status === "string" ? msg.status : msg.status?.status;
  ui.statusLabel.textContent = msg.label;
  ui.ready.setAttribute("aria-pressed", String(status === "ready"));
  ui.pause.setAttribute("aria-pressed", String(status === "not_ready"));
}

ui.ready.addEventListener("click", () => send({ type: "set_status", status: "ready" }));
ui.pause.addEventListener("click", () => send({ type: "set_status", status: "not_ready", reason: "Pause" }));

// ---- tabs ----

function customerName(customer) {
  return customer?.name || customer?.email || "Customer";
}

const variableLabels = { customer_id: "Customer id", name: "Name", email: "E-mail" };

// Customer data, each value marked: the lock means the customer's website
// signed it; anything else was typed by the customer and may be false.
function customerDetails(customer, extraRows = []) {
  const dl = el("dl", "customer-data");
  for (const [term, value] of extraRows) dl.append(el("dt", "", term), el("dd", "", value));
  const variables = customer?.variables || [];
  if (!variables.length) dl.append(el("dt", "", "Customer"), el("dd", "", "(nothing given)"));
  for (const v of variables) {
    const dd = el("dd", "", v.value);
    const mark = v.verified ? el("span", "verified", "verified") : el("span", "unverified", "unverified");
    mark.title = v.verified ? "Signed by the customer's website" : "Typed by the customer";
    dd.append(" ", mark);
    dl.append(el("dt", "", variableLabels[v.name] || v.name), dd);
  }
  return dl;
}

function newTab(id, kind, name) {
  const title = kind === "offer" ? `Offer: ${name}` : name;
  const li = el("li", "tab");
  li.setAttribute("role", "presentation");
  const button = el("button", "tab-button", title);
  button.type = "button";
  button.id = `tab-${id}`;
  button.setAttribute("role", "tab");
  button.setAttribute("aria-controls", `panel-${id}`);
  button.addEventListener("click", () => select(id));
  const close = el("button", "close", "×");
  close.type = "button";
  close.setAttribute("aria-label", kind === "offer" ? `Reject offer from ${name}` : `Close chat with ${name}`);
  close.addEventListener("click", () => closeTab(tabs.get(id)));
  li.append(button, close);
  const panel = el("section", "panel");
  panel.id = `panel-${id}`;
  panel.setAttribute("role", "tabpanel");
  panel.setAttribute("aria-labelledby", button.id);
  ui.tabs.append(li);
  ui.panels.append(panel);
  const tab = { id, kind, name, li, button, close, panel, lastSeq: 0, pending: new Map(), customerConnected: false, ended: false };
  tabs.set(id, tab);
  if (!selected) select(id);
  else panel.hidden = true;
  ui.empty.hidden = true;
  return tab;
}

function select(id) {
  selected = id;
  for (const tab of tabs.values()) {
    const on = tab.id === id;
    tab.button.setAttribute("aria-selected", String(on));
    tab.panel.hidden = !on;
    if (on) tab.li.classList.remove("unread");
  }
}

function removeTab(tab) {
  clearInterval(tab.countdown);
  tab.li.remove();
  tab.panel.remove();
  tabs.delete(tab.id);
  if (selected === tab.id) {
    selected = null;
    const next = tabs.keys().next();
    if (!next.done) select(next.value);
  }
  ui.empty.hidden = tabs.size > 0;
}

function closeTab(tab) {
  if (tab.kind === "offer") return void send({ type: "reject", conversation_id: tab.id });
  if (tab.ended) return removeTab(tab);
  if (tab.customerConnected && !confirm("End this chat?")) return;
  if (!send({ type: "end", conversation_id: tab.id })) return showError("not_connected", "Not connected; the chat is still open.");
  tab.closing = true; // removed when the `ended` event arrives
}

// ---- offers ----

function onOffer(msg) {
  const name = customerName(msg.customer);
  const tab = tabs.get(msg.conversation_id) || newTab(msg.conversation_id, "offer", name);
  tab.li.classList.add("offer");
  const panel = tab.panel;
  panel.replaceChildren(el("h2", "", "New chat offer"));
  const dl = customerDetails(msg.customer, [["Queue", msg.queue_name]]);
  const countdown = el("p", "countdown");
  const accept = el("button", "primary", "Accept");
  const reject = el("button", "", "Reject");
  accept.type = reject.type = "button";
  accept.addEventListener("click", () => send({ type: "accept", conversation_id: tab.id }));
  reject.addEventListener("click", () => send({ type: "reject", conversation_id: tab.id }));
  const actions = el("div", "actions");
  actions.append(accept, reject);
  panel.append(dl, countdown, actions);
  const deadline = Date.now() + msg.expires_in_ms;
  const tick = () => {
    const secs = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    countdown.textContent = secs > 0 ? `Expires in ${secs} s` : "Expiring…";
  };
  tick();
  clearInterval(tab.countdown);
  tab.countdown = setInterval(tick, 1000);
  if (selected !== tab.id) tab.li.classList.add("unread");
  notice(`New chat offer from ${name} (${msg.queue_name}).`);
}

const withdrawnReasons = { timed_out: "timed out", customer_left: "ended: the customer left", withdrawn: "was withdrawn" };

function dropOffer(id, text) {
  const tab = tabs.get(id);
  if (!tab || tab.kind !== "offer") return;
  removeTab(tab);
  if (text) notice(text);
}

// ---- chats ----

function openChat(view) {
  let tab = tabs.get(view.conversation_id);
  const title = customerName(view.customer);
  if (!tab) tab = newTab(view.conversation_id, "chat", title);
  tab.customerConnected = view.customer_connected;
  if (tab.kind === "chat" && tab.messages) return tab; // reconnect: keep the log
  clearInterval(tab.countdown);
  tab.kind = "chat";
  tab.li.classList.remove("offer");
  tab.button.textContent = title;
  tab.close.setAttribute("aria-label", `Close chat with ${title}`);
  const head = el("header", "chat-head");
  const who = el("div");
  who.append(el("h2", "", title), el("p", "meta", [view.customer.email, view.queue_name].filter(Boolean).join(" · ")));
  tab.presence = el("p", "presence");
  head.append(who, tab.presence);
  tab.messages = el("ol", "messages");
  tab.messages.setAttribute("aria-live", "polite");
  tab.messages.setAttribute("aria-label", `Messages with ${title}`);
  tab.typing = el("p", "typing");
  tab.form = el("form", "composer");
  tab.text = el("textarea");
  tab.text.rows = 2;
  tab.text.maxLength = 4000;
  tab.text.placeholder = "Type a reply… (Enter to send)";
  tab.text.setAttribute("aria-label", `Reply to ${title}`);
  const sendButton = el("button", "primary", "Send");
  sendButton.type = "submit";
  tab.form.append(tab.text, sendButton);
  const details = el("details", "customer-details");
  const summary = el("summary", "", "Customer details");
  if (view.customer.verified) summary.append(" ", el("span", "verified", "verified"));
  details.append(summary, customerDetails(view.customer));
  tab.panel.replaceChildren(head, details, tab.messages, tab.typing, tab.form);
  wireComposer(tab);
  return tab;
}

function showPresence(tab) {
  if (!tab.presence) return;
  tab.presence.textContent = tab.ended ? "Chat ended" : tab.customerConnected ? "Customer connected" : "Customer not connected";
  tab.presence.className = `presence ${tab.customerConnected && !tab.ended ? "on" : "off"}`;
}

function wireComposer(tab) {
  let typing = false;
  let idle = null;
  const stopTyping = () => {
    clearTimeout(idle);
    if (typing) send({ type: "typing", conversation_id: tab.id, typing: false });
    typing = false;
  };
  const submit = () => {
    const text = tab.text.value.trim();
    if (!text || tab.ended) return;
    const id = newId();
    tab.pending.set(id, text);
    const li = bubble("agent", myName, text, null);
    li.classList.add("pending");
    li.dataset.msgId = id;
    tab.messages.append(li);
    tab.messages.scrollTop = tab.messages.scrollHeight;
    tab.text.value = "";
    stopTyping();
    if (signedIn) send({ type: "send", conversation_id: tab.id, client_msg_id: id, text });
  };
  tab.text.addEventListener("input", () => {
    if (!tab.text.value.trim()) return stopTyping();
    if (!typing) typing = send({ type: "typing", conversation_id: tab.id, typing: true });
    clearTimeout(idle);
    idle = setTimeout(stopTyping, 4000);
  });
  tab.text.addEventListener("blur", stopTyping);
  tab.text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  tab.form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  tab.stopTyping = stopTyping;
}

function bubble(role, name, text, at) {
  const li = el("li", `msg ${role}`);
  const meta = el("div", "meta");
  meta.append(el("span", "", name), el("time", "", at ? timeOf(at) : "Sending…"));
  li.append(meta, el("p", "text", text));
  return li;
}

function ownBubble(tab, id) {
  return [...tab.messages.querySelectorAll("li.msg[data-msg-id]")].find((li) => li.dataset.msgId === id);
}

function markSent(tab, id, at, failure) {
  tab.pending.delete(id);
  const li = ownBubble(tab, id);
  if (!li) return null;
  li.classList.remove("pending");
  li.classList.toggle("failed", Boolean(failure));
  li.querySelector("time").textContent = failure ? `Not sent: ${failure}` : at ? timeOf(at) : "Sent";
  return li;
}

function onEvent(e) {
  const tab = tabs.get(e.conversation_id);
  if (!tab || !tab.messages || e.seq <= tab.lastSeq) return;
  tab.lastSeq = e.seq;
  if (e.kind === "message") {
    const own = e.client_msg_id && markSent(tab, e.client_msg_id, e.at);
    if (own) tab.messages.append(own); // move into log order
    else tab.messages.append(bubble(e.author.role, e.author.name || "System", e.text, e.at));
    if (e.author.role === "customer") showTyping(tab, "", false);
  } else {
    tab.messages.append(el("li", "note", e.text));
  }
  tab.messages.scrollTop = tab.messages.scrollHeight;
  if (selected !== tab.id) tab.li.classList.add("unread");
  if (e.kind === "ended") endChat(tab);
}

function endChat(tab) {
  if (tab.closing) return removeTab(tab);
  tab.ended = true;
  tab.stopTyping?.();
  showTyping(tab, "", false);
  for (const id of [...tab.pending.keys()]) markSent(tab, id, null, "the chat has ended");
  tab.text.disabled = true;
  tab.form.querySelector("button").disabled = true;
  tab.li.classList.add("ended");
  showPresence(tab);
}

function showTyping(tab, name, typing) {
  if (!tab.typing) return;
  clearTimeout(tab.typingTimer);
  tab.typing.textContent = typing ? `${name} is typing…` : "";
  if (typing) tab.typingTimer = setTimeout(() => (tab.typing.textContent = ""), 10000);
}

function onSignedIn(msg) {
  signedIn = true;
  retries = 0;
  banner("");
  show("desk");
  showStatus(msg);
  clearInterval(pingTimer);
  pingTimer = setInterval(() => send({ type: "ping" }), 25000);
  // Offers do not survive a reconnect (the server re-sends one still open).
  for (const tab of [...tabs.values()]) if (tab.kind === "offer") removeTab(tab);
  const open = new Set(msg.conversations.map((c) => c.conversation_id));
  for (const tab of tabs.values()) {
    if (!open.has(tab.id) && !tab.ended) {
      tab.messages.append(el("li", "note", "This chat ended while you were away."));
      endChat(tab);
    }
  }
  for (const view of msg.conversations) showPresence(openChat(view));
  for (const tab of tabs.values()) {
    for (const [id, text] of tab.pending) send({ type: "send", conversation_id: tab.id, client_msg_id: id, text });
  }
}

function onError(msg) {
  showError(msg.code, msg.message);
  const tab = msg.conversation_id && tabs.get(msg.conversation_id);
  if (msg.code === "invalid_profile") {
    sessionStorage.removeItem(profileKey);
    ui.profileError.textContent = msg.message;
  }
  if (!tab) return;
  if (msg.client_msg_id && tab.kind === "chat") {
    if (msg.code === "unavailable") {
      setTimeout(() => {
        const text = tab.pending.get(msg.client_msg_id);
        if (text) send({ type: "send", conversation_id: tab.id, client_msg_id: msg.client_msg_id, text });
      }, 3000);
    } else {
      markSent(tab, msg.client_msg_id, null, msg.message);
    }
  }
  if (tab.kind === "offer" && ["offer_expired", "offer_withdrawn", "already_accepted", "already_rejected", "not_your_offer"].includes(msg.code)) {
    removeTab(tab);
  }
  if (tab.kind === "chat" && ["conversation_ended", "not_participant"].includes(msg.code)) {
    endChat(tab); // removes the tab if we were closing it
  } else if (!msg.client_msg_id) {
    tab.closing = false; // `end` failed: keep the chat open
  }
}

function handle(msg) {
  const tab = tabs.get(msg.conversation_id);
  switch (msg.type) {
    case "hello": return onHello(msg);
    case "signed_in": return onSignedIn(msg);
    case "status": return showStatus(msg);
    case "chat_offered": return onOffer(msg);
    case "offer_withdrawn":
      return dropOffer(msg.conversation_id, `Offer from ${tab?.name} ${withdrawnReasons[msg.reason] || "was withdrawn"}.`);
    case "chat_rejected": return dropOffer(msg.conversation_id, "");
    case "chat_accepted": {
      const chat = openChat(msg.conversation);
      showPresence(chat);
      select(chat.id);
      return chat.text.focus();
    }
    case "event": return onEvent(msg);
    case "ack": return tab && markSent(tab, msg.client_msg_id, null);
    case "typing": return tab && msg.author.role === "customer" && showTyping(tab, msg.author.name, msg.typing);
    case "customer_presence":
      if (!tab || !tab.messages) return;
      tab.customerConnected = msg.connected;
      tab.messages.append(el("li", "note", msg.connected ? "Customer connected" : "Customer left"));
      return showPresence(tab);
    case "error": return onError(msg);
    case "shutting_down": return banner("The server is restarting. Reconnecting…");
    default: return undefined; // pong and anything newer
  }
}

// ---- start ----

fetch("/api/me", { credentials: "same-origin" })
  .then((res) => (res.ok ? connect() : showLogin()))
  .catch(() => showLogin("Could not reach the server."));
