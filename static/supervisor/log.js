// The chat log: search every conversation (free text over messages,
// customer name and e-mail; state; queue) and read one full transcript,
// private messages included and visibly marked.

import { get } from "./api.js";
import { h, replace, select, when } from "./dom.js";

const PAGE_SIZE = 50;

export function render(ctx, container) {
  const { t } = ctx;
  const q = h("input", { type: "search", testid: "log-search", placeholder: t("log.search_hint"), "aria-label": t("log.search") });
  const state = select({ testid: "log-state", "aria-label": t("log.state") }, [
    { value: "", label: t("log.state_any") },
    { value: "live", label: t("log.state_live") },
    { value: "closed", label: t("log.state_closed") },
  ]);
  const queue = select({ testid: "log-queue", "aria-label": t("queue") }, [{ value: "", label: t("log.queue_any") }]);
  const rows = h("tbody", { testid: "log-results" });
  const more = h("button", { type: "button", testid: "log-more", hidden: true }, t("log.more"));
  const detail = h("section", { class: "transcript", testid: "log-transcript", hidden: true });
  let cursor = null;

  get("/api/queues")
    .then((list) => {
      for (const item of list) queue.append(h("option", { value: String(item.id) }, item.name));
    })
    .catch(ctx.fail);

  const form = h(
    "form",
    { class: "toolbar", role: "search", onsubmit: (e) => (e.preventDefault(), search(false)) },
    q,
    state,
    queue,
    h("button", { type: "submit", class: "primary", testid: "log-search-submit" }, t("log.search")),
  );

  container.append(
    h("h2", {}, t("log.heading")),
    form,
    h(
      "div",
      { class: "split" },
      h(
        "div",
        { class: "results" },
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, t("log.started")), h("th", {}, t("log.customer")), h("th", {}, t("queue")), h("th", {}, t("log.agents")), h("th", {}, t("log.state")))),
          rows,
        ),
        more,
      ),
      detail,
    ),
  );
  more.addEventListener("click", () => search(true));

  async function search(next) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (q.value.trim()) params.set("q", q.value.trim());
    if (state.value) params.set("state", state.value);
    if (queue.value) params.set("queue_id", queue.value);
    if (next && cursor) params.set("before", cursor);
    try {
      const found = await get(`/api/conversations?${params}`);
      if (!next) rows.replaceChildren();
      for (const c of found.conversations) rows.append(row(c));
      if (!next && found.conversations.length === 0) rows.append(h("tr", {}, h("td", { colspan: 5, testid: "log-empty" }, t("log.none"))));
      cursor = found.next_before;
      more.hidden = !cursor;
    } catch (error) {
      ctx.fail(error);
    }
  }

  function customerText(c) {
    const parts = [c.customer.name, c.customer.email].filter(Boolean);
    return parts.length ? parts.join(" · ") : t("log.anonymous");
  }

  function row(c) {
    const open = () => show(c.conversation_id);
    return h(
      "tr",
      { testid: "log-row", dataset: { conversationId: c.conversation_id }, tabindex: "0", class: "clickable", onclick: open, onkeydown: (e) => e.key === "Enter" && open() },
      h("td", {}, when(c.created_at, ctx.lang())),
      h("td", { testid: "log-row-customer" }, customerText(c)),
      h("td", {}, c.queue_name),
      h("td", {}, c.agents.map((a) => a.display_name).join(", ")),
      h("td", {}, t(`state.${c.state}`)),
    );
  }

  function author(event) {
    if (event.author.role === "system") return t("log.system");
    return event.author.name;
  }

  function eventNode(event) {
    const role = event.author.role;
    const privateMark = event.private
      ? h("span", { class: "icon icon-eye private-marker", testid: "private-marker", role: "img", "aria-label": t("log.private"), title: t("log.private") })
      : null;
    const isEvent = !["message", "choices", "choice"].includes(event.kind);
    const text = event.kind === "message" || event.kind === "choices" || event.kind === "choice" ? event.text : event.text || t(`kind.${event.kind}`);
    return h(
      "li",
      { class: `message ${isEvent ? "event" : role}${event.private ? " private" : ""}`, testid: "message", dataset: { author: role, private: event.private ? "true" : "false", seq: event.seq } },
      h("div", { class: "meta" }, privateMark, h("strong", {}, author(event)), " ", h("time", {}, when(event.at, ctx.lang())), event.private ? h("span", { class: "private-label" }, ` ${t("log.private")}`) : null),
      h("div", { class: "text", testid: "message-text" }, text),
      (event.attachments || []).map((a) =>
        h("div", {}, h("a", { href: `/api/attachments/${encodeURIComponent(a.id)}`, testid: "attachment-link", download: a.name }, `${a.name} (${Math.ceil(a.size / 1024)} kB)`)),
      ),
    );
  }

  async function show(id) {
    try {
      const log = await get(`/api/conversations/${encodeURIComponent(id)}/log`);
      const c = log.conversation;
      for (const tr of rows.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.conversationId === id);
      replace(
        detail,
        h("h3", {}, customerText(c)),
        h(
          "p",
          { class: "muted" },
          `${c.queue_name} · ${t(`state.${c.state}`)} · ${when(c.created_at, ctx.lang())}`,
          " · ",
          h("a", { href: `/api/conversations/${encodeURIComponent(id)}/log?format=text`, testid: "log-download", download: `chat-${id}.txt` }, t("log.download")),
        ),
        h("ol", { class: "messages", testid: "log-messages" }, log.events.map(eventNode)),
      );
      detail.hidden = false;
    } catch (error) {
      ctx.fail(error);
    }
  }

  search(false);
}
