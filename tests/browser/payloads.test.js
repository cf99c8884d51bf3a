// Hostile text in every field an agent or a customer sees is shown as text:
// no script runs (no dialog ever opens, the flag the payloads would set stays
// unset in every frame), no javascript: link appears and no CSP violation is
// raised. Fields: messages both ways, the customer's typed name, verified
// name/e-mail/variables from an identity token, attachment file names both
// ways, the prompt and options of an offer of choices, a predefined
// message's heading and body, the agent's display name, and the names of a
// queue and a profile.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { setup, screenshot, hostPage } = require("./harness");
const { Agent, Customer, tid } = require("./ui");

const PAYLOADS = [
  "<script>window.__xss=1;alert(1)</script>",
  "<img src=x onerror=\"window.__xss=1;alert(1)\">",
  "\"><svg onload=\"window.__xss=1;alert(1)\">",
  "javascript:window.__xss=1;alert(1)",
  "'-alert(1)-'<iframe src=\"javascript:parent.__xss=1\"></iframe>",
  "\u202Eexe.txt\u202C مرحبا بالعالم שלום \u2066bidi\u2069 end",
];
const LONG = `long:${"Lorem ipsum dolor sit amet ".repeat(147)}`.slice(0, 4000);
const AGENT_NAME = "<img src=x onerror=\"window.__xss=1\">Mallory";
const QUEUE_NAME = "<svg onload=\"window.__xss=1\">Queue";
const PROFILE_NAME = "<script>window.__xss=1</script>Profile";

let env;
let agent;
let id;
let api;
let hostileQueue;
const customers = [];

/** An HS256 JWT signed with the site's secret, as a site's backend would make it. */
function identityToken(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 900, ...claims })}`;
  return `${body}.${crypto.createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** No payload ran anywhere: checks every frame of every page. */
async function assertNoScriptRan(pages) {
  for (const page of pages) {
    for (const frame of page.frames()) {
      const flag = await frame.evaluate(() => window.__xss).catch(() => undefined);
      assert.equal(flag, undefined, `a payload ran in ${frame.url()}`);
      assert.equal(await frame.locator('a[href^="javascript:" i]').count(), 0, `javascript: link in ${frame.url()}`);
    }
  }
}

async function textShown(scope, text) {
  await scope.locator(tid("message-text")).filter({ hasText: text.trim().slice(0, 60) }).first().waitFor();
  const all = await scope.locator(tid("message-text")).allTextContents();
  assert.ok(all.some((t) => t.includes(text.trim())), `"${text}" is shown verbatim`);
}

before(async () => {
  env = await setup();
  api = await env.supervisorApi();
  // A queue and a profile with hostile names; the site of the last test routes to that queue.
  const support = (await api.get("/api/queues")).find((q) => q.name === "Support");
  hostileQueue = await api.post("/api/queues", { name: QUEUE_NAME });
  const profile = await api.post("/api/profiles", {
    name: PROFILE_NAME, queue_ids: [support.id, hostileQueue.id], media: ["chat"],
  });
  const created = await api.post("/api/users", {
    username: "mallory", display_name: AGENT_NAME, role: "agent", password: "correct horse battery staple",
  });
  await api.post(`/api/users/${created.user.id}/profiles`, { profile_id: profile.id });
  await api.post("/api/predefined", { heading: PAYLOADS[1], body: `${PAYLOADS[0]} ${PAYLOADS[2]}`, scope: "everyone" });
  agent = new Agent(await env.page("mallory"), env.url, "mallory", "correct horse battery staple");
  await agent.login(PROFILE_NAME);
  await agent.ready();
});
after(async () => { await env?.teardown(); });
afterEach(async () => {
  await assertNoScriptRan([agent.page, ...customers.map((c) => c.page)]);
  env.assertClean();
});

test("a typed customer name and messages both ways", async () => {
  const customer = new Customer(await env.page("customer"), env.url);
  customers.push(customer);
  // A company page (another origin) that asks for the pre-chat form.
  const shop = await hostPage(`<!doctype html><title>Shop</title><h1>Shop</h1>
<script src="${env.url}/widget.js" data-queue="Support" data-prechat="true" async></script>`);
  await customer.open(`${shop.url}/`);
  assert.equal(await customer.start({ name: PAYLOADS[2], email: "eve@example.com" }), true, "the pre-chat form is shown");
  await customer.send(PAYLOADS[0]);
  id = await agent.waitOffer();
  await agent.select(id);
  await agent.panel(id).locator(`${tid("customer-var")}[data-name="name"] ${tid("customer-var-value")}`)
    .filter({ hasText: "svg onload" }).waitFor();
  await agent.accept(id);
  for (const p of [...PAYLOADS.slice(1), LONG]) await customer.send(p);
  for (const p of [PAYLOADS[0], ...PAYLOADS.slice(1), LONG]) await textShown(agent.panel(id), p);
  for (const p of [...PAYLOADS, LONG]) await agent.send(id, p);
  for (const p of [...PAYLOADS, LONG]) await textShown(customer.frame.locator("body"), p);
  await screenshot(agent.page, "payloads-console");
  await screenshot(customer.page, "payloads-widget");
});

test("a predefined message with hostile heading and body", async () => {
  const [customer] = customers;
  await agent.sendPredefined(id, PAYLOADS[1], `${PAYLOADS[0]} ${PAYLOADS[2]}`);
  await textShown(customer.frame.locator("body"), `${PAYLOADS[0]} ${PAYLOADS[2]}`);
});

test("an offer of choices with hostile prompt and options", async () => {
  const [customer] = customers;
  const options = [PAYLOADS[0], PAYLOADS[2], PAYLOADS[3]];
  await agent.offerChoices(id, PAYLOADS[1], options);
  const choices = customer.by("choices").last();
  await choices.waitFor();
  assert.ok((await choices.textContent()).includes(PAYLOADS[1]), "the prompt is shown as text");
  await choices.locator(tid("choice-option")).filter({ hasText: "svg onload" }).click();
  await customer.frame.locator(`${tid("choices")}[data-answered="true"]`).waitFor();
  await agent.waitMessage(id, PAYLOADS[2], "customer");
});

test("attachment file names both ways", async () => {
  const [customer] = customers;
  const names = ["<img src=x onerror=alert(1)>.txt", "\"><svg onload=alert(1)>.txt", "\u202Etxt.exe"];
  await customer.by("attachment-input").setInputFiles(
    names.map((name) => ({ name, mimeType: "text/plain", buffer: Buffer.from(`file ${name}\n`) })));
  await sendPending(customer.frame.locator("body"));
  await waitCount(agent.panel(id).locator(tid("attachment-link")), names.length);
  await agent.panel(id).locator(tid("attachment-input")).setInputFiles(
    [{ name: "<script>alert(1)</script>.txt", mimeType: "text/plain", buffer: Buffer.from("from the agent\n") }]);
  await sendPending(agent.panel(id));
  await waitCount(customer.by("attachment-link"), names.length + 1);
  for (const link of await agent.panel(id).locator(tid("attachment-link")).all()) {
    assert.doesNotMatch(await link.getAttribute("href"), /^\s*javascript:/i);
  }
});

test("verified name, e-mail and variables from an identity token", async () => {
  // The company page on another origin: its key, its origin, a token from "its backend".
  let token = "";
  const shop = await hostPage({ toString: () => `<!doctype html><title>Hostile shop</title><h1>Shop</h1>
<script src="${env.url}/widget.js" data-site="shop" data-identity-token="${token}" async></script>` });
  const site = await api.post("/api/sites", {
    name: "Hostile shop", key: "shop", allowed_origins: [shop.url], default_queue_id: hostileQueue.id,
  });
  token = identityToken(site.identity_secret, {
    // The e-mail must contain an @, or the server refuses the whole token.
    aud: "shop", sub: PAYLOADS[4], name: PAYLOADS[1], email: `${PAYLOADS[2]}@example.com`,
    vars: { plan: PAYLOADS[0], note: PAYLOADS[5], link: PAYLOADS[3] },
  });
  const page = await env.page("customer with token");
  const customer = new Customer(page, env.url);
  customers.push(customer);
  await customer.open(`${shop.url}/`);
  await customer.start();
  await customer.send("hello with a token");
  const chat = await agent.waitOffer();
  await agent.select(chat);
  await agent.panel(chat).locator(tid("offer-queue")).filter({ hasText: "Queue" }).waitFor();
  assert.ok((await agent.panel(chat).locator(tid("offer-queue")).textContent()).includes(QUEUE_NAME), "the queue name is text");
  const info = agent.panel(chat).locator(tid("customer-info"));
  for (const [name, text] of [["name", PAYLOADS[1]], ["email", `${PAYLOADS[2]}@example.com`], ["customer_id", PAYLOADS[4]], ["plan", PAYLOADS[0]], ["note", PAYLOADS[5]]]) {
    const value = info.locator(`${tid("customer-var")}[data-name="${name}"] ${tid("customer-var-value")}`);
    await value.waitFor();
    assert.ok((await value.textContent()).includes(text.trim()), `${name} shown as text`);
    await value.locator(tid("verified-lock")).waitFor();
  }
  await agent.accept(chat);
  await screenshot(agent.page, "payloads-verified-customer");
});

async function sendPending(scope) {
  const send = scope.locator(tid("composer-send")).first();
  if (await send.isEnabled().catch(() => false)) await send.click();
}

async function waitCount(locator, n) {
  await locator.nth(n - 1).waitFor();
}
