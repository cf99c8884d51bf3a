// The supervisor logs in, creates a predefined message that an agent then
// uses in a chat, and finds that chat in the chat log with its private
// message visibly marked.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup, screenshot } = require("./harness");
const { Agent, Customer, tid } = require("./ui");

let env;
let supervisor;
let agent;
let customer;
let id;

before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

test("the supervisor logs in and creates a predefined message", async () => {
  supervisor = await env.page("supervisor");
  await supervisor.goto(`${env.url}/supervisor.html`);
  await supervisor.locator(tid("login-username")).fill("admin");
  await supervisor.locator(tid("login-password")).fill(env.passwords.admin);
  await supervisor.locator(tid("login-submit")).click();
  await supervisor.locator(tid("nav-live")).waitFor();
  await screenshot(supervisor, "supervisor-live");
  await supervisor.locator(tid("nav-predefined")).click();
  await supervisor.locator(tid("predefined-heading")).fill("Delivery times");
  await supervisor.locator(tid("predefined-body")).fill("Orders ship within two working days.");
  await supervisor.locator(tid("predefined-create")).click();
  // Listed messages are edited in place: the heading is the value of an input in the row.
  await supervisor.waitForFunction((heading) => [...document.querySelectorAll('[data-testid="predefined-row"]')]
    .some((row) => row.textContent.includes(heading)
      || [...row.querySelectorAll("input, textarea")].some((i) => i.value === heading)), "Delivery times");
  await screenshot(supervisor, "supervisor-predefined");
});

test("an agent uses it in a chat and sends a private message", async () => {
  agent = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
  await agent.login();
  await agent.ready();
  customer = new Customer(await env.page("customer"), env.url);
  await customer.open();
  await customer.start({ name: "Frank", email: "frank@example.com" });
  await customer.send("When will my order arrive?");
  id = await agent.waitOffer();
  await agent.accept(id);
  await agent.sendPredefined(id, "Delivery times", "Orders ship within two working days.");
  await customer.waitMessage("Orders ship within two working days.", "agent");
  await agent.setPrivate(id, true);
  await agent.send(id, "Note to self: check the warehouse.");
  await agent.setPrivate(id, false);
  await customer.end();
});

test("the chat log shows the chat with the private message marked", async () => {
  await supervisor.locator(tid("nav-log")).click();
  await supervisor.locator(tid("log-search")).fill("When will my order arrive");
  await supervisor.locator(tid("log-search-submit")).click();
  await supervisor.locator(`${tid("log-row")}[data-conversation-id="${id}"]`).click();
  const transcript = supervisor.locator(tid("log-transcript"));
  const privateMsg = transcript.locator(`${tid("message")}[data-private="true"]`)
    .filter({ hasText: "Note to self: check the warehouse." });
  await privateMsg.waitFor();
  await privateMsg.locator(tid("private-marker")).waitFor();
  const predefined = transcript.locator(tid("message")).filter({ hasText: "Orders ship within two working days." });
  assert.notEqual(await predefined.getAttribute("data-private"), "true");
  await screenshot(supervisor, "supervisor-chat-log");
});
