// Queues: create, rename, change offer timeout and priority, delete (the
// server refuses while chats wait or a site uses the queue).

import { get, post, put, del } from "./api.js";
import { h, replace, field } from "./dom.js";

export function render(ctx, container) {
  const { t } = ctx;
  const rows = h("tbody", { testid: "queue-list" });
  const name = h("input", { testid: "queue-name", required: true, maxlength: "80" });
  const timeout = h("input", { testid: "queue-timeout", type: "number", min: "1", max: "3600", value: "30" });
  const priority = h("input", { testid: "queue-priority", type: "number", value: "0" });

  const form = h(
    "form",
    {
      class: "card inline",
      testid: "queue-form",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await post("/api/queues", { name: name.value, offer_timeout_secs: Number(timeout.value), priority: Number(priority.value) });
          name.value = "";
          load();
        } catch (error) {
          ctx.fail(error);
        }
      },
    },
    field(t("name"), name).row,
    field(t("queues.timeout"), timeout).row,
    field(t("queues.priority"), priority).row,
    h("button", { type: "submit", class: "primary", testid: "queue-create" }, t("create")),
  );

  container.append(
    h("h2", {}, t("nav.queues")),
    form,
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, t("name")), h("th", {}, t("queues.timeout")), h("th", {}, t("queues.priority")), h("th", {}, ""))),
      rows,
    ),
  );

  function row(q) {
    const n = h("input", { value: q.name, testid: "queue-edit-name", "aria-label": t("name"), maxlength: "80" });
    const to = h("input", { value: String(q.offer_timeout_secs), type: "number", min: "1", max: "3600", testid: "queue-edit-timeout", "aria-label": t("queues.timeout") });
    const pr = h("input", { value: String(q.priority), type: "number", testid: "queue-edit-priority", "aria-label": t("queues.priority") });
    return h(
      "tr",
      { testid: "queue-row", dataset: { queueId: q.id } },
      h("td", {}, n),
      h("td", {}, to),
      h("td", {}, pr),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            testid: "queue-save",
            onclick: async () => {
              try {
                await put(`/api/queues/${q.id}`, { name: n.value, offer_timeout_secs: Number(to.value), priority: Number(pr.value) });
                ctx.notify(t("saved"));
              } catch (error) {
                ctx.fail(error);
              }
            },
          },
          t("save"),
        ),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            testid: "queue-delete",
            onclick: async () => {
              if (!(await ctx.confirm(t("confirm.delete", { name: q.name })))) return;
              try {
                await del(`/api/queues/${q.id}`);
                load();
              } catch (error) {
                ctx.fail(error);
              }
            },
          },
          t("delete"),
        ),
      ),
    );
  }

  async function load() {
    try {
      const list = await get("/api/queues");
      replace(rows, list.map(row));
    } catch (error) {
      ctx.fail(error);
    }
  }
  load();
}
