// The agent console's chat actions, with plain protocol customers (POST
// /api/chats, then /ws/customer from a page of our origin) so the file needs
// no widget: verified customer data, typing, predefined message, private
// message (never sent to the customer), attachments with refusals per file
// and drag and drop, offer of choices, invite → cancel → invite → accept →
// leave, and closing with and without the confirm dialog.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { setup, screenshot } = require("./harness");
const { Agent, tid } = require("./ui");

let env;
let alice;
let bob;
let wire; // the page the protocol customers run in
let carla; // the customer of the main chat

const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

/** Starts a chat (body as for POST /api/chats) and resumes it over a customer socket in `wire`. */
async function protocolCustomer(body) {
  const id = await wire.evaluate(async (body) => {
    const res = await fetch("/api/chats", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const chat = await res.json();
    if (!chat.token) throw new Error(JSON.stringify(chat));
    window.customers = window.customers || {};
    const customer = { events: [] };
    window.customers[chat.conversation_id] = customer;
    customer.ws = new WebSocket(`ws://${location.host}/ws/customer`);
    customer.ws.onmessage = (e) => customer.events.push(JSON.parse(e.data));
    await new Promise((resolve) => (customer.ws.onopen = resolve));
    customer.ws.send(JSON.stringify({ type: "resume", conversation_id: chat.conversation_id, token: chat.token, last_seq: 0 }));
    return chat.conversation_id;
  }, body);
  const run = (fn, arg) => wire.evaluate(fn, { id, arg });
  return {
    id,
    send: (text) => run(({ id, arg }) => window.customers[id].ws.send(JSON.stringify({ type: "send", client_msg_id: crypto.randomUUID(), text: arg })), text),
    typing: () => run(({ id }) => window.customers[id].ws.send(JSON.stringify({ type: "typing", typing: true }))),
    leave: () => run(({ id }) => window.customers[id].ws.close()),
    /** The event frames this customer received. */
    events: () => run(({ id }) => window.customers[id].events.filter((e) => e.type === "event")),
    /** Waits until the customer has received an event of this kind (and text, if given). */
    until: (kind, text) => wire.waitForFunction(({ id, kind, text }) => window.customers[id].events
      .some((e) => e.type === "event" && e.kind === kind && (text === undefined || e.text === text)), { id, kind, text }),
  };
}

/** An HS256 identity token for the site `shop`. */
function identityToken(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ aud: "shop", iat: now, exp: now + 600, ...claims })}`;
  return `${body}.${crypto.createHmac("sha256", secret).update(body).digest("base64url")}`;
}

before(async () => {
  env = await setup();
  const api = await env.supervisorApi();
  await api.post("/api/predefined", { heading: "Greeting", body: "Hello! How can I help you today?", scope: "everyone" });
  const support = (await api.get("/api/queues")).find((q) => q.name === "Support");
  const site = await api.post("/api/sites", {
    name: "Shop", key: "shop", allowed_origins: ["http://shop.test"], default_queue_id: support.id,
  });
  wire = await env.page("protocol customers");
  await wire.goto(`${env.url}/`);
  alice = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
  bob = new Agent(await env.page("bob"), env.url, "bob", env.passwords.bob);
  await alice.login();
  await bob.login();
  await alice.ready();
  carla = await protocolCustomer({
    site: "shop",
    identity_token: identityToken(site.identity_secret, { sub: "cust-42", name: "Carla Jensen", email: "carla@example.com", vars: { plan: "Gold" } }),
  });
  await carla.send("Hello, my order is late");
});
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

test("the offer shows the verified customer data with a lock", async () => {
  const id = await alice.waitOffer();
  assert.equal(id, carla.id);
  const info = alice.panel(id).locator(tid("customer-info"));
  for (const [name, value] of [["customer_id", "cust-42"], ["name", "Carla Jensen"], ["email", "carla@example.com"], ["plan", "Gold"]]) {
    const v = info.locator(`${tid("customer-var")}[data-name="${name}"] ${tid("customer-var-value")}`);
    await v.filter({ hasText: value }).waitFor();
    assert.equal(await v.locator(tid("verified-lock")).getAttribute("aria-label"), "Verified");
  }
  await alice.accept(id);
  await alice.waitMessage(id, "Hello, my order is late", "customer");
  await alice.by("status-label").filter({ hasText: "Ready (1)" }).waitFor();
});

test("the customer's typing is shown", async () => {
  await carla.typing();
  await alice.panel(carla.id).locator(tid("typing-indicator")).filter({ hasText: "Carla Jensen" }).waitFor();
});

test("predefined message, then a private one the customer never gets", async () => {
  await alice.sendPredefined(carla.id, "Greeting", "Hello! How can I help you today?");
  await alice.setPrivate(carla.id, true);
  await alice.send(carla.id, "Customer is on the watch list");
  const priv = await alice.waitMessage(carla.id, "Customer is on the watch list");
  assert.equal(await priv.first().getAttribute("data-private"), "true");
  await priv.first().locator(tid("private-marker")).waitFor();
  await alice.setPrivate(carla.id, false);
  await alice.send(carla.id, "Let me check that for you");
  await carla.until("message", "Let me check that for you");
  const texts = (await carla.events()).map((e) => e.text);
  assert.ok(!texts.includes("Customer is on the watch list"), "the private message stays with the agents");
});

test("attachments: refused files get their own error, the others are sent; drag and drop works", async () => {
  env.allowConsole(/status of 415 \(Unsupported Media Type\)/);
  const panel = alice.panel(carla.id);
  await panel.locator(tid("attachment-input")).setInputFiles([
    { name: "photo.png", mimeType: "image/png", buffer: PNG },
    { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("order 4711\n") },
    { name: "empty.txt", mimeType: "text/plain", buffer: Buffer.alloc(0) },
    { name: "page.html", mimeType: "text/html", buffer: Buffer.from("<html><script>alert(1)</script></html>") },
  ]);
  await panel.locator(tid("attachment-error")).filter({ hasText: "empty.txt" }).waitFor();
  await panel.locator(tid("attachment-error")).filter({ hasText: "page.html" }).waitFor();
  await panel.locator(tid("composer-text")).fill("Here is the label");
  await panel.locator(tid("composer-send")).click();
  await panel.locator(tid("attachment-link")).filter({ hasText: "notes.txt" }).waitFor();
  const preview = panel.locator(tid("attachment-preview")).first();
  await preview.waitFor();
  assert.equal(await preview.evaluate((img) => img.decode().then(() => img.naturalWidth)), 1, "the preview loads");
  const href = await panel.locator(tid("attachment-link")).filter({ hasText: "notes.txt" }).getAttribute("href");
  assert.equal(await alice.page.evaluate(async (h) => (await fetch(h)).text(), href), "order 4711\n");

  // Seven files dropped onto the panel: five go, two are refused by the client.
  const files = await alice.page.evaluateHandle(() => {
    const d = new DataTransfer();
    for (let i = 1; i <= 7; i++) d.items.add(new File([`file ${i}\n`], `drop${i}.txt`, { type: "text/plain" }));
    return d;
  });
  await panel.dispatchEvent("dragover", { dataTransfer: files });
  await panel.dispatchEvent("drop", { dataTransfer: files });
  assert.equal(await panel.locator(tid("attachment-error")).count(), 2);
  await panel.locator(tid("composer-send")).click();
  await panel.locator(tid("attachment-link")).filter({ hasText: "drop5.txt" }).waitFor();
  assert.equal(await panel.locator(tid("attachment-link")).filter({ hasText: /drop[67]/ }).count(), 0);
});

test("an offer of choices", async () => {
  await alice.offerChoices(carla.id, "Which size?", ["Small", "Medium", "Large"]);
  await screenshot(alice.page, "console-chat-actions");
});

test("invite bob, cancel, invite again; bob joins with the history and alice leaves", async () => {
  const pending = alice.panel(carla.id).locator(tid("invite-pending"));
  await alice.invite(carla.id, "Bob");
  await pending.waitFor();
  await bob.waitOffer();
  await bob.panel(carla.id).locator(tid("offer-invited-by")).filter({ hasText: "Alice" }).waitFor();
  await alice.panel(carla.id).locator(tid("invite-cancel")).click();
  await pending.waitFor({ state: "hidden" });
  await bob.tab(carla.id).waitFor({ state: "detached" });

  await alice.invite(carla.id, "Bob");
  await pending.waitFor();
  await bob.waitOffer();
  await bob.accept(carla.id);
  await pending.waitFor({ state: "hidden" });
  const seen = await bob.waitMessage(carla.id, "Customer is on the watch list");
  assert.equal(await seen.first().getAttribute("data-private"), "true");

  await alice.panel(carla.id).locator(tid("chat-leave")).click();
  await alice.tab(carla.id).waitFor({ state: "detached" });
  await alice.by("status-label").filter({ hasText: "(0)" }).waitFor();
  await carla.send("still there?");
  await bob.waitMessage(carla.id, "still there?", "customer");
});

test("closing while the customer is connected asks; after they left it does not", async () => {
  // Bob closes Carla's chat: she is connected, so he is asked; No keeps it, Yes ends it.
  await bob.tab(carla.id).locator(tid("tab-close")).click();
  await bob.by("confirm-dialog").waitFor({ state: "visible" });
  await bob.by("confirm-no").click();
  await bob.by("confirm-dialog").waitFor({ state: "hidden" });
  assert.equal(await bob.tab(carla.id).count(), 1);
  assert.equal(await bob.closeTab(carla.id, { confirm: true }), true);
  await carla.until("ended");

  // A second customer who leaves: Alice closes the tab without being asked.
  const dora = await protocolCustomer({ queue: "Support", name: "Dora" });
  const id = await alice.waitOffer();
  assert.equal(id, dora.id);
  await alice.accept(id);
  await dora.leave();
  await alice.panel(id).locator(tid("message-text")).filter({ hasText: "The customer left." }).waitFor();
  assert.equal(await alice.closeTab(id), false, "no question once the customer has gone");
});
