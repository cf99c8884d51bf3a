// The customer chat inside the widget iframe: the site's settings, the
// optional pre-chat form, then one WebSocket to /ws/customer that resumes
// the conversation, replays missed events (deduplicated by seq) and
// reconnects with backoff. All text goes in through textContent.

import { createI18n, translateStatic } from "/i18n.js";
import { strings } from "./strings.js";
import { confirmEnd } from "./confirm.js";
import { emailTranscript, imageUrl, saveWithToken, uploadFile } from "./files.js";
import * as view from "./view.js";

const params = new URLSearchParams(location.search);
// With a site, the server picks the site's default queue unless one is named.
const site = params.get("site") || "";
const queue = params.get("queue") || (site ? "" : "Support");
// The embedding page asks for the pre-chat form (data-prechat="true").
const prechat = params.get("prechat") === "true";
const storageKey = `switchboard-chat:${site ? `site:${site}` : queue}`;
const i18n = createI18n(strings);
const { t } = i18n;

// The identity token the host page's backend signed (SwitchboardWidget.identify);
// kept in memory only and sent once, when the chat starts.
let identityToken = null;
// GET /api/widget/config; these defaults hold until it answers (or if it fails).
let config = { allow_attachments: false, max_files: 5, max_file_bytes: 20 * 1024 * 1024,
  transcript_email: false, automatic_transcript_email: false, require_verified: false };

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"), startIntro: $("start-intro"), prechatFields: $("prechat-fields"),
  name: $("name"), email: $("email"), startError: $("start-error"),
  chat: $("chat"), status: $("status"), queue: $("queue"), messages: $("messages"), typing: $("typing"),
  composer: $("composer"), text: $("text"), send: $("send"), end: $("end"),
  attach: $("attach"), files: $("files"), fileErrors: $("attachment-errors"),
  ended: $("ended"), download: $("transcript-download"), transcriptAuto: $("transcript-auto"),
  transcriptForm: $("transcript-form"), transcriptAddress: $("transcript-address"),
  transcriptStatus: $("transcript-status"), newChat: $("new-chat"),
  minimise: $("minimise"), close: $("close"), language: $("language"),
};

// {conversation_id, token, last_seq, email, verified, pending: [{client_msg_id, text, attachments}]},
// in sessionStorage so a reload of the host page resumes the chat in this tab.
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
let status = null; // {key, params} of the status line, so a language switch redraws it
const bubbles = new Map(); // client_msg_id -> <li> of our own messages not yet in the log
const offers = new Map(); // offer_id -> choices block
const choosing = new Map(); // client_msg_id -> offer_id of answers in flight

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

// ---- language ----

function applyLanguage() {
  translateStatic(document, t);
  ui.language.value = i18n.lang();
  renderStatus();
}
ui.language.addEventListener("change", () => i18n.setLang(ui.language.value));
i18n.onChange(applyLanguage);

// ---- views ----

function showStart(errorKey = "") {
  ui.chat.hidden = true;
  ui.start.hidden = false;
  const fields = prechat && !config.require_verified;
  ui.prechatFields.hidden = !fields;
  ui.startIntro.dataset.i18n = config.require_verified ? "verifiedIntro" : fields ? "prechatIntro" : "startIntro";
  ui.startIntro.textContent = t(ui.startIntro.dataset.i18n);
  ui.startError.textContent = errorKey ? t(errorKey) : "";
  (fields ? ui.name : ui.start.querySelector("button[type=submit]")).focus();
}

function showChat() {
  ui.start.hidden = true;
  ui.chat.hidden = false;
  ui.ended.hidden = true;
  ui.composer.hidden = false;
  ui.messages.replaceChildren();
  ui.fileErrors.replaceChildren();
  bubbles.clear();
  offers.clear();
  choosing.clear();
  lastSeq = 0;
  ended = false;
  // The replay of a resumed chat is not news: announce only what comes after it.
  ui.messages.setAttribute("aria-live", "off");
  for (const item of session.pending) addOwnBubble(item);
  setStatus("connecting");
  setQueue(null);
  ui.text.focus();
}

function setStatus(key, params) {
  status = key ? { key, params } : null;
  renderStatus();
}

function renderStatus() {
  ui.status.textContent = status ? t(status.key, status.params) : "";
  ui.status.hidden = !status;
}

function setQueue(position, waitSecs) {
  if (position == null) {
    ui.queue.hidden = true;
    ui.queue.textContent = "";
    return;
  }
  let text = t("queuePosition", { n: position });
  if (waitSecs != null) {
    text += " " + (waitSecs < 60 ? t("waitUnderMinute") : t("waitMinutes", { n: Math.round(waitSecs / 60) }));
  }
  ui.queue.textContent = text;
  ui.queue.hidden = false;
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function append(node) {
  ui.messages.append(node);
  scrollDown();
}

function addOwnBubble(item) {
  const li = view.bubble("customer", t("you"), item.text);
  for (const name of item.names || []) li.append(Object.assign(document.createElement("p"), { className: "file-pending", textContent: name }));
  li.classList.add("pending");
  li.querySelector("time").textContent = t("sending");
  bubbles.set(item.client_msg_id, li);
  append(li);
}

function delivered(id) {
  session.pending = session.pending.filter((p) => p.client_msg_id !== id);
  save();
  const li = bubbles.get(id);
  if (li) li.querySelector("time").textContent = t("sent");
}

function failed(id, reason) {
  session.pending = session.pending.filter((p) => p.client_msg_id !== id);
  save();
  const li = bubbles.get(id);
  if (!li) return;
  bubbles.delete(id);
  li.classList.remove("pending");
  li.classList.add("failed");
  li.querySelector("time").textContent = t("notSent", { reason });
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
  setStatus("reconnecting");
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
      const { state, customer } = msg.conversation;
      session.email = customer.email || session.email || "";
      session.verified = customer.verified;
      save();
      // The replayed events follow at once; announce from then on.
      setTimeout(() => ui.messages.setAttribute("aria-live", "polite"), 500);
      if (state === "ended" || state === "abandoned") {
        setEnded();
      } else {
        setStatus(state === "active" ? null : "waiting");
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
      if (choosing.delete(msg.client_msg_id)) break;
      delivered(msg.client_msg_id);
      break;
    case "queue_position":
      // Also after the chat went back to the queue (its agent was lost).
      if (status && (status.key === "waiting" || status.key === "agentReconnecting")) setStatus(null);
      setQueue(msg.position, msg.estimated_wait_secs);
      break;
    case "agent_presence":
      if (!msg.connected) setStatus("agentReconnecting");
      else if (status && status.key === "agentReconnecting") setStatus(null);
      break;
    case "typing":
      if (msg.author.role !== "customer") theirTyping(msg.author.name, msg.typing);
      break;
    case "error":
      handleError(msg);
      break;
    case "shutting_down":
      setStatus("restarting");
      break;
    default:
      break; // pong and anything newer
  }
}

function authorName(author) {
  if (author.role === "customer") return t("you");
  return author.name || t("support");
}

function showEvent(e) {
  switch (e.kind) {
    case "message": {
      const li = view.bubble(e.author.role, authorName(e.author), e.text, e.at);
      if (!e.text) li.querySelector(".text").hidden = true;
      if (e.attachments && e.attachments.length) li.append(view.attachmentList(e.attachments, download, preview));
      const own = e.author.role === "customer" && bubbles.get(e.client_msg_id);
      if (own) {
        // Our pending bubble becomes the logged message, in log order.
        own.remove();
        bubbles.delete(e.client_msg_id);
        session.pending = session.pending.filter((p) => p.client_msg_id !== e.client_msg_id);
        save();
      }
      append(li);
      if (e.author.role === "agent") theirTyping(e.author.name, false);
      return;
    }
    case "choices": {
      if (!e.data || !e.data.offer_id) break;
      const offer = e.data;
      const block = view.choicesBlock(offer, authorName(e.author), e.at, t,
        (optionId) => answer(offer.offer_id, { type: "choose", option_id: optionId }),
        () => answer(offer.offer_id, { type: "dismiss_choices" }));
      offers.set(offer.offer_id, block);
      if (ended) view.markAnswered(block, null, t);
      append(block);
      return;
    }
    case "choice":
    case "choices_dismissed": {
      const block = e.data && offers.get(e.data.offer_id);
      if (block) view.markAnswered(block, e.kind === "choice" ? e.data.option_id : null, t);
      append(view.bubble("customer", authorName(e.author), e.text, e.at));
      return;
    }
    default:
      break;
  }
  append(view.systemLine(e.text, e.at));
  if (e.kind === "joined") {
    setStatus(null);
    setQueue(null);
  }
  if (e.kind === "ended") setEnded();
}

function handleError(msg) {
  if (msg.code === "not_found" && !resumed) {
    // The stored conversation is gone (or its token is wrong): start over.
    session = null;
    save();
    const old = ws;
    ws = null;
    old?.close();
    showStart("gone");
  } else if (msg.client_msg_id && choosing.has(msg.client_msg_id)) {
    const block = offers.get(choosing.get(msg.client_msg_id));
    choosing.delete(msg.client_msg_id);
    // Answered elsewhere (another tab): the event shows which; keep it closed.
    if (block && msg.code !== "already_answered" && msg.code !== "conversation_ended") view.setChoicesBusy(block, false);
    if (msg.code !== "already_answered") setStatus("error", { message: msg.message });
  } else if (msg.code === "conversation_ended") {
    if (msg.client_msg_id) failed(msg.client_msg_id, t("chatEndedReason"));
    setEnded();
  } else if (msg.code === "unavailable") {
    // The server asks us to retry; pending messages stay pending.
    setStatus("busy");
    if (resumed) setTimeout(() => session?.pending.forEach(transmit), 3000);
    else ws?.close(); // resume failed: reconnect with backoff
  } else if (msg.client_msg_id) {
    failed(msg.client_msg_id, msg.message);
  } else {
    setStatus("error", { message: msg.message });
  }
}

function theirTyping(name, typing) {
  clearTimeout(theirTypingTimer);
  ui.typing.textContent = typing ? t("typing", { name }) : "";
  if (typing) theirTypingTimer = setTimeout(() => (ui.typing.textContent = ""), 10000);
}

function setEnded() {
  if (ended) return;
  ended = true;
  clearTimeout(retryTimer);
  stopTyping();
  theirTyping("", false);
  for (const p of [...session.pending]) failed(p.client_msg_id, t("chatEndedReason"));
  for (const block of offers.values()) if (block.dataset.answered !== "true") view.markAnswered(block, null, t);
  setStatus(null);
  setQueue(null);
  ui.composer.hidden = true;
  ui.ended.hidden = false;
  scrollDown();
  ui.transcriptStatus.textContent = "";
  const auto = config.automatic_transcript_email && session.verified && session.email;
  ui.transcriptAuto.hidden = !auto;
  ui.transcriptAuto.textContent = auto ? t("transcriptEmailAuto", { email: session.email }) : "";
  ui.transcriptForm.hidden = !config.transcript_email;
  if (!ui.transcriptAddress.value) ui.transcriptAddress.value = session.email || "";
  if (!ui.chat.hidden && document.activeElement !== ui.newChat) ui.download.focus();
}

// ---- composing ----

function transmit(item) {
  if (!resumed) return;
  const frame = { type: "send", client_msg_id: item.client_msg_id, text: item.text };
  if (item.attachments && item.attachments.length) frame.attachments = item.attachments;
  send(frame);
}

function queueMessage(text, attachments = [], names = []) {
  const item = { client_msg_id: newId(), text, attachments, names };
  session.pending.push(item);
  save();
  addOwnBubble(item);
  transmit(item);
}

function sendMessage() {
  const text = ui.text.value.trim();
  if (!text || ended || !session) return;
  queueMessage(text);
  ui.text.value = "";
  stopTyping();
}

function answer(offerId, command) {
  if (ended || !resumed) return setStatus("notConnected");
  const clientMsgId = newId();
  choosing.set(clientMsgId, offerId);
  const block = offers.get(offerId);
  if (block) view.setChoicesBusy(block, true);
  if (!send({ ...command, client_msg_id: clientMsgId, offer_id: offerId })) {
    choosing.delete(clientMsgId);
    if (block) view.setChoicesBusy(block, false);
    setStatus("notConnected");
  }
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

// ---- attachments: picked files are uploaded one by one and sent at once ----

function fileError(key, params) {
  const li = document.createElement("li");
  li.dataset.testid = "attachment-error";
  li.textContent = t(key, params);
  ui.fileErrors.append(li);
}

function uploadReason(result) {
  switch (result.code) {
    case "unsupported_type": return t("attachmentType");
    case "empty_file": return t("attachmentEmpty");
    case "forbidden": return t("attachmentNotAllowed");
    case "conversation_ended": return t("chatEndedReason");
    case "file_too_large": return t("fileTooLarge", { mb: Math.round(config.max_file_bytes / 1048576) });
    default: return t("attachmentRefused");
  }
}

ui.files.addEventListener("change", async () => {
  const picked = [...ui.files.files];
  ui.files.value = "";
  ui.fileErrors.replaceChildren();
  if (!picked.length || !session || ended) return;
  const { conversation_id: id, token } = session;
  const ids = [];
  const names = [];
  for (const [index, file] of picked.entries()) {
    if (index >= config.max_files) {
      fileError("attachmentTooMany", { name: file.name, n: config.max_files });
    } else if (file.size > config.max_file_bytes) {
      fileError("attachmentFailed", { name: file.name, reason: t("fileTooLarge", { mb: Math.round(config.max_file_bytes / 1048576) }) });
    } else if (file.size === 0) {
      fileError("attachmentFailed", { name: file.name, reason: t("attachmentEmpty") });
    } else {
      setStatus("attachmentUploading", { name: file.name });
      const result = await uploadFile(id, token, file);
      if (result.ok) {
        ids.push(result.attachment.id);
        names.push(result.attachment.name);
      } else {
        fileError("attachmentFailed", { name: file.name, reason: uploadReason(result) });
      }
    }
  }
  if (status && status.key === "attachmentUploading") setStatus(null);
  if (ids.length && session && session.conversation_id === id && !ended) {
    const text = ui.text.value.trim();
    ui.text.value = "";
    queueMessage(text, ids, names);
  }
});

function download(attachment) {
  if (!session) return;
  saveWithToken(`/api/attachments/${encodeURIComponent(attachment.id)}`, session.token, attachment.name)
    .then((ok) => ok || setStatus("downloadFailed"));
}

function preview(attachment) {
  if (!session) return Promise.resolve(null);
  return imageUrl(`/api/attachments/${encodeURIComponent(attachment.id)}`, session.token);
}

// ---- the end, and the transcript ----

async function askToEnd() {
  if (!session || ended) return true;
  if (!(await confirmEnd())) return false;
  if (!resumed || !send({ type: "end" })) {
    setStatus("notConnected");
    return false;
  }
  return true;
}

ui.end.addEventListener("click", askToEnd);

ui.download.addEventListener("click", async () => {
  if (!session) return;
  const id = session.conversation_id;
  const ok = await saveWithToken(`/api/chats/${encodeURIComponent(id)}/transcript`, session.token, `transcript-${id}.txt`);
  ui.transcriptStatus.textContent = ok ? "" : t("transcriptFailed");
});

function emailReason(result) {
  if (result.status === 400) return t("transcriptEmailInvalid");
  if (result.code === "rate_limited") return t("transcriptEmailLimit");
  if (result.code === "not_answered") return t("transcriptEmailNotAnswered");
  if (result.code === "mail_disabled") return t("transcriptEmailDisabled");
  return t("unreachable");
}

ui.transcriptForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!session) return;
  const button = ui.transcriptForm.querySelector("button[type=submit]");
  const email = ui.transcriptAddress.value.trim();
  if (!email) {
    ui.transcriptStatus.textContent = t("transcriptEmailRefused", { reason: t("transcriptEmailInvalid") });
    ui.transcriptAddress.focus();
    return;
  }
  button.disabled = true;
  const result = await emailTranscript(session.conversation_id, session.token, email);
  button.disabled = false;
  ui.transcriptStatus.textContent = result.ok
    ? t("transcriptEmailSent", { email: result.email })
    : t("transcriptEmailRefused", { reason: emailReason(result) });
});

ui.newChat.addEventListener("click", () => {
  const old = ws;
  ws = null;
  old?.close();
  session = null;
  save();
  showStart();
});

// ---- starting ----

function startRequest() {
  const request = {};
  if (!ui.prechatFields.hidden) {
    request.name = ui.name.value;
    request.email = ui.email.value;
  }
  if (site) request.site = site;
  if (queue) request.queue = queue;
  if (site && identityToken) request.identity_token = identityToken;
  return request;
}

function startFailure(httpStatus, body) {
  if (httpStatus === 404 || httpStatus === 403) return t("unavailable");
  // The site requires a signed identity and the token was missing or stale.
  if (httpStatus === 401) return t("notVerified");
  return body.message || t("startFailed", { status: httpStatus });
}

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
    const email = ui.prechatFields.hidden ? "" : ui.email.value.trim();
    session = { conversation_id: body.conversation_id, token: body.token, last_seq: 0, pending: [], email };
    save();
    showChat();
    connect();
  } catch (err) {
    ui.startError.textContent = err instanceof TypeError ? t("unreachable") : err.message;
  } finally {
    button.disabled = false;
  }
});

// The host page hands over the identity token (widget.js posts it to this
// frame only, by our origin). A forged token gains nothing: the server
// verifies the signature.
window.addEventListener("message", (e) => {
  if (window.parent === window || e.source !== window.parent) return;
  if (e.data && e.data.type === "switchboard:identify" && typeof e.data.token === "string") {
    identityToken = e.data.token;
  }
});

// ---- frame chrome ----

const embedded = window.parent !== window;
function minimise() {
  if (embedded) parent.postMessage({ type: "switchboard:minimise" }, "*");
}
ui.minimise.hidden = !embedded;
ui.minimise.addEventListener("click", minimise);
// The x ends a running chat (after confirmation) and closes the window.
ui.close.addEventListener("click", async () => {
  if (await askToEnd()) minimise();
});
ui.close.hidden = !embedded;
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && embedded && !$("confirm").open) minimise();
});
window.addEventListener("online", () => {
  if (session && !ended && !ws) connect();
});

async function loadConfig() {
  const query = site ? `?site=${encodeURIComponent(site)}` : "";
  try {
    const res = await fetch(`/api/widget/config${query}`);
    if (res.ok) config = { ...config, ...(await res.json()) };
  } catch { /* keep the defaults: no files, no e-mail */ }
  ui.attach.hidden = !config.allow_attachments;
}

applyLanguage();
await loadConfig();
if (session) {
  showChat();
  connect();
} else {
  showStart();
}
