// Shared predefined messages: for everyone, for a queue, or for one agent.
// Create, edit, move up/down and delete.

import { get, post, put, del } from "./api.js";
import { h, replace, field, select } from "./dom.js";

export function render(ctx, container) {
  const { t } = ctx;
  const list = h("div", { testid: "predefined-list" });
  let queues = [];
  let agents = [];

  const scope = select({ testid: "predefined-scope" }, [
    { value: "everyone", label: t("scope.everyone") },
    { value: "queue", label: t("scope.queue") },
    { value: "agent", label: t("scope.agent") },
  ]);
  const target = h("select", { testid: "predefined-target" });
  const heading = h("input", { testid: "predefined-heading", maxlength: "80", required: true });
  const body = h("textarea", { testid: "predefined-body", rows: "3", required: true });
  const targetField = field(t("predefined.target"), target);

  function fillTargets() {
    const options = scope.value === "queue" ? queues.map((q) => [q.id, q.name]) : agents.map((a) => [a.id, a.display_name]);
    replace(target, options.map(([value, label]) => h("option", { value: String(value) }, label)));
    targetField.row.hidden = scope.value === "everyone";
  }
  scope.addEventListener("change", fillTargets);

  const form = h(
    "form",
    {
      class: "card",
      testid: "predefined-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const payload = { heading: heading.value, body: body.value, scope: scope.value };
        if (scope.value === "queue") payload.queue_id = Number(target.value);
        if (scope.value === "agent") payload.agent_id = Number(target.value);
        try {
          await post("/api/predefined", payload);
          heading.value = "";
          body.value = "";
          ctx.notify(t("saved"));
          load();
        } catch (error) {
          ctx.fail(error);
        }
      },
    },
    h("h3", {}, t("predefined.new")),
    field(t("predefined.scope"), scope).row,
    targetField.row,
    field(t("predefined.heading"), heading).row,
    field(t("predefined.body"), body).row,
    h("button", { type: "submit", class: "primary", testid: "predefined-create" }, t("create")),
  );

  container.append(h("h2", {}, t("nav.predefined")), form, list);

  function groupTitle(m) {
    if (m.scope === "everyone") return t("scope.everyone");
    if (m.scope === "queue") return `${t("scope.queue")}: ${queues.find((q) => q.id === m.queue_id)?.name ?? m.queue_id}`;
    return `${t("scope.agent")}: ${agents.find((a) => a.id === m.agent_id)?.display_name ?? m.agent_id}`;
  }

  function scopeOf(m) {
    const s = { scope: m.scope };
    if (m.scope === "queue") s.queue_id = m.queue_id;
    if (m.scope === "agent") s.agent_id = m.agent_id;
    return s;
  }

  async function move(group, index, by) {
    const ids = group.map((m) => m.id);
    const [id] = ids.splice(index, 1);
    ids.splice(index + by, 0, id);
    try {
      await post("/api/predefined/reorder", { ...scopeOf(group[0]), ids });
      load();
    } catch (error) {
      ctx.fail(error);
    }
  }

  function item(m, group, index) {
    const editHeading = h("input", { value: m.heading, testid: "predefined-edit-heading", "aria-label": t("predefined.heading"), maxlength: "80" });
    const editBody = h("textarea", { testid: "predefined-edit-body", rows: "2", "aria-label": t("predefined.body") });
    editBody.value = m.body;
    return h(
      "li",
      { class: "item", testid: "predefined-row", dataset: { id: m.id, scope: m.scope } },
      editHeading,
      editBody,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", disabled: index === 0, "aria-label": t("up"), onclick: () => move(group, index, -1) }, "↑"),
        h("button", { type: "button", disabled: index === group.length - 1, "aria-label": t("down"), onclick: () => move(group, index, 1) }, "↓"),
        h(
          "button",
          {
            type: "button",
            testid: "predefined-save",
            onclick: async () => {
              try {
                await put(`/api/predefined/${m.id}`, { heading: editHeading.value, body: editBody.value });
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
            testid: "predefined-delete",
            onclick: async () => {
              if (!(await ctx.confirm(t("confirm.delete", { name: m.heading })))) return;
              try {
                await del(`/api/predefined/${m.id}`);
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
      const messages = await get("/api/predefined");
      const groups = new Map();
      for (const m of messages) {
        const key = `${m.scope}:${m.queue_id ?? ""}:${m.agent_id ?? ""}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(m);
      }
      replace(
        list,
        groups.size === 0 ? h("p", { class: "muted" }, t("predefined.none")) : null,
        [...groups.values()].map((group) =>
          h("section", { class: "group" }, h("h3", {}, groupTitle(group[0])), h("ul", { class: "items" }, group.map((m, i) => item(m, group, i)))),
        ),
      );
    } catch (error) {
      ctx.fail(error);
    }
  }

  Promise.all([get("/api/queues"), get("/api/users")])
    .then(([q, users]) => {
      queues = q;
      agents = users.filter((u) => u.role === "agent");
      fillTargets();
      load();
    })
    .catch(ctx.fail);
}
