// The whole life of one chat, clicked through as a customer and two agents
// would: offer → reject → the other agent → accept → messages both ways →
// predefined message → choices → attachments both ways → invite → private
// messages (never on the customer's page) → the customer ends → the agent
// closes the tab without a warning. Then the opposite case: the agent closes
// while the customer is still there, is asked, and the chat ends for the
// customer. Steps share state, so they run in order and stop at the first
// failure.
"use strict";

const { before, after, afterEach, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup, screenshot } = require("./harness");
const { Customer, tid, messageTexts, twoReadyAgents, firstOffer } = require("./ui");

const PNG_1X1 = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

let env;
let alice;
let bob;
let customer;
let first; // the agent offered the chat first (rejects it)
let owner; // the agent who accepts
let id; // conversation id
let prechat; // whether the demo page asked for name and e-mail

before(async () => {
  env = await setup();
  const api = await env.supervisorApi();
  await api.post("/api/predefined", {
    heading: "Opening hours", body: "We are open 9–17 on weekdays.", scope: "everyone",
  });
  ({ alice, bob } = await twoReadyAgents(env));
});
after(async () => { await env?.teardown(); });
afterEach(() => env.assertClean());

test("the customer opens the demo page and starts a chat", async () => {
  customer = new Customer(await env.page("customer"), env.url);
  await customer.open();
  await screenshot(customer.page, "widget-prechat");
  prechat = await customer.start({ name: "Carol Customer", email: "carol@example.com" });
  await customer.send("Hello, I need help with my order");
});

test("an agent is offered the chat in a new tab with queue and customer data", async () => {
  let other;
  [first, other, id] = await firstOffer(alice, bob);
  owner = other;
  await first.select(id);
  const panel = first.panel(id);
  await panel.locator(tid("offer-queue")).filter({ hasText: "Support" }).waitFor();
  await panel.locator(tid("offer-countdown")).waitFor();
  await panel.locator(tid("customer-info")).waitFor();
  if (prechat) {
    await panel.locator(`${tid("customer-var")}[data-name="name"] ${tid("customer-var-value")}`)
      .filter({ hasText: "Carol Customer" }).waitFor();
  }
  await screenshot(first.page, "console-offer");
});

test("reject hands the offer to the other agent, who accepts", async () => {
  await first.reject(id);
  const offered = await owner.waitOffer();
  assert.equal(offered, id);
  await owner.accept(id);
  await owner.waitMessage(id, "Hello, I need help with my order", "customer");
  assert.equal(await first.tab(id).count(), 0, "the rejecting agent has no tab for the chat");
});

test("messages go both ways", async () => {
  await owner.send(id, "Hi Carol, I am looking at it now.");
  await customer.waitMessage("Hi Carol, I am looking at it now.", "agent");
  await customer.send("Thanks! Order A-17.");
  await owner.waitMessage(id, "Thanks! Order A-17.", "customer");
});

test("a predefined message fills the text box and is sent", async () => {
  await owner.sendPredefined(id, "Opening hours", "We are open 9–17 on weekdays.");
  await customer.waitMessage("We are open 9–17 on weekdays.", "agent");
});

test("the customer answers an offer of choices with one click", async () => {
  await owner.offerChoices(id, "Which item is it about?", ["Desk lamp", "Office chair", "Notebook"]);
  const choices = customer.by("choices").filter({ hasText: "Which item is it about?" });
  await choices.waitFor();
  await choices.locator(tid("choice-option")).filter({ hasText: "Office chair" }).click();
  await customer.frame.locator(`${tid("choices")}[data-answered="true"]`).waitFor();
  for (const button of await choices.locator(tid("choice-option")).all()) {
    assert.equal(await button.isDisabled(), true, "answered choices cannot be clicked again");
  }
  await owner.waitMessage(id, "Office chair", "customer");
  await screenshot(customer.page, "widget-chat");
});

test("attachments go both ways", async () => {
  await customer.attach([{ name: "receipt.txt", mimeType: "text/plain", buffer: Buffer.from("Order A-17, paid.\n") }]);
  const link = owner.panel(id).locator(tid("attachment-link")).filter({ hasText: "receipt.txt" });
  await link.waitFor();
  const body = await owner.page.evaluate(async (href) => (await fetch(href)).text(), await link.getAttribute("href"));
  assert.equal(body, "Order A-17, paid.\n");

  await owner.attach(id, [{ name: "photo.png", mimeType: "image/png", buffer: PNG_1X1 }]);
  await customer.by("attachment-link").filter({ hasText: "photo.png" }).waitFor();
  await owner.panel(id).locator(tid("attachment-preview")).first().waitFor();
});

test("the owner invites the other agent, who accepts and joins", async () => {
  const ownerName = owner === alice ? "Alice" : "Bob";
  await owner.invite(id, first === alice ? "Alice" : "Bob");
  await owner.panel(id).locator(tid("invite-pending")).waitFor();
  const invited = await first.waitOffer();
  assert.equal(invited, id);
  await first.panel(id).locator(tid("offer-invited-by")).filter({ hasText: ownerName }).waitFor();
  await first.accept(id);
  // The invited agent sees the history.
  await first.waitMessage(id, "Thanks! Order A-17.", "customer");
  await screenshot(owner.page, "console-chat");
});

test("private messages reach the agents only", async () => {
  await owner.setPrivate(id, true);
  await owner.send(id, "Private: customer paid twice, refund one.");
  const seen = await first.waitMessage(id, "Private: customer paid twice, refund one.");
  assert.equal(await seen.first().getAttribute("data-private"), "true");
  await seen.first().locator(tid("private-marker")).waitFor();
  await owner.setPrivate(id, false);
  // A public message after it: once the customer has it, the private one
  // would have arrived before it if it were delivered at all.
  await first.send(id, "I will refund the double payment today.");
  await customer.waitMessage("I will refund the double payment today.", "agent");
  const texts = await messageTexts(customer.frame.locator("body"));
  assert.ok(!texts.some((t) => t.includes("Private:")), `customer saw a private message: ${texts.join(" | ")}`);
  assert.equal(await customer.frame.locator('[data-private="true"]').count(), 0);
  assert.equal(await customer.frame.locator(tid("private-marker")).count(), 0);
});

test("the customer ends the chat; the agents close the tab without a warning", async () => {
  await customer.end();
  await customer.by("transcript-download").waitFor();
  await screenshot(customer.page, "widget-ended");
  for (const agent of [owner, first]) {
    await agent.panel(id).locator(tid("chat-ended")).waitFor();
    const asked = await agent.closeTab(id);
    assert.equal(asked, false, "closing an ended chat asks nothing");
    assert.equal(await agent.tab(id).count(), 0);
  }
});

test("closing a tab while the customer is connected asks first and ends the chat for the customer", async () => {
  const second = new Customer(await env.page("customer 2"), env.url);
  await second.open();
  await second.start({ name: "Dave", email: "dave@example.com" });
  await second.send("Is anyone there?");
  const [agent, , chat] = await firstOffer(alice, bob);
  await agent.accept(chat);
  await agent.send(chat, "Yes, how can I help?");
  await second.waitMessage("Yes, how can I help?", "agent");

  // Saying no keeps the chat.
  await agent.tab(chat).locator(tid("tab-close")).click();
  await agent.by("confirm-dialog").waitFor({ state: "visible" });
  await screenshot(agent.page, "console-confirm-close");
  await agent.by("confirm-no").click();
  await agent.by("confirm-dialog").waitFor({ state: "hidden" });
  assert.equal(await agent.tab(chat).count(), 1);

  const asked = await agent.closeTab(chat, { confirm: true });
  assert.equal(asked, true, "closing a live chat asks first");
  await second.by("chat-ended").waitFor();
});
