// The supervisor pages: log in (supervisors only), then one page at a time
// from the navigation. Each page module exports render(ctx, container) and
// may return a stop() function (the live view stops polling with it).

import { createI18n, translateStatic } from "/i18n.js";
import { api, get, post, ApiError } from "./api.js";
import { h } from "./dom.js";
import { TEXTS } from "./texts.js";
import * as live from "./live.js";
import * as log from "./log.js";
import * as predefined from "./predefined.js";
import * as queues from "./queues.js";
import * as profiles from "./profiles.js";
import * as sites from "./sites.js";
import * as agents from "./agents.js";

const PAGES = { live, log, predefined, queues, profiles, sites, agents };
const i18n = createI18n(TEXTS);
const { t } = i18n;
const $ = (id) => document.getElementById(id);

let current = { name: "live", stop: null };
let me = null;

function showError(message) {
  const item = h("li", { class: "error", role: "alert", testid: "supervisor-error" }, message);
  $("errors").append(item);
  setTimeout(() => item.remove(), 8000);
}

function notify(message) {
  const item = h("li", { class: "notice", testid: "supervisor-notice" }, message);
  $("notices").append(item);
  setTimeout(() => item.remove(), 5000);
}

/** A readable text for a failed request, by the server's error code. */
function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) {
      showLogin();
      return t("error.session");
    }
    const known = error.code && TEXTS.en[`error.${error.code}`];
    if (known) return t(`error.${error.code}`);
    if (error.code === "network") return t("error.network");
    return error.message || t("error.generic");
  }
  return t("error.generic");
}

/** Shared by every page. */
const ctx = {
  t,
  lang: () => i18n.lang(),
  api,
  me: () => me,
  notify,
  fail: (error) => showError(errorText(error)),
  errorText,
  /** A custom confirm dialog (window.confirm is not used). */
  confirm: (question) =>
    new Promise((resolve) => {
      const dialog = h(
        "dialog",
        { class: "confirm", testid: "confirm-dialog" },
        h("p", {}, question),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "danger", testid: "confirm-yes", onclick: () => done(true) }, t("yes")),
          h("button", { type: "button", testid: "confirm-no", onclick: () => done(false) }, t("no")),
        ),
      );
      function done(answer) {
        dialog.close();
        dialog.remove();
        resolve(answer);
      }
      dialog.addEventListener("cancel", (e) => {
        e.preventDefault();
        done(false);
      });
      document.body.append(dialog);
      dialog.showModal();
    }),
};

function showLogin() {
  if (current.stop) current.stop();
  current.stop = null;
  me = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("username").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = me.display_name;
  open(location.hash.slice(1) in PAGES ? location.hash.slice(1) : "live");
}

function open(name) {
  if (current.stop) current.stop();
  current = { name, stop: null };
  for (const button of document.querySelectorAll(".nav button")) {
    button.setAttribute("aria-current", button.dataset.page === name ? "page" : "false");
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  const container = $("page");
  container.replaceChildren();
  const stop = PAGES[name].render(ctx, container);
  current.stop = typeof stop === "function" ? stop : null;
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const answer = await post("/api/login", { username: $("username").value, password: $("password").value });
    if (answer.user.role !== "supervisor") {
      await post("/api/logout").catch(() => {});
      $("login-error").textContent = t("login.not_supervisor");
      return;
    }
    me = answer.user;
    $("password").value = "";
    showApp();
  } catch (error) {
    $("login-error").textContent =
      error instanceof ApiError && error.status === 401
        ? t("login.wrong")
        : error instanceof ApiError && error.code === "account_disabled"
          ? t("error.account_disabled")
          : errorText(error);
  }
}

async function start() {
  translateStatic(document, t);
  $("language").value = i18n.lang();
  $("language").addEventListener("change", (e) => i18n.setLang(e.target.value));
  i18n.onChange(() => {
    translateStatic(document, t);
    if (me) open(current.name);
  });
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", async () => {
    await post("/api/logout").catch(() => {});
    showLogin();
  });
  for (const button of document.querySelectorAll(".nav button")) {
    button.addEventListener("click", () => open(button.dataset.page));
  }
  try {
    const answer = await get("/api/me");
    if (answer.user.role === "supervisor") {
      me = answer.user;
      showApp();
      return;
    }
  } catch (_) {
    // Not logged in.
  }
  showLogin();
}

start();
