// A page reload on either side resumes the same chat: every message is
// shown exactly once, in order, and the chat goes on. While the agent's
// console is away the customer is told that their agent is reconnecting.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup } = require("./harness");
const { Agent, Customer, messageTexts, tid } = require("./ui");

let env;
let agent;
let customer;
let id;
const sent = [];

before(async () => {
  env = await setup();
  agent = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
  await agent.login();
  await agent.ready();
  customer = new Customer(await env.page("customer"), env.url);
  await customer.open();
  await customer.start({ name: "Erin", email: "erin@example.com" });
  await customer.send("first from customer");
  sent.push("first from customer");
  id = await agent.waitOffer();
  await agent.accept(id);
  for (let i = 1; i <= 3; i++) {
    await agent.send(id, `agent line ${i}`);
    sent.push(`agent line ${i}`);
    await customer.send(`customer line ${i}`);
    sent.push(`customer line ${i}`);
  }
  await agent.waitMessage(id, "customer line 3", "customer");
});
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

/** The chat texts (agent and customer messages) in order, without system events. */
async function chatTexts(scope) {
  const texts = await messageTexts(scope);
  return texts.filter((t) => sent.includes(t));
}

test("the customer reloads and gets the same chat, each message once", async () => {
  await customer.page.reload();
  await customer.waitMessage("customer line 3", "customer");
  assert.deepEqual(await chatTexts(customer.frame.locator("body")), sent);
  await customer.send("after customer reload");
  sent.push("after customer reload");
  await agent.waitMessage(id, "after customer reload", "customer");
  await agent.send(id, "reply after customer reload");
  sent.push("reply after customer reload");
  await customer.waitMessage("reply after customer reload", "agent");
  assert.deepEqual(await chatTexts(customer.frame.locator("body")), sent);
});

test("the agent reloads and gets the same chat tab, each message once", async () => {
  await agent.page.reload();
  await agent.tab(id).waitFor();
  await agent.select(id);
  await agent.waitMessage(id, "reply after customer reload", "agent");
  assert.deepEqual(await chatTexts(agent.panel(id)), sent);
  await customer.send("after agent reload");
  sent.push("after agent reload");
  await agent.waitMessage(id, "after agent reload", "customer");
  await agent.send(id, "reply after agent reload");
  sent.push("reply after agent reload");
  await customer.waitMessage("reply after agent reload", "agent");
  assert.deepEqual(await chatTexts(agent.panel(id)), sent);
  assert.deepEqual(await chatTexts(customer.frame.locator("body")), sent);
  assert.equal(await agent.page.locator(tid("chat-tab")).count(), 1);
});

test("while the agent's console is away the customer sees it is reconnecting", async () => {
  const status = customer.frame.locator(tid("widget-status"));
  await agent.page.goto("about:blank");
  await status.filter({ hasText: /agent lost their connection|medarbejder mistede/i }).waitFor();
  await agent.page.goto(`${env.url}/agent.html`);
  await agent.tab(id).waitFor();
  await status.waitFor({ state: "hidden" });
  await customer.send("after agent came back");
  await agent.select(id);
  await agent.waitMessage(id, "after agent came back", "customer");
});
