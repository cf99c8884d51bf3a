// The customer widget on the demo page: used by keyboard alone, the queue
// position while nobody is free, new messages announced (aria-live), the
// Danish switch, and the transcript download at the end.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup, screenshot } = require("./harness");
const { Agent, Customer, tid } = require("./ui");

let env;
let agent;
let customer;
let id;

before(async () => {
  env = await setup();
  agent = new Agent(await env.page("alice"), env.url, "alice", env.passwords.alice);
  await agent.login();
  customer = new Customer(await env.page("customer"), env.url);
});
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

test("by keyboard alone: open the widget, start, and write while waiting in the queue", async () => {
  const page = customer.page;
  await page.goto(`${env.url}/demo.html`);
  const launcher = page.locator(tid("widget-launcher"));
  await launcher.waitFor();
  // Tab until the launcher has the focus, then open it with Enter.
  for (let i = 0; i < 20 && !(await launcher.evaluate((b) => b === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  assert.equal(await launcher.evaluate((b) => b === document.activeElement), true, "the launcher is reachable by Tab");
  await page.keyboard.press("Enter");
  const submit = customer.by("prechat-submit");
  await submit.waitFor();
  await submit.focus();
  await page.keyboard.press("Enter");
  const text = customer.by("composer-text");
  await text.waitFor();
  await text.focus();
  await page.keyboard.type("Typed with the keyboard only");
  await page.keyboard.press("Enter");
  await customer.waitMessage("Typed with the keyboard only", "customer");
  // Nobody is Ready yet: the customer sees their place in the queue.
  await customer.by("queue-position").filter({ hasText: /\d/ }).waitFor();
  await screenshot(page, "widget-queue");
});

test("an agent answers; the message list is a live region", async () => {
  await agent.ready();
  id = await agent.waitOffer();
  await agent.accept(id);
  await agent.send(id, "Hello, I am Alice.");
  const message = await customer.waitMessage("Hello, I am Alice.", "agent");
  const live = await message.first().evaluate((el) => {
    for (let n = el; n; n = n.parentElement) if (n.getAttribute("aria-live")) return n.getAttribute("aria-live");
    return null;
  });
  assert.ok(["polite", "assertive"].includes(live), `new messages are announced (aria-live=${live})`);
});

test("the widget switches to Danish", async () => {
  const endLabel = await customer.by("end-chat").textContent();
  await customer.by("language-select").selectOption("da");
  await customer.frame.locator('html[lang="da"]').waitFor({ state: "attached" });
  assert.notEqual(await customer.by("end-chat").textContent(), endLabel, "the End button is translated");
  await screenshot(customer.page, "widget-danish");
  await customer.by("language-select").selectOption("en");
  await customer.frame.locator('html[lang="en"]').waitFor({ state: "attached" });
  assert.equal(await customer.by("end-chat").textContent(), endLabel);
});

test("at the end the customer downloads the transcript", async () => {
  await customer.send("Thanks, bye!");
  await customer.end();
  await agent.panel(id).locator(tid("chat-ended")).waitFor();
  const [download] = await Promise.all([
    customer.page.waitForEvent("download"),
    customer.by("transcript-download").click(),
  ]);
  const file = await download.path();
  const body = require("node:fs").readFileSync(file, "utf8");
  for (const line of ["Typed with the keyboard only", "Hello, I am Alice.", "Thanks, bye!"]) {
    assert.ok(body.includes(line), `the transcript holds "${line}"`);
  }
});
