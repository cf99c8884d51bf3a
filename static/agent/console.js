// The agent console's entry point: log in, choose a profile, set the
// status, and route the server's frames to the chat tabs. The pieces live
// next to this file: connection.js (socket, reconnect), tabs.js, chat.js,
// messages.js, composer.js, uploads.js, sound.js and strings.js.

import { el } from "./dom.js";
import { i18n, t, refresh, dictionaries } from "./strings.js";
import { Connection } from "./connection.js";
import { Tabs } from "./tabs.js";
import { Chat, customerName } from "./chat.js";
import { beep, notify, setBaseTitle } from "./sound.js";

const $ = (id) => document.getElementById(id);
const PROFILE_KEY = "switchboard-agent-profile";
const OFFER_GONE = ["offer_expired", "offer_withdrawn", "already_accepted", "already_rejected", "not_your_offer"];

const ui = {
  agentBar: $("agent-bar"), who: $("who"), statusLabel: $("status-label"),
  ready: $("ready"), pause: $("pause"), pauseForm: $("pause-form"), pauseReason: $("pause-reason"),
  logout: $("logout"), language: $("language-select"),
  banner: $("connection-banner"), bannerText: $("banner-text"), bannerRetry: $("banner-retry"),
  errors: $("errors"), notices: $("notices"),
  login: $("login"), username: $("username"), password: $("password"), loginError: $("login-error"),
  profiles: $("profiles"), profile: $("profile"), profileError: $("profile-error"),
  desk: $("desk"), tabs: $("tabs"), panels: $("panels"), empty: $("empty"),
  dialog: $("confirm-dialog"), dialogText: $("confirm-text"),
};

let me = null; // the hello's user
let status = { status: { status: "not_ready", reason: "" }, open_chats: 0 };
const chats = new Map(); // conversation id -> Chat

// ---- feedback ----

function showError(text) {
  const li = el("li", { text });
  li.append(el("button", { class: "dismiss", text: "×", attrs: { type: "button", "aria-label": t("common.dismiss") }, on: { click: () => li.remove() } }));
  ui.errors.append(li);
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
}

function announce(text) {
  const li = el("li", { text });
  ui.notices.append(li);
  setTimeout(() => li.remove(), 10000);
}

function banner(key) {
  ui.banner.hidden = !key;
  ui.bannerText.textContent = key ? t(key) : "";
  ui.bannerRetry.hidden = key !== "banner.replaced";
}

function show(view) {
  ui.login.hidden = view !== "login";
  ui.profiles.hidden = view !== "profiles";
  ui.desk.hidden = view !== "desk";
  ui.agentBar.hidden = view !== "desk";
}

/** The custom "are you sure?" dialog; resolves true on Yes. */
function confirmDialog(text) {
  ui.dialogText.textContent = text;
  ui.dialog.returnValue = "";
  ui.dialog.showModal();
  $("confirm-no").focus();
  return new Promise((resolve) => {
    ui.dialog.addEventListener("close", () => resolve(ui.dialog.returnValue === "yes"), { once: true });
  });
}
$("confirm-yes").addEventListener("click", () => ui.dialog.close("yes"));
$("confirm-no").addEventListener("click", () => ui.dialog.close("no"));

// ---- the connection ----

const conn = new Connection({
  frame: (msg) => handle(msg),
  down: () => banner("banner.reconnecting"),
  sessionEnded: () => showLogin(t("login.expired")),
  replaced: () => banner("banner.replaced"),
});
ui.bannerRetry.addEventListener("click", () => {
  banner("banner.reconnecting");
  conn.retryNow();
});

// ---- tabs and chats ----

const tabs = new Tabs(ui.tabs, ui.panels, ui.empty, (id) => closeTab(id));

const app = {
  conn, tabs, showError, announce,
  myName: () => me?.display_name ?? "",
  removeChat: (id, noticeText) => removeChat(id, noticeText),
  rejectOffer: (id) => rejectOffer(id),
};

function chatFor(id) {
  let chat = chats.get(id);
  if (!chat) {
    const panel = tabs.add(id, "");
    chat = new Chat(app, id, panel);
    chats.set(id, chat);
  }
  return chat;
}

function removeChat(id, noticeText) {
  const chat = chats.get(id);
  if (!chat) return;
  chat.dispose();
  chats.delete(id);
  tabs.remove(id);
  if (noticeText) announce(noticeText);
}

function rejectOffer(id) {
  if (!conn.send({ type: "reject", conversation_id: id })) return showError(t("error.notConnected"));
  removeChat(id);
}

/** The x: an offer is rejected; a chat is ended for the customer (after asking, if they are still there). */
async function closeTab(id) {
  const chat = chats.get(id);
  if (!chat) return;
  if (chat.kind === "offer") return rejectOffer(id);
  if (chat.ended) return removeChat(id);
  if (chat.customerConnected && !(await confirmDialog(t("confirm.endChat", { name: chat.name })))) return;
  if (chat.ended) return removeChat(id);
  if (!conn.send({ type: "end", conversation_id: id })) return chat.showError(t("error.notConnected"));
  chat.closing = true; // removed when its `ended` event arrives
}

function onOffer(msg) {
  const fresh = !chats.has(msg.conversation_id);
  const chat = chatFor(msg.conversation_id);
  if (chat.kind === "chat") return; // already ours
  chat.renderOffer(msg);
  tabs.rename(chat.id, t("tab.offer", { name: customerName(msg.customer) }), "offer");
  tabs.mark(chat.id, "offer", true);
  if (fresh) {
    // An offer runs out: show it at once. Drafts stay in the other panels.
    tabs.select(chat.id);
    tabs.bump(chat.id);
    beep();
    notify();
    announce(t("offer.announce", { name: customerName(msg.customer), queue: msg.queue_name }));
  }
}

function openChat(view) {
  const chat = chatFor(view.conversation_id);
  chat.openChat(view);
  tabs.rename(chat.id, chat.name, "chat");
  tabs.mark(chat.id, "offer", false);
  return chat;
}

function onEvent(e) {
  const chat = chats.get(e.conversation_id);
  if (!chat || !chat.onEvent(e)) return;
  const fromOthers = e.kind !== "message" || e.author.role === "customer" || e.author.name !== me?.display_name;
  if (fromOthers) {
    tabs.bump(chat.id);
    if (e.kind === "message" && document.hidden) notify();
  }
}

// ---- status ----

/** A reason the server or the reason list wrote in English, in the current language. */
function reasonText(reason) {
  const key = Object.keys(dictionaries.en).find((k) => (k.startsWith("reason.") || k.startsWith("serverReason.")) && dictionaries.en[k] === reason);
  return key ? t(key) : reason;
}

function statusText() {
  const s = status.status;
  const n = status.open_chats;
  if (s.status === "ready") return t("status.readyN", { n });
  return t("status.notReadyN", { reason: reasonText(s.reason), n });
}

function showStatus(msg) {
  status = { status: msg.status, open_chats: msg.open_chats };
  ui.statusLabel.textContent = statusText();
  ui.ready.setAttribute("aria-pressed", String(msg.status.status === "ready"));
  ui.pause.setAttribute("aria-pressed", String(msg.status.status === "not_ready"));
}

ui.ready.addEventListener("click", () => {
  ui.pauseForm.hidden = true;
  conn.send({ type: "set_status", status: "ready" }) || showError(t("error.notConnected"));
});
ui.pause.addEventListener("click", () => {
  ui.pauseForm.hidden = !ui.pauseForm.hidden;
  if (!ui.pauseForm.hidden) ui.pauseReason.focus();
});
ui.pauseForm.addEventListener("submit", (e) => {
  e.preventDefault();
  // Stored in English (supervisors read it), shown translated (reasonText).
  const reason = dictionaries.en[`reason.${ui.pauseReason.value}`] || dictionaries.en["reason.pause"];
  conn.send({ type: "set_status", status: "not_ready", reason }) || showError(t("error.notConnected"));
  ui.pauseForm.hidden = true;
});

// ---- login, profile ----

function showLogin(message = "") {
  conn.stop();
  banner("");
  for (const id of [...chats.keys()]) removeChat(id);
  show("login");
  ui.loginError.textContent = message;
  ui.username.focus();
}

ui.login.addEventListener("submit", async (e) => {
  e.preventDefault();
  ui.loginError.textContent = "";
  try {
    const res = await fetch("/api/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: ui.username.value, password: ui.password.value }),
    });
    if (res.status === 401) throw new Error(t("login.wrong"));
    if (!res.ok) throw new Error(t("login.failed", { status: res.status }));
    ui.password.value = "";
    conn.start();
  } catch (err) {
    ui.loginError.textContent = err instanceof TypeError ? t("login.unreachable") : err.message;
  }
});

ui.logout.addEventListener("click", async () => {
  sessionStorage.removeItem(PROFILE_KEY);
  conn.stop();
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  showLogin();
});

function signIn(profileId) {
  const resume = {};
  for (const chat of chats.values()) if (chat.kind === "chat") resume[chat.id] = chat.lastSeq;
  conn.send({ type: "sign_in", profile_id: profileId, resume });
}

function onHello(msg) {
  me = msg.user;
  ui.who.textContent = me.display_name;
  const stored = Number(sessionStorage.getItem(PROFILE_KEY));
  if (msg.profiles.some((p) => p.id === stored)) return signIn(stored);
  ui.profile.replaceChildren(...msg.profiles.map((p) => el("option", { text: p.name, attrs: { value: p.id } })));
  ui.profileError.textContent = msg.profiles.length ? "" : t("profile.none");
  $("profile-submit").disabled = !msg.profiles.length;
  banner("");
  show("profiles");
  ui.profile.focus();
}

ui.profiles.addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(PROFILE_KEY, ui.profile.value);
  signIn(Number(ui.profile.value));
});

function onSignedIn(msg) {
  conn.healthy();
  banner("");
  show("desk");
  showStatus(msg);
  // Offers do not survive a reconnect (the server re-sends one still open).
  for (const chat of [...chats.values()]) if (chat.kind === "offer") removeChat(chat.id);
  const open = new Set(msg.conversations.map((c) => c.conversation_id));
  for (const chat of chats.values()) if (!open.has(chat.id) && !chat.ended) chat.end(t("chat.endedAway"));
  for (const view of msg.conversations) openChat(view);
  for (const chat of chats.values()) chat.resendPending();
}

function onError(msg) {
  if (msg.code === "invalid_profile") {
    sessionStorage.removeItem(PROFILE_KEY);
    ui.profileError.textContent = msg.message;
    return;
  }
  const chat = msg.conversation_id && chats.get(msg.conversation_id);
  if (!chat) return showError(`${msg.code}: ${msg.message}`);
  if (chat.kind === "offer" && OFFER_GONE.includes(msg.code)) return removeChat(chat.id, t("offer.gone"));
  chat.onError(msg);
}

const WITHDRAWN = { timed_out: "offer.timedOut", customer_left: "offer.customerLeft", withdrawn: "offer.withdrawn", cancelled: "offer.cancelled" };

function handle(msg) {
  const chat = chats.get(msg.conversation_id);
  switch (msg.type) {
    case "hello": return onHello(msg);
    case "signed_in": return onSignedIn(msg);
    case "status": return showStatus(msg);
    case "chat_offered": return onOffer(msg);
    case "offer_withdrawn":
      if (chat?.kind === "offer") removeChat(chat.id, t(WITHDRAWN[msg.reason] || "offer.withdrawn", { name: chat.name }));
      return undefined;
    case "chat_rejected":
      if (chat?.kind === "offer") removeChat(chat.id);
      return undefined;
    case "chat_accepted": {
      const opened = openChat(msg.conversation);
      tabs.select(opened.id);
      return opened.composer.text.focus();
    }
    case "event": return onEvent(msg);
    case "ack": return chat?.onAck(msg);
    case "typing": return chat?.showTyping(msg.author.name || t("author.customer"), msg.typing);
    case "customer_presence": return chat?.setPresence(msg.connected);
    case "error": return onError(msg);
    case "shutting_down": return banner("banner.restarting");
    default: return undefined; // pong and anything newer
  }
}

// ---- language ----

ui.language.value = i18n.lang();
ui.language.addEventListener("change", () => i18n.setLang(ui.language.value));
i18n.onChange(() => {
  refresh(document);
  setBaseTitle(t("pageTitle"));
  if (me) ui.statusLabel.textContent = statusText();
  for (const chat of chats.values()) chat.showPresence();
});
refresh(document);
setBaseTitle(t("pageTitle"));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) tabs.seen();
});
// A file dropped outside a chat must not make the browser open it (and leave the console).
for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

// ---- start ----

fetch("/api/me", { credentials: "same-origin" })
  .then((res) => (res.ok ? conn.start() : showLogin()))
  .catch(() => showLogin(t("login.unreachable")));
