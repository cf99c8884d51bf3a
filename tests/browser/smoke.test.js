// The server's pages load in Chromium with no console error, uncaught
// exception or CSP violation, and the harness itself works.
"use strict";

const { before, after, test } = require("node:test");
const assert = require("node:assert/strict");
const { setup, screenshot } = require("./harness");

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

for (const route of ["/", "/demo.html", "/agent.html", "/supervisor.html"]) {
  test(`${route} loads cleanly`, async () => {
    const page = await env.page(`page ${route}`);
    const res = await page.goto(`${env.url}${route}`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-security-policy"], /default-src 'self'/);
    assert.doesNotMatch(res.headers()["content-security-policy"], /unsafe-inline/);
    await page.waitForLoadState("networkidle");
    await screenshot(page, `load${route.replace(/\W+/g, "-")}`);
    await page.context().close();
    env.assertClean();
  });
}

test("the harness catches a CSP violation and a dialog", async () => {
  const page = await env.page("self-check");
  await page.goto(`${env.url}/`);
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = 1";
    document.body.append(s);
  });
  await page.waitForFunction(() => true);
  await page.evaluate(() => setTimeout(() => alert("x"), 0));
  await page.waitForEvent("dialog").catch(() => {});
  await page.context().close();
  assert.throws(() => env.assertClean(), /CSP violation[\s\S]*dialog|dialog[\s\S]*CSP violation/);
});
