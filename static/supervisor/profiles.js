// Profiles: the queues an agent serves when signed in with one. Create,
// rename, choose queues, delete.

import { get, post, put, del } from "./api.js";
import { h, replace, field } from "./dom.js";

export function render(ctx, container) {
  const { t } = ctx;
  const list = h("div", { testid: "profile-list" });
  let queues = [];

  function queueChecks(selected, testid) {
    return h(
      "fieldset",
      { class: "checks", testid },
      h("legend", {}, t("profiles.queues")),
      queues.map((q) =>
        h("label", {}, h("input", { type: "checkbox", value: String(q.id), checked: selected.includes(q.id), dataset: { queueId: q.id } }), ` ${q.name}`),
      ),
    );
  }

  const checked = (box) => [...box.querySelectorAll("input:checked")].map((i) => Number(i.value));
  const name = h("input", { testid: "profile-name", required: true, maxlength: "80" });
  const form = h("form", { class: "card", testid: "profile-form" });
  container.append(h("h2", {}, t("nav.profiles")), form, list);

  let boxes = null;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await post("/api/profiles", { name: name.value, queue_ids: checked(boxes), media: ["chat"] });
      name.value = "";
      load();
    } catch (error) {
      ctx.fail(error);
    }
  });

  function drawForm() {
    boxes = queueChecks([], "profile-queues");
    replace(form, h("h3", {}, t("profiles.new")), field(t("name"), name).row, boxes, h("button", { type: "submit", class: "primary", testid: "profile-create" }, t("create")));
  }

  function card(p) {
    const n = h("input", { value: p.name, testid: "profile-edit-name", "aria-label": t("name"), maxlength: "80" });
    const boxes = queueChecks(p.queues, "profile-edit-queues");
    return h(
      "section",
      { class: "card", testid: "profile-row", dataset: { profileId: p.id } },
      field(t("name"), n).row,
      boxes,
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            testid: "profile-save",
            onclick: async () => {
              try {
                await put(`/api/profiles/${p.id}`, { name: n.value, queue_ids: checked(boxes) });
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
            testid: "profile-delete",
            onclick: async () => {
              if (!(await ctx.confirm(t("confirm.delete", { name: p.name })))) return;
              try {
                await del(`/api/profiles/${p.id}`);
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
      queues = await get("/api/queues");
      const profiles = await get("/api/profiles");
      drawForm();
      replace(list, profiles.map(card));
    } catch (error) {
      ctx.fail(error);
    }
  }
  load();
}
