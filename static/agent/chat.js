// One chat (or offer) panel: the offer card with its countdown, then the
// chat itself: header, message list, typing indicator, customer-information
// pane and composer. Events are applied in seq order and any seq already
// seen is dropped, so a resume never shows a message twice.

import { el, button, icon, newId } from "./dom.js";
import { t } from "./strings.js";
import { bubble, settle } from "./messages.js";
import { Composer } from "./composer.js";

const TYPING_SHOWN_MS = 10000;
const RETRY_MS = 3000;
const KNOWN_VARIABLES = { name: "var.name", email: "var.email", customer_id: "var.customer_id", phone: "var.phone" };

export function customerName(customer) {
  return customer?.name || customer?.email || t("author.customer");
}

/** The customer-information pane: every variable, a lock on the verified ones. */
function customerInfo(customer) {
  const dl = el("dl");
  const variables = customer?.variables || [];
  for (const v of variables) {
    const value = el("dd", { class: "customer-var-value", testid: "customer-var-value", text: v.value });
    if (v.verified) value.append(" ", icon("lock", t("customer.verified"), "verified-lock"));
    const label = KNOWN_VARIABLES[v.name] ? t(KNOWN_VARIABLES[v.name]) : v.name;
    dl.append(el("div", { class: "customer-var", testid: "customer-var", attrs: { "data-name": v.name } }, [el("dt", { text: label }), value]));
  }
  if (!variables.length) dl.append(el("p", { class: "hint", i18n: "customer.none", text: t("customer.none") }));
  return el("aside", { class: "customer-info", testid: "customer-info", attrs: { "aria-label": t("customer.title") } },
    [el("h3", { i18n: "customer.title", text: t("customer.title") }), dl]);
}

export class Chat {
  /** app: { conn, tabs, myName(), showError(text), removeChat(id), announce(text) } */
  constructor(app, id, panel) {
    this.app = app;
    this.id = id;
    this.panel = panel;
    this.kind = "offer";
    this.lastSeq = 0;
    this.pending = new Map(); // client_msg_id -> { frame, li }
    this.customerConnected = false;
    this.ended = false;
    this.closing = false;
    this.leaving = false;
    this.invite = null; // the pending invitation: { target, transfer, mine }
    this.countdown = null;
    this.panel.addEventListener("dragover", (e) => {
      if (this.kind !== "chat" || this.ended) return;
      e.preventDefault();
      this.panel.classList.add("dropping");
    });
    this.panel.addEventListener("dragleave", () => this.panel.classList.remove("dropping"));
    this.panel.addEventListener("drop", (e) => {
      this.panel.classList.remove("dropping");
      if (this.kind !== "chat" || this.ended) return;
      e.preventDefault();
      this.composer.attachments.add([...e.dataTransfer.files]);
    });
  }

  send(frame) {
    return this.app.conn.send(frame);
  }

  // ---- the offer ----

  renderOffer(msg) {
    this.kind = "offer";
    this.name = customerName(msg.customer);
    const deadline = Date.now() + msg.expires_in_ms;
    const countdown = el("p", { class: "countdown", testid: "offer-countdown", attrs: { "aria-live": "off" } });
    const accept = button({ class: "primary", testid: "offer-accept", i18n: "offer.accept", text: t("offer.accept"),
      on: { click: () => this.accept() } });
    const reject = button({ testid: "offer-reject", i18n: "offer.reject", text: t("offer.reject"), on: { click: () => this.app.rejectOffer(this.id) } });
    const rows = [el("p", { class: "offer-queue-row" }, [el("span", { i18n: "offer.queue", text: t("offer.queue") }), ": ",
      el("strong", { testid: "offer-queue", text: msg.queue_name })])];
    if (msg.invite) {
      const key = msg.invite.transfer ? "offer.transferBy" : "offer.invitedBy";
      rows.push(el("p", { testid: "offer-invited-by", text: t(key, { name: msg.invite.inviter }) }));
    }
    const card = el("div", { class: "offer", testid: "offer" }, [
      el("h2", { text: msg.invite ? t("offer.inviteTitle") : t("offer.title") }),
      ...rows, countdown, el("div", { class: "actions" }, [accept, reject]),
    ]);
    this.panel.replaceChildren(el("div", { class: "offer-layout" }, [card, customerInfo(msg.customer)]));
    const tick = () => {
      const secs = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      countdown.textContent = secs > 0 ? t("offer.expires", { n: secs }) : t("offer.expiring");
      countdown.classList.toggle("urgent", secs <= 10);
    };
    tick();
    clearInterval(this.countdown);
    this.countdown = setInterval(tick, 1000);
  }

  /** Accepting is idempotent on the server, so an `unavailable` answer is retried (see onError). */
  accept() {
    this.accepting = true;
    return this.send({ type: "accept", conversation_id: this.id }) || this.app.showError(t("error.notConnected"));
  }

  // ---- the chat ----

  /** Shows the chat of a ConversationView; keeps an existing log on a reconnect. */
  openChat(view) {
    clearInterval(this.countdown);
    this.customerConnected = view.customer_connected;
    this.name = customerName(view.customer);
    if (this.kind === "chat" && this.messages) {
      this.showPresence();
      return;
    }
    this.kind = "chat";
    this.presence = el("span", { class: "presence" });
    this.leaveButton = button({ class: "leave", testid: "chat-leave", i18n: "chat.leave", text: t("chat.leave"), on: { click: () => this.leave() } });
    const head = el("header", { class: "chat-head" }, [
      el("div", {}, [el("h2", { text: this.name }), el("p", { class: "meta", text: view.queue_name })]),
      el("div", { class: "head-actions" }, [this.presence, this.leaveButton]),
    ]);
    this.messages = el("ol", { class: "messages", attrs: { "aria-live": "polite", "aria-relevant": "additions", "aria-label": t("chat.messages", { name: this.name }), tabindex: "0" } });
    this.typing = el("p", { class: "typing-indicator", testid: "typing-indicator", attrs: { hidden: true, "aria-live": "polite" } });
    this.invitePending = el("div", { class: "invite-pending", testid: "invite-pending", attrs: { hidden: true, role: "status" } });
    this.endedNotice = el("p", { class: "chat-ended", testid: "chat-ended", attrs: { hidden: true, role: "status" } });
    this.errorLine = el("p", { class: "error chat-error", attrs: { role: "alert" } });
    this.composer = new Composer(this);
    const main = el("div", { class: "chat-main" }, [this.messages, this.typing, this.invitePending, this.endedNotice, this.errorLine, this.composer.root]);
    this.panel.replaceChildren(head, el("div", { class: "chat-body" }, [main, customerInfo(view.customer)]));
    this.showPresence();
  }

  showPresence() {
    if (!this.presence) return;
    const on = this.customerConnected && !this.ended;
    this.presence.textContent = this.ended ? t("chat.ended") : on ? t("chat.customerHere") : t("chat.customerGone");
    this.presence.className = `presence ${on ? "on" : "off"}`;
  }

  setPresence(connected) {
    if (!this.messages) return;
    this.customerConnected = connected;
    this.note(t(connected ? "chat.customerConnected" : "chat.customerLeft"));
    this.showPresence();
  }

  note(text) {
    this.messages.append(el("li", { class: "message system note", testid: "message", attrs: { "data-author": "system" } },
      [el("span", { class: "message-text", testid: "message-text", text })]));
    this.scroll();
  }

  scroll() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  /** A stored event; returns true when it was new. */
  onEvent(e) {
    if (!this.messages || e.seq <= this.lastSeq) return false;
    this.lastSeq = e.seq;
    const own = e.client_msg_id && this.pending.get(e.client_msg_id);
    if (own) {
      own.li?.remove();
      this.pending.delete(e.client_msg_id);
    }
    this.messages.append(bubble(e));
    if (e.author.role === "customer") this.showTyping("", false);
    this.trackInvite(e);
    this.scroll();
    if (e.kind === "ended") this.end();
    if (e.kind === "left" && e.author.name === this.app.myName() && (this.leaving || (this.invite?.mine && this.invite.transfer))) {
      this.app.removeChat(this.id, t("chat.youLeft", { name: this.name }));
    }
    return true;
  }

  trackInvite(e) {
    if (e.kind === "invited") {
      const me = this.app.myName();
      const mine = this.inviteSent || e.text.startsWith(`${me} `);
      this.inviteSent = false;
      this.invite = { target: e.data?.target ?? "", transfer: Boolean(e.data?.transfer), mine };
    } else if (e.kind === "invite_ended" || e.kind === "ended" || (e.kind === "joined" && this.invite)) {
      if (e.kind === "joined" && this.invite?.transfer && this.invite.mine) return; // our own `left` follows
      this.invite = null;
    } else {
      return;
    }
    this.showInvite();
  }

  showInvite() {
    const inv = this.invite;
    this.invitePending.hidden = !inv;
    if (!inv) return this.invitePending.replaceChildren();
    const text = el("span", { text: t(inv.transfer ? "invite.pendingTransfer" : "invite.pending", { name: inv.target }) });
    const parts = [text];
    if (inv.mine) {
      parts.push(button({ testid: "invite-cancel", i18n: "invite.cancel", text: t("invite.cancel"),
        on: { click: () => this.send({ type: "cancel_invite", conversation_id: this.id }) || this.showError(t("error.notConnected")) } }));
    }
    this.invitePending.replaceChildren(...parts);
  }

  showTyping(name, typing) {
    if (!this.typing) return;
    clearTimeout(this.typingTimer);
    this.typing.textContent = typing ? t("chat.typing", { name }) : "";
    this.typing.hidden = !typing;
    if (typing) this.typingTimer = setTimeout(() => this.showTyping("", false), TYPING_SHOWN_MS);
  }

  /** Sends a text message (with attachments) and shows it as pending until its event arrives. */
  post(text, attachments, isPrivate) {
    const id = newId();
    const frame = { type: "send", conversation_id: this.id, client_msg_id: id, text, private: isPrivate };
    if (attachments.length) frame.attachments = attachments.map((a) => a.id);
    const li = bubble({ kind: "message", author: { role: "agent", name: this.app.myName() }, text, attachments,
      audience: isPrivate ? "agents_only" : "everyone" }, { pending: true });
    this.messages.append(li);
    this.scroll();
    this.pending.set(id, { frame, li });
    this.send(frame);
  }

  /** A contribution without a pending bubble (offer of choices); resent like a message. */
  sendTracked(frame) {
    this.pending.set(frame.client_msg_id, { frame, li: null });
    if (!this.send(frame)) this.showError(t("error.willResend"));
  }

  onAck(msg) {
    const own = this.pending.get(msg.client_msg_id);
    if (own?.li) settle(own.li, null, null);
  }

  /** After a reconnect: everything not acknowledged goes again with the same client_msg_id. */
  resendPending() {
    for (const { frame } of this.pending.values()) this.send(frame);
  }

  onError(msg) {
    if (this.kind === "offer" && this.accepting && msg.code === "unavailable") {
      setTimeout(() => this.kind === "offer" && this.accept(), RETRY_MS);
      return;
    }
    if (msg.client_msg_id && this.pending.has(msg.client_msg_id)) {
      const own = this.pending.get(msg.client_msg_id);
      if (msg.code === "unavailable") {
        setTimeout(() => this.pending.has(msg.client_msg_id) && this.send(own.frame), RETRY_MS);
        return;
      }
      this.pending.delete(msg.client_msg_id);
      if (own.li) settle(own.li, null, msg.message);
    }
    if (["conversation_ended", "not_participant"].includes(msg.code) && !msg.client_msg_id) {
      if (this.closing || this.leaving) return this.app.removeChat(this.id);
    }
    if (msg.code === "last_agent") this.leaving = false;
    if (["invalid_invite", "invite_pending", "already_in_chat", "agent_unavailable"].includes(msg.code)) this.inviteSent = false;
    this.showError(t(`error.${msg.code}`, {}) === `error.${msg.code}` ? msg.message : t(`error.${msg.code}`));
  }

  showError(text) {
    if (!this.errorLine) return this.app.showError(text);
    this.errorLine.textContent = text;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => (this.errorLine.textContent = ""), 8000);
  }

  leave() {
    if (this.ended) return this.app.removeChat(this.id);
    if (!this.send({ type: "leave", conversation_id: this.id })) return this.showError(t("error.notConnected"));
    this.leaving = true;
  }

  /** The chat ended (or ended while we were away). */
  end(noteText) {
    if (this.ended) return;
    if (noteText) this.note(noteText);
    this.ended = true;
    this.invite = null;
    this.showInvite();
    this.showTyping("", false);
    for (const [id, own] of this.pending) if (own.li) settle(own.li, null, t("chat.endedReason"));
    this.pending.clear();
    this.composer.disable();
    this.endedNotice.hidden = false;
    this.endedNotice.textContent = t("chat.endedNotice");
    this.app.tabs.mark(this.id, "ended", true);
    this.showPresence();
    if (this.closing) this.app.removeChat(this.id);
  }

  dispose() {
    clearInterval(this.countdown);
    clearTimeout(this.typingTimer);
    this.composer?.stopTyping();
  }
}
