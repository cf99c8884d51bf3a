// Message bubbles: customer, agents (with their name), system events
// (joined, left, invited…), offers of choices and attachments. Every piece
// of chat text goes in as textContent.

import { el, icon, timeOf, formatSize } from "./dom.js";
import { t } from "./strings.js";

const CONTRIBUTIONS = new Set(["message", "choices", "choice", "choices_dismissed"]);

/** Who a bubble is from, as the data-author attribute says it. */
export function authorOf(event) {
  return CONTRIBUTIONS.has(event.kind) ? event.author.role : "system";
}

/** The download URL of an attachment: the session cookie authenticates it. */
export function attachmentUrl(id) {
  return `/api/attachments/${encodeURIComponent(id)}`;
}

function attachmentList(attachments, sent) {
  const list = el("ul", { class: "attachments" });
  for (const a of attachments) {
    // A file can be downloaded only once its message is stored: until then, its name.
    const link = sent
      ? el("a", { class: "attachment-link", testid: "attachment-link", text: a.name, attrs: { href: attachmentUrl(a.id), download: a.name } })
      : el("span", { class: "attachment-name", text: a.name });
    const item = el("li", { class: "attachment" }, [link, el("span", { class: "size", text: ` (${formatSize(a.size)})` })]);
    if (sent && String(a.content_type).startsWith("image/")) {
      const img = el("img", { class: "attachment-preview", testid: "attachment-preview",
        attrs: { src: attachmentUrl(a.id), alt: a.name, loading: "lazy" } });
      item.prepend(el("a", { attrs: { href: attachmentUrl(a.id), download: a.name, tabindex: "-1" } }, [img]));
    }
    list.append(item);
  }
  return list;
}

function choicesBody(event) {
  const data = event.data || {};
  const box = el("div", { class: "choices-message", testid: "choices-message" });
  box.append(el("p", { class: "message-text", testid: "message-text", text: data.prompt ?? event.text }));
  const options = el("ol", { class: "choices-options" });
  for (const option of data.options || []) options.append(el("li", { text: option.label }));
  box.append(options);
  return box;
}

/** A bubble for a stored event (or a pending own message: event.seq undefined). */
export function bubble(event, { pending = false } = {}) {
  const author = authorOf(event);
  const isPrivate = event.audience === "agents_only" && author !== "system";
  const li = el("li", { class: `message ${author} kind-${event.kind}`, testid: "message",
    attrs: { "data-author": author, "data-kind": event.kind } });
  if (event.seq) li.dataset.seq = event.seq;
  if (isPrivate) {
    li.dataset.private = "true";
    li.classList.add("private");
  }
  if (pending) li.classList.add("pending");
  if (author === "system") {
    li.append(el("span", { class: "message-text", testid: "message-text", text: event.text }));
    if (event.at) li.append(el("time", { class: "at", text: ` · ${timeOf(event.at)}` }));
    return li;
  }
  const name = event.author.name || t(author === "customer" ? "author.customer" : "author.agent");
  const meta = el("div", { class: "meta" }, [el("span", { class: "name", text: name })]);
  if (isPrivate) meta.append(icon("eye", t("message.private"), "private-marker"));
  meta.append(el("time", { class: "at", text: event.at ? timeOf(event.at) : t("message.sending") }));
  li.append(meta);
  if (event.kind === "choices") li.append(choicesBody(event));
  else if (event.text) li.append(el("p", { class: "message-text", testid: "message-text", text: event.text }));
  if (event.attachments && event.attachments.length) li.append(attachmentList(event.attachments, !pending));
  return li;
}

/** Marks a pending own bubble as stored (at) or failed (reason). */
export function settle(li, at, failure) {
  li.classList.remove("pending");
  li.classList.toggle("failed", Boolean(failure));
  const time = li.querySelector("time");
  if (time) time.textContent = failure ? t("message.failed", { reason: failure }) : at ? timeOf(at) : t("message.sent");
}
