// DOM helpers for the console. Text only ever goes in through textContent
// (or attributes); nothing here parses HTML.

/**
 * el("button", { class: "x", testid: "composer-send", text: "Send", i18n: "send",
 *   attrs: { type: "button" }, on: { click: fn } }, [children])
 * `i18n` stores the translation key in data-i18n so translateStatic can
 * re-translate the element when the language changes.
 */
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.testid) node.dataset.testid = options.testid;
  if (options.i18n) node.dataset.i18n = options.i18n;
  if (options.text != null) node.textContent = String(options.text);
  for (const [name, value] of Object.entries(options.attrs || {})) {
    if (value === false || value == null) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [event, handler] of Object.entries(options.on || {})) node.addEventListener(event, handler);
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/** A button with type="button" (never submits a form by accident). */
export function button(options, children) {
  const b = el("button", { ...options, attrs: { type: "button", ...(options.attrs || {}) } }, children);
  return b;
}

/** A visual icon (drawn in CSS) with an accessible name. */
export function icon(name, label, testid) {
  return el("span", { class: `icon icon-${name}`, testid, attrs: { role: "img", "aria-label": label } });
}

export function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
}

export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** 48213 → "47.1 KB". */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
