// Page objects of the agent console, the customer widget and the supervisor
// pages, written against the data-testid contract in
// tests/browser/ui-contract.md (how to run the suite: the
// top-level README's "Tests" section). Every wait is an element state, never
// a sleep.
"use strict";

const assert = require("node:assert/strict");

const tid = (id) => `[data-testid="${id}"]`;

/** The agent console in its own window. */
class Agent {
  constructor(page, url, username, password) {
    this.page = page;
    this.url = url;
    this.username = username;
    this.password = password;
  }

  by(id) { return this.page.locator(tid(id)); }

  async login(profile = "Support chat") {
    await this.page.goto(`${this.url}/agent.html`);
    await this.by("login-username").fill(this.username);
    await this.by("login-password").fill(this.password);
    await this.by("login-submit").click();
    const select = this.by("profile-select");
    await select.waitFor();
    await select.selectOption({ label: profile });
    await this.by("profile-submit").click();
    await this.by("status-ready").waitFor();
  }

  async ready() {
    await this.by("status-ready").click();
    await this.page.locator(`${tid("status-label")}`).filter({ hasText: /Ready|Klar/ }).waitFor();
  }

  /** The tab of a conversation, or the only/first tab when no id is given. */
  tab(conversationId) {
    return conversationId
      ? this.page.locator(`${tid("chat-tab")}[data-conversation-id="${conversationId}"]`)
      : this.by("chat-tab").first();
  }

  panel(conversationId) {
    return this.page.locator(`${tid("chat-panel")}[data-conversation-id="${conversationId}"]`);
  }

  /** Waits for an offer tab and returns its conversation id. */
  async waitOffer() {
    // The offer's panel may be behind the active tab (hidden), so wait for it to exist.
    const offer = this.page.locator(`${tid("chat-panel")}:has(${tid("offer")})`).first();
    await offer.waitFor({ state: "attached" });
    return offer.getAttribute("data-conversation-id");
  }

  async select(conversationId) {
    const tab = this.tab(conversationId);
    if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
    await this.panel(conversationId).waitFor();
  }

  async accept(conversationId) {
    await this.select(conversationId);
    await this.panel(conversationId).locator(tid("offer-accept")).click();
    await this.panel(conversationId).locator(tid("composer-text")).waitFor();
  }

  async reject(conversationId) {
    await this.select(conversationId);
    await this.panel(conversationId).locator(tid("offer-reject")).click();
    await this.tab(conversationId).waitFor({ state: "detached" });
  }

  messages(conversationId, author) {
    const sel = author ? `${tid("message")}[data-author="${author}"]` : tid("message");
    return this.panel(conversationId).locator(sel);
  }

  /** Waits for a message with exactly this text in the conversation. */
  async waitMessage(conversationId, text, author) {
    const msg = this.messages(conversationId, author)
      .filter({ has: this.page.locator(tid("message-text"), { hasText: text }) });
    await msg.first().waitFor();
    return msg;
  }

  async send(conversationId, text) {
    const panel = this.panel(conversationId);
    await panel.locator(tid("composer-text")).fill(text);
    await panel.locator(tid("composer-send")).click();
    await this.waitMessage(conversationId, text);
  }

  async setPrivate(conversationId, on) {
    const toggle = this.panel(conversationId).locator(tid("composer-private"));
    if ((await toggle.getAttribute("aria-pressed")) !== String(on)) await toggle.click();
    await this.page.locator(`${tid("chat-panel")}[data-conversation-id="${conversationId}"] ${tid("composer-private")}[aria-pressed="${on}"]`).waitFor();
  }

  /** Picks a predefined message by heading, then sends what it put in the text box. */
  async sendPredefined(conversationId, heading, body) {
    const panel = this.panel(conversationId);
    await panel.locator(tid("composer-predefined")).click();
    await this.page.locator(tid("predefined-item")).filter({ hasText: heading }).first().click();
    await assertValue(panel.locator(tid("composer-text")), body);
    await panel.locator(tid("composer-send")).click();
    await this.waitMessage(conversationId, body);
  }

  async offerChoices(conversationId, prompt, options) {
    const panel = this.panel(conversationId);
    await panel.locator(tid("composer-choices")).click();
    await this.page.locator(tid("choices-prompt")).fill(prompt);
    for (let i = 2; i < options.length; i++) await this.page.locator(tid("choices-add-option")).click();
    const inputs = this.page.locator(tid("choices-option"));
    for (let i = 0; i < options.length; i++) await inputs.nth(i).fill(options[i]);
    await this.page.locator(tid("choices-send")).click();
    await panel.locator(tid("choices-message")).filter({ hasText: prompt }).first().waitFor();
  }

  async attach(conversationId, files) {
    await this.panel(conversationId).locator(tid("attachment-input")).setInputFiles(files);
    await sendIfStillPending(this.panel(conversationId));
    for (const f of files) {
      await this.panel(conversationId).locator(tid("attachment-link")).filter({ hasText: f.name }).first().waitFor();
    }
  }

  async invite(conversationId, agentName) {
    const panel = this.panel(conversationId);
    await panel.locator(tid("composer-invite")).click();
    await this.page.locator(tid("invite-agent")).selectOption({ label: agentName });
    await this.page.locator(tid("invite-send")).click();
  }

  /** Clicks the x of a tab; returns whether the confirm dialog appeared (then answers it). */
  async closeTab(conversationId, { confirm = true } = {}) {
    await this.tab(conversationId).locator(tid("tab-close")).click();
    const dialog = this.by("confirm-dialog");
    const gone = this.tab(conversationId).waitFor({ state: "detached" }).then(() => "closed");
    const asked = dialog.waitFor({ state: "visible" }).then(() => "asked");
    const outcome = await Promise.race([gone, asked]);
    gone.catch(() => {});
    asked.catch(() => {});
    if (outcome === "asked") {
      await this.by(confirm ? "confirm-yes" : "confirm-no").click();
      if (confirm) await this.tab(conversationId).waitFor({ state: "detached" });
      return true;
    }
    return false;
  }
}

/** The demo shop page with the customer widget. */
class Customer {
  constructor(page, url) {
    this.page = page;
    this.url = url;
    this.frame = page.frameLocator('iframe[src*="/widget/frame.html"]');
  }

  by(id) { return this.frame.locator(tid(id)); }

  async open(hostPath = "/demo.html") {
    await this.page.goto(/^https?:/.test(hostPath) ? hostPath : `${this.url}${hostPath}`);
    await this.page.locator(tid("widget-launcher")).click();
    await this.frame.locator("body").waitFor();
  }

  /**
   * Starts the chat, filling the pre-chat form when the page asks for one
   * (`data-prechat="true"`); returns whether it did.
   */
  async start({ name = "Carol Customer", email = "carol@example.com" } = {}) {
    await this.by("prechat-submit").waitFor();
    const form = await this.by("prechat-name").isVisible();
    if (form) {
      await this.by("prechat-name").fill(name);
      await this.by("prechat-email").fill(email);
    }
    await this.by("prechat-submit").click();
    await this.by("composer-text").waitFor();
    return form;
  }

  messages(author) {
    return this.by("message").and(this.frame.locator(author ? `[data-author="${author}"]` : "*"));
  }

  async waitMessage(text, author) {
    const sel = author ? `${tid("message")}[data-author="${author}"]` : tid("message");
    const msg = this.frame.locator(sel).filter({ has: this.frame.locator(tid("message-text"), { hasText: text }) });
    await msg.first().waitFor();
    return msg;
  }

  async send(text) {
    await this.by("composer-text").fill(text);
    await this.by("composer-send").click();
    await this.waitMessage(text, "customer");
  }

  async attach(files) {
    await this.by("attachment-input").setInputFiles(files);
    await sendIfStillPending(this.frame.locator("body"));
    for (const f of files) {
      await this.by("attachment-link").filter({ hasText: f.name }).first().waitFor();
    }
  }

  async end() {
    await this.by("end-chat").click();
    await this.by("confirm-dialog").waitFor({ state: "visible" });
    await this.by("confirm-yes").click();
    await this.by("chat-ended").waitFor();
  }
}

/**
 * Some composers send picked files at once, others with the next Send: in
 * the latter case the file still waits in the composer and Send sends it.
 */
async function sendIfStillPending(scope) {
  const send = scope.locator(tid("composer-send")).first();
  if (await send.isEnabled().catch(() => false)) await send.click();
}

async function assertValue(locator, expected) {
  await locator.page().waitForFunction(
    ([el, want]) => el && el.value === want,
    [await locator.elementHandle(), expected],
  );
  assert.equal(await locator.inputValue(), expected);
}

/** Texts of all message-text elements in a scope, in order. */
async function messageTexts(scope) {
  return scope.locator(`${tid("message")} ${tid("message-text")}`).allTextContents();
}

/** Starts and logs in both demo agents, alice Ready first. */
async function twoReadyAgents(env) {
  const alice = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
  const bob = new Agent(await env.page("bob"), env.url, "bob", env.passwords.bob);
  await alice.login();
  await bob.login();
  await alice.ready();
  await bob.ready();
  return { alice, bob };
}

/** Waits until one of the agents is offered a chat; returns [offered, other, conversationId]. */
async function firstOffer(a, b) {
  const which = await Promise.race([
    a.waitOffer().then((id) => [a, b, id]),
    b.waitOffer().then((id) => [b, a, id]),
  ]);
  return which;
}

module.exports = { Agent, Customer, tid, messageTexts, twoReadyAgents, firstOffer, assertValue };
