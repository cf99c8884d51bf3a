// The composer of one chat: the text box and Send, and the action buttons
// Predefined, Offer of choices, Invite, Private and Attachment. It talks to
// its chat through the `chat` object (send, post, showError).

import { el, button, icon, newId } from "./dom.js";
import { t } from "./strings.js";
import { Attachments } from "./uploads.js";

const TYPING_IDLE_MS = 4000;
const MAX_TEXT = 4000;
const MAX_OPTIONS = 10;

async function getJson(path) {
  const res = await fetch(path, { credentials: "same-origin" });
  if (!res.ok) throw new Error(String(res.status));
  return res.json();
}

export class Composer {
  constructor(chat) {
    this.chat = chat;
    this.private = false;
    this.typing = false;
    this.idle = null;
    this.open = null; // the popover shown: "predefined" | "choices" | "invite"

    this.text = el("textarea", { class: "composer-text", testid: "composer-text",
      attrs: { rows: 2, maxlength: MAX_TEXT, "aria-label": t("composer.label"), "data-i18n-attr": "placeholder:composer.placeholder,aria-label:composer.label",
        placeholder: t("composer.placeholder") } });
    this.sendButton = el("button", { class: "primary", testid: "composer-send", i18n: "composer.send", text: t("composer.send"), attrs: { type: "submit" } });
    this.form = el("form", { class: "composer-form" }, [this.text, this.sendButton]);

    this.privateButton = button({ class: "tool private-toggle", testid: "composer-private", attrs: { "aria-pressed": "false", title: t("composer.private") },
      on: { click: () => this.togglePrivate() } }, [icon("eye", ""), el("span", { i18n: "composer.private", text: t("composer.private") })]);
    this.predefinedButton = this.tool("composer-predefined", "composer.predefined", () => this.toggle("predefined"));
    this.choicesButton = this.tool("composer-choices", "composer.choices", () => this.toggle("choices"));
    this.inviteButton = this.tool("composer-invite", "composer.invite", () => this.toggle("invite"));
    this.attachments = new Attachments(chat);
    const attachLabel = el("label", { class: "tool attach", attrs: { tabindex: "0", role: "button" }, testid: "composer-attach" },
      [icon("clip", ""), el("span", { i18n: "composer.attach", text: t("composer.attach") }), this.attachments.input]);
    attachLabel.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.attachments.input.click();
      }
    });
    this.toolbar = el("div", { class: "toolbar", attrs: { role: "toolbar", "aria-label": t("composer.actions") } },
      [this.predefinedButton, this.choicesButton, this.inviteButton, this.privateButton, attachLabel]);
    this.popover = el("div", { class: "popover", attrs: { hidden: true } });
    this.root = el("div", { class: "composer" }, [this.toolbar, this.popover, this.attachments.root, this.form]);

    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.text.addEventListener("input", () => this.onInput());
    this.text.addEventListener("blur", () => this.stopTyping());
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.open) {
        this.close();
        this.text.focus();
      }
    });
  }

  tool(testid, key, onClick) {
    return button({ class: "tool", testid, i18n: key, text: t(key), attrs: { "aria-expanded": "false" }, on: { click: onClick } });
  }

  // ---- text and typing ----

  onInput() {
    if (!this.text.value.trim()) return this.stopTyping();
    if (!this.typing) this.typing = this.chat.send({ type: "typing", conversation_id: this.chat.id, typing: true, private: this.private });
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idle);
    if (this.typing) this.chat.send({ type: "typing", conversation_id: this.chat.id, typing: false, private: this.private });
    this.typing = false;
  }

  async submit() {
    if (this.chat.ended) return;
    const text = this.text.value;
    const files = await this.attachments.ready();
    if (files === null) return; // an upload failed; its error is shown
    if (!text.trim() && !files.length) return;
    this.chat.post(text, files, this.private);
    this.text.value = "";
    this.attachments.clear();
    this.stopTyping();
    this.text.focus();
  }

  togglePrivate() {
    this.stopTyping();
    this.private = !this.private;
    this.privateButton.setAttribute("aria-pressed", String(this.private));
    this.root.classList.toggle("private", this.private);
    this.text.focus();
  }

  disable() {
    this.stopTyping();
    this.close();
    for (const node of this.root.querySelectorAll("button, textarea, input")) node.disabled = true;
    this.root.classList.add("disabled");
  }

  // ---- popovers ----

  toggle(which) {
    if (this.open === which) return this.close();
    this.close();
    this.open = which;
    this.buttonFor(which).setAttribute("aria-expanded", "true");
    this.popover.hidden = false;
    if (which === "predefined") this.showPredefined();
    if (which === "choices") this.showChoices();
    if (which === "invite") this.showInvite();
  }

  buttonFor(which) {
    return { predefined: this.predefinedButton, choices: this.choicesButton, invite: this.inviteButton }[which];
  }

  close() {
    if (this.open) this.buttonFor(this.open).setAttribute("aria-expanded", "false");
    this.open = null;
    this.popover.hidden = true;
    this.popover.replaceChildren();
  }

  async showPredefined() {
    this.popover.replaceChildren(el("p", { class: "hint", text: t("common.loading") }));
    let list;
    try {
      list = await getJson(`/api/conversations/${encodeURIComponent(this.chat.id)}/predefined`);
    } catch (_) {
      if (this.open === "predefined") this.popover.replaceChildren(el("p", { class: "error", text: t("predefined.failed") }));
      return;
    }
    if (this.open !== "predefined") return;
    const items = list.map((p) => el("li", {}, [button({ class: "predefined-item", testid: "predefined-item", text: p.heading,
      attrs: { title: p.body }, on: { click: () => this.usePredefined(p.body) } })]));
    this.popover.replaceChildren(
      el("h3", { i18n: "predefined.title", text: t("predefined.title") }),
      items.length ? el("ul", { class: "predefined-list" }, items) : el("p", { class: "hint", text: t("predefined.none") }),
    );
    this.popover.querySelector("button")?.focus();
  }

  usePredefined(body) {
    this.close();
    this.text.value = body;
    this.text.focus();
    this.onInput();
  }

  showChoices() {
    const prompt = el("input", { testid: "choices-prompt", attrs: { maxlength: 500, "aria-label": t("choices.prompt"), placeholder: t("choices.prompt") } });
    const options = el("ol", { class: "choices-editor-options" });
    const error = el("p", { class: "error", attrs: { role: "alert" } });
    const addOption = () => {
      const input = el("input", { testid: "choices-option", attrs: { maxlength: 100, "aria-label": t("choices.option"), placeholder: t("choices.option") } });
      const remove = button({ class: "remove", testid: "choices-remove-option", text: "×", attrs: { "aria-label": t("choices.remove") },
        on: { click: () => {
          if (options.children.length <= 2) return;
          li.remove();
          sync();
        } } });
      const li = el("li", {}, [input, remove]);
      options.append(li);
      sync();
      return input;
    };
    const add = button({ testid: "choices-add-option", text: t("choices.add"), on: { click: () => addOption().focus() } });
    const sync = () => {
      const n = options.children.length;
      for (const b of options.querySelectorAll(".remove")) b.disabled = n <= 2;
      add.disabled = n >= MAX_OPTIONS;
    };
    const send = el("button", { class: "primary", testid: "choices-send", text: t("choices.send"), attrs: { type: "submit" } });
    const form = el("form", { class: "choices-editor" }, [el("h3", { text: t("choices.title") }), prompt, options, add, error, send]);
    addOption();
    addOption();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const labels = [...options.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
      if (!prompt.value.trim()) return void (error.textContent = t("choices.needPrompt"));
      if (labels.length < 2) return void (error.textContent = t("choices.needOptions"));
      this.chat.sendTracked({ type: "offer_choices", conversation_id: this.chat.id, client_msg_id: newId(), prompt: prompt.value.trim(), options: labels });
      this.close();
      this.text.focus();
    });
    this.popover.replaceChildren(form);
    prompt.focus();
  }

  async showInvite() {
    const agent = el("select", { testid: "invite-agent", attrs: { "aria-label": t("invite.agent") } }, [el("option", { text: t("invite.chooseAgent"), attrs: { value: "" } })]);
    const queue = el("select", { testid: "invite-queue", attrs: { "aria-label": t("invite.queue") } }, [el("option", { text: t("invite.chooseQueue"), attrs: { value: "" } })]);
    agent.addEventListener("change", () => { if (agent.value) queue.value = ""; });
    queue.addEventListener("change", () => { if (queue.value) agent.value = ""; });
    const transfer = el("input", { testid: "invite-transfer", attrs: { type: "checkbox", id: `transfer-${this.chat.id}` } });
    const error = el("p", { class: "error", attrs: { role: "alert" } });
    const send = el("button", { class: "primary", testid: "invite-send", text: t("invite.send"), attrs: { type: "submit" } });
    const form = el("form", { class: "invite-editor" }, [
      el("h3", { text: t("invite.title") }),
      el("label", { text: t("invite.agent") }, [agent]),
      el("label", { text: t("invite.queue") }, [queue]),
      el("label", { class: "check", text: t("invite.transfer") }, [transfer]),
      error, send,
    ]);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const frame = { type: "invite", conversation_id: this.chat.id, transfer: transfer.checked };
      if (agent.value) frame.agent_id = Number(agent.value);
      else if (queue.value) frame.queue_id = Number(queue.value);
      else return void (error.textContent = t("invite.needTarget"));
      if (!this.chat.send(frame)) return void (error.textContent = t("error.notConnected"));
      this.chat.inviteSent = true;
      this.close();
    });
    this.popover.replaceChildren(form);
    try {
      const [colleagues, queues] = await Promise.all([getJson("/api/colleagues"), getJson("/api/queues")]);
      // The option text is the name alone; the groups say who is signed in.
      const online = el("optgroup", { attrs: { label: t("invite.online") } });
      const offline = el("optgroup", { attrs: { label: t("invite.offline") } });
      for (const c of colleagues) {
        const title = c.status.status === "not_ready" ? `${t("status.notReady")}: ${c.status.reason}` : c.online ? t("status.ready") : t("invite.offline");
        (c.online ? online : offline).append(el("option", { text: c.display_name, attrs: { value: c.id, title } }));
      }
      for (const group of [online, offline]) if (group.children.length) agent.append(group);
      for (const q of queues) queue.append(el("option", { text: q.name, attrs: { value: q.id } }));
    } catch (_) {
      error.textContent = t("invite.loadFailed");
    }
    agent.focus();
  }
}

