// The tab strip: one tab per offer or chat, with an unread badge and the x
// that closes it. Panels are hidden, never destroyed, when another tab is
// selected, so each chat keeps its draft and scroll position.

import { el, button } from "./dom.js";
import { t } from "./strings.js";

export class Tabs {
  /** onClose(id) is called when a tab's x is clicked. */
  constructor(strip, panels, empty, onClose) {
    this.strip = strip;
    this.panels = panels;
    this.empty = empty;
    this.onClose = onClose;
    this.items = new Map(); // id -> { li, button, badge, close, panel, unread }
    this.selected = null;
    strip.addEventListener("keydown", (e) => this.keyNav(e));
  }

  has(id) {
    return this.items.has(id);
  }

  /** Adds a tab and its panel (a <section>); returns the panel. */
  add(id, title) {
    const item = { unread: 0 };
    item.label = el("span", { class: "tab-title", text: title });
    item.badge = el("span", { class: "tab-unread", testid: "tab-unread", attrs: { hidden: true } });
    item.button = button(
      { class: "tab-button", attrs: { role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`, "aria-selected": "false", tabindex: "-1" },
        on: { click: () => this.select(id) } },
      [item.label, item.badge],
    );
    item.close = button({ class: "tab-close", testid: "tab-close", text: "×", attrs: { "aria-label": t("tab.close", { name: title }) },
      on: { click: () => this.onClose(id) } });
    item.li = el("li", { class: "chat-tab", testid: "chat-tab", attrs: { role: "presentation", "data-conversation-id": id } }, [item.button, item.close]);
    item.panel = el("section", { class: "panel", testid: "chat-panel",
      attrs: { id: `panel-${id}`, role: "tabpanel", "aria-labelledby": `tab-${id}`, "data-conversation-id": id, hidden: true } });
    this.strip.append(item.li);
    this.panels.append(item.panel);
    this.items.set(id, item);
    this.empty.hidden = true;
    if (!this.selected) this.select(id);
    return item.panel;
  }

  rename(id, title, kind) {
    const item = this.items.get(id);
    if (!item) return;
    item.label.textContent = title;
    item.close.setAttribute("aria-label", t(kind === "offer" ? "tab.reject" : "tab.close", { name: title }));
  }

  mark(id, className, on) {
    this.items.get(id)?.li.classList.toggle(className, on);
  }

  select(id) {
    if (!this.items.has(id)) return;
    this.selected = id;
    for (const [key, item] of this.items) {
      const on = key === id;
      item.button.setAttribute("aria-selected", String(on));
      item.li.setAttribute("aria-selected", String(on)); // for scripts that look at the tab item
      item.button.tabIndex = on ? 0 : -1;
      item.panel.hidden = !on;
      item.li.classList.toggle("active", on);
    }
    this.setUnread(id, 0);
  }

  /** Counts one more unread item unless the tab is the one being looked at. */
  bump(id) {
    const item = this.items.get(id);
    if (!item) return;
    if (this.selected === id && !document.hidden) return;
    this.setUnread(id, item.unread + 1);
  }

  setUnread(id, n) {
    const item = this.items.get(id);
    if (!item) return;
    item.unread = n;
    item.badge.textContent = String(n);
    item.badge.hidden = n === 0;
    item.badge.setAttribute("aria-label", t("tab.unread", { n }));
  }

  /** The page became visible again: the selected tab has been read. */
  seen() {
    if (this.selected) this.setUnread(this.selected, 0);
  }

  remove(id) {
    const item = this.items.get(id);
    if (!item) return;
    item.li.remove();
    item.panel.remove();
    this.items.delete(id);
    if (this.selected === id) {
      this.selected = null;
      const next = this.items.keys().next();
      if (!next.done) this.select(next.value);
    }
    this.empty.hidden = this.items.size > 0;
  }

  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  keyNav(e) {
    if (!["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) return;
    if (!e.target.classList.contains("tab-button")) return;
    const ids = [...this.items.keys()];
    const at = ids.indexOf(this.selected);
    let next = at;
    if (e.key === "ArrowLeft") next = (at - 1 + ids.length) % ids.length;
    if (e.key === "ArrowRight") next = (at + 1) % ids.length;
    if (e.key === "Home") next = 0;
    if (e.key === "End") next = ids.length - 1;
    e.preventDefault();
    this.select(ids[next]);
    this.items.get(ids[next]).button.focus();
  }
}
