// The agent console on its own: login errors, pause with a reason, the open
// chat count in the status, one tab per chat with unread badges, drafts kept
// across tab switches, and the language switch. The customers here are
// plain protocol clients (POST /api/chats, then /ws/customer from a page of
// our origin), so this file needs no widget.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup, screenshot } = require("./harness");
const { Agent, tid } = require("./ui");

let env;
let agent;
let wire; // the page the protocol customers run in
const chats = [];

/** Starts a chat over HTTP and resumes it over the customer WebSocket in `wire`. */
async function protocolCustomer(name) {
  const res = await fetch(`${env.url}/api/chats`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ queue: "Support", name }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const { conversation_id: id, token } = await res.json();
  const connect = () => wire.evaluate(({ id, token }) => new Promise((resolve, reject) => {
    window.customers = window.customers || {};
    const customer = window.customers[id] || { events: [], lastSeq: 0 };
    window.customers[id] = customer;
    const ws = new WebSocket(`ws://${location.host}/ws/customer`);
    customer.ws = ws;
    ws.onmessage = (e) => {
      const event = JSON.parse(e.data);
      customer.events.push(event);
      if (typeof event.seq === "number") customer.lastSeq = Math.max(customer.lastSeq, event.seq);
      if (event.type === "resumed") resolve();
    };
    ws.onerror = () => reject(new Error("customer socket failed"));
    ws.onopen = () => ws.send(JSON.stringify({ type: "resume", conversation_id: id, token, last_seq: customer.lastSeq }));
  }), { id, token });
  await connect();
  return {
    id,
    /** Opens a new customer socket and resumes after the last seen seq. */
    reconnect: connect,
    send: (text) => wire.evaluate(({ id, text }) => {
      window.customers[id].ws.send(JSON.stringify({ type: "send", client_msg_id: crypto.randomUUID(), text }));
    }, { id, text }),
    /** Texts of the messages this customer received, in order. */
    texts: () => wire.evaluate((id) => window.customers[id].events
      .filter((e) => e.type === "event" && typeof e.text === "string").map((e) => e.text), id),
  };
}

before(async () => {
  env = await setup();
  wire = await env.page("protocol customers");
  await wire.goto(`${env.url}/`);
  agent = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
});
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

test("a wrong password shows an error and no console", async () => {
  // The refused login is an expected 401 of the page's own request.
  env.allowConsole(/status of 401 \(Unauthorized\) \(http:\/\/[\d.:]+\/api\/login\)/);
  await agent.page.goto(`${env.url}/agent.html`);
  await agent.by("login-username").fill("alice");
  await agent.by("login-password").fill("not the password");
  await agent.by("login-submit").click();
  await agent.by("login-error").filter({ hasText: /\S/ }).waitFor();
  assert.equal(await agent.by("profile-select").isVisible(), false);
  await screenshot(agent.page, "console-login-error");
});

test("log in, pause with a reason, then Ready", async () => {
  await agent.login();
  await agent.by("status-pause").click();
  const reason = agent.by("pause-reason");
  await reason.waitFor();
  const options = await reason.locator("option").evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
  assert.ok(options.length > 0, "pause reasons are offered");
  await reason.selectOption(options[0]);
  await agent.by("pause-confirm").click();
  await agent.by("status-label").filter({ hasNotText: /^\s*Ready/ }).waitFor();
  await agent.ready();
});

test("two chats: two tabs, the count in the status, unread badges", async () => {
  for (const name of ["First Customer", "Second Customer"]) {
    const customer = await protocolCustomer(name);
    await customer.send(`hello from ${name}`);
    const id = await agent.waitOffer();
    assert.equal(id, customer.id);
    await agent.select(id);
    await agent.panel(id).locator(tid("offer-countdown")).waitFor();
    await agent.accept(id);
    await agent.waitMessage(id, `hello from ${name}`, "customer");
    chats.push(customer);
  }
  await agent.by("status-label").filter({ hasText: "(2)" }).waitFor();
  assert.equal(await agent.by("chat-tab").count(), 2);

  // A message in the background tab raises its badge; opening the tab clears it.
  const [a, b] = chats;
  await agent.select(b.id);
  await a.send("are you still there?");
  await agent.tab(a.id).locator(tid("tab-unread")).waitFor();
  await screenshot(agent.page, "console-two-chats");
  await agent.select(a.id);
  await agent.waitMessage(a.id, "are you still there?", "customer");
  await agent.tab(a.id).locator(tid("tab-unread")).waitFor({ state: "hidden" });
});

test("switching tabs keeps each chat's draft", async () => {
  const [a, b] = chats;
  await agent.select(a.id);
  await agent.panel(a.id).locator(tid("composer-text")).fill("draft for the first");
  await agent.select(b.id);
  await agent.panel(b.id).locator(tid("composer-text")).fill("draft for the second");
  await agent.select(a.id);
  assert.equal(await agent.panel(a.id).locator(tid("composer-text")).inputValue(), "draft for the first");
  await agent.select(b.id);
  assert.equal(await agent.panel(b.id).locator(tid("composer-text")).inputValue(), "draft for the second");
});

test("the language switch turns the console Danish", async () => {
  await agent.by("language-select").selectOption("da");
  await agent.by("status-label").filter({ hasText: "Klar" }).waitFor();
  await screenshot(agent.page, "console-danish");
  await agent.by("language-select").selectOption("en");
  await agent.by("status-label").filter({ hasText: "Ready" }).waitFor();
});

test("the server goes away: a banner, then the console reconnects and nothing is lost or doubled", async () => {
  const [a] = chats;
  await agent.select(a.id);
  await agent.send(a.id, "before the outage");
  const before = (await agent.messages(a.id).locator(tid("message-text")).allTextContents());
  // Chromium logs the refused reconnect attempts while the server is down.
  env.allowConsole(/WebSocket connection to 'ws:\/\/[\d.:]+\/ws\/agent' failed/);
  env.allowConsole(/net::ERR_CONNECTION_(REFUSED|RESET)/);
  await env.server.crash();
  await agent.by("connection-banner").waitFor({ state: "visible" });
  await screenshot(agent.page, "console-reconnecting");
  await env.server.restart();
  await agent.by("connection-banner").waitFor({ state: "hidden", timeout: 60000 });
  await a.reconnect();
  await a.send("after the outage");
  await agent.waitMessage(a.id, "after the outage", "customer");
  await agent.send(a.id, "welcome back");
  const after = await agent.messages(a.id).locator(tid("message-text")).allTextContents();
  assert.deepEqual(after.slice(0, before.length), before, "the history before the outage is unchanged");
  assert.equal(after.filter((t) => t === "before the outage").length, 1);
  assert.equal(after.filter((t) => t === "after the outage").length, 1);
  assert.equal(after.filter((t) => t === "welcome back").length, 1);
  assert.equal(await agent.by("chat-tab").count(), 2);
});
