// Test harness of the browser suite: starts the real server binary (built
// by run.sh, never here) on a free port with a temporary SQLite database and
// demo data, drives Debian's Chromium through playwright-core, and records
// every console error, uncaught exception, dialog and CSP violation of every
// page and frame so a test fails on any of them.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..", "..");
const BINARY = process.env.SWITCHBOARD_BIN || path.join(
  process.env.CARGO_TARGET_DIR || path.join(ROOT, "target"), "debug", "switchboard");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/// Every wait of the suite is bounded by this: a missing element fails the test, it never hangs.
const WAIT_MS = Number(process.env.E2E_WAIT_MS || 20000);
/// Screenshots of the main screens go here (a temp dir), never into the repository.
const SHOT_DIR = process.env.E2E_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), "switchboard-shots-"));

/**
 * Starts the server on its own temp database; resolves once /readyz answers
 * 200. `crash()` kills it without a goodbye (like a lost connection or a
 * crashed process) and `restart()` brings it back on the same port and
 * database.
 */
async function startServer({ env = {} } = {}) {
  if (!fs.existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: run tests/browser/run.sh (it builds the server first)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "switchboard-e2e-"));
  const passwords = {};
  let output = "";
  let child = null;

  async function spawnServer(bind) {
    child = spawn(BINARY, ["--root", ROOT, "--demo"], {
      env: {
        ...process.env,
        RUST_LOG: "switchboard=warn",
        SWITCHBOARD__DATABASE__URL: `sqlite:${path.join(dir, "e2e.db")}`,
        SWITCHBOARD__SERVER__BIND: bind,
        SWITCHBOARD__ATTACHMENTS__DIR: path.join(dir, "attachments"),
        ...env,
      },
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc = child;
    const started = new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk;
        for (const m of output.matchAll(/(?:supervisor|Demo agent) '(\w+)' with password: (\S+)/g)) {
          passwords[m[1]] = m[2];
        }
        const listening = [...output.matchAll(/listening on (http:\/\/[\d.:]+)/g)].pop();
        if (listening && passwords.admin && passwords.alice && passwords.bob) resolve(listening[1]);
      };
      proc.stdout.setEncoding("utf8").on("data", onData);
      proc.stderr.setEncoding("utf8").on("data", (c) => { output += c; });
      proc.once("exit", (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
      setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30000).unref();
    });
    try {
      const url = await started;
      await waitReady(url);
      return url;
    } catch (e) {
      proc.kill("SIGKILL");
      throw e;
    }
  }

  async function kill(signal) {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  output = "";
  const url = await spawnServer("127.0.0.1:0");
  const bind = url.replace(/^http:\/\//, "");
  return {
    url,
    passwords,
    dir,
    output: () => output,
    crash: () => kill("SIGKILL"),
    async restart() {
      output = "";
      // The demo data exists now, so no passwords are printed again.
      await spawnServer(bind);
    },
    async stop() {
      await kill("SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitReady(url) {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
    } catch (_) { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url}/readyz never answered 200`);
}

/** A logged-in HTTP client of the server's JSON API (supervisor set-up). */
async function apiLogin(url, username, password) {
  const res = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  const setCookies = res.headers.getSetCookie ? res.headers.getSetCookie() : [res.headers.get("set-cookie") || ""];
  const cookie = setCookies.map((c) => c.split(";")[0]).join("; ");
  async function call(method, route, body) {
    const r = await fetch(`${url}${route}`, {
      method,
      headers: { cookie, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  return {
    get: (route) => call("GET", route),
    post: (route, body) => call("POST", route, body),
    put: (route, body) => call("PUT", route, body),
  };
}

/**
 * One browser for a test file plus the book-keeping of problems. Each
 * `context()` is a separate browser window (own cookies and storage).
 */
async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const problems = [];
  // A console that is not logged in asks /api/me and gets 401: Chromium logs
  // every failed request as a console error, but this one is the normal path.
  const allowed = [/status of 401 \(Unauthorized\) \(http:\/\/[\d.:]+\/api\/me\)/];
  const contexts = [];

  function record(kind, where, text) {
    if (allowed.some((re) => re.test(text))) return;
    problems.push(`${kind} on ${where}: ${text}`);
  }

  async function context(name, options = {}) {
    const ctx = await browser.newContext({ locale: "en-US", ...options });
    contexts.push(ctx);
    await ctx.exposeBinding("__e2eReport", ({ frame }, kind, text) => record(kind, `${name} ${frame.url()}`, text));
    // Runs in every document (pages and frames) before its own scripts. It
    // is injected by the browser, so the page's CSP does not apply to it.
    await ctx.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        window.__e2eReport("CSP violation",
          `${e.violatedDirective} blocked ${e.blockedURI || "(inline)"} at ${e.sourceFile}:${e.lineNumber} sample=${e.sample}`);
      });
    });
    ctx.on("page", (page) => watchPage(page, name));
    return ctx;
  }

  function watchPage(page, name) {
    page.setDefaultTimeout(WAIT_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error" || /Content.Security.Policy/i.test(msg.text())) {
        record("console error", name, `${msg.text()} (${msg.location().url})`);
      }
    });
    page.on("pageerror", (err) => record("uncaught exception", name, String(err && err.stack || err)));
    page.on("dialog", async (dialog) => {
      problems.push(`unexpected ${dialog.type()} dialog on ${name}: ${dialog.message()}`);
      await dialog.dismiss().catch(() => {});
    });
  }

  /** A new window of its own with one page. */
  async function page(name, options) {
    const ctx = await context(name, options);
    return ctx.newPage();
  }

  return {
    browser,
    context,
    page,
    /** Lets a test accept an expected console error (e.g. a refused upload's 413). */
    allowConsole(re) { allowed.push(re); },
    /** Fails with every problem recorded so far, and forgets them. */
    assertClean() {
      const found = problems.splice(0);
      if (found.length) throw new Error(`browser problems:\n  ${found.join("\n  ")}`);
    },
    async close() {
      for (const ctx of contexts) await ctx.close().catch(() => {});
      await browser.close();
    },
  };
}

/**
 * A company's page on another origin (its own port on 127.0.0.1) that
 * embeds the widget; `html` is the page (anything with a toString, read per
 * request). Resolves to its URL.
 */
async function hostPage(html) {
  const http = require("node:http");
  const server = http.createServer((req, res) => {
    if (req.url === "/favicon.ico") return void res.writeHead(204).end();
    res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
    res.end(req.url === "/" ? String(html) : "not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** Saves a screenshot of a main screen into the temp screenshot dir. */
async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SHOT_DIR, `${name}.png`), fullPage: true });
}

/**
 * Everything one test file needs: a fresh server and browser, torn down in
 * `after`. Use in a top-level `before`.
 */
async function setup() {
  const server = await startServer();
  const browser = await launch();
  return {
    server,
    url: server.url,
    passwords: server.passwords,
    ...browser,
    supervisorApi: () => apiLogin(server.url, "admin", server.passwords.admin),
    async teardown() {
      await browser.close().catch(() => {});
      await server.stop();
    },
  };
}

module.exports = { setup, startServer, hostPage, apiLogin, launch, screenshot, WAIT_MS, SHOT_DIR, ROOT };
