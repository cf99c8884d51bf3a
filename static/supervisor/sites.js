// Sites: the websites that embed the widget. Create, change settings,
// rotate the identity secret (shown once) and delete.

import { get, post, put, del } from "./api.js";
import { h, replace, field, select } from "./dom.js";

export function render(ctx, container) {
  const { t } = ctx;
  const list = h("div", { testid: "site-list" });
  const secret = h("p", { class: "secret", testid: "site-secret", hidden: true });
  let queues = [];

  const name = h("input", { testid: "site-name", required: true, maxlength: "80" });
  const key = h("input", { testid: "site-key", maxlength: "40", placeholder: t("sites.key_hint") });
  const origins = h("input", { testid: "site-origins", placeholder: "https://shop.example" });
  const queue = h("select", { testid: "site-queue" });
  const form = h(
    "form",
    {
      class: "card",
      testid: "site-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.value, allowed_origins: splitOrigins(origins.value), default_queue_id: Number(queue.value) };
        if (key.value.trim()) body.key = key.value.trim();
        try {
          const created = await post("/api/sites", body);
          showSecret(created);
          name.value = "";
          key.value = "";
          origins.value = "";
          load();
        } catch (error) {
          ctx.fail(error);
        }
      },
    },
    h("h3", {}, t("sites.new")),
    field(t("name"), name).row,
    field(t("sites.key"), key).row,
    field(t("sites.origins"), origins).row,
    field(t("sites.queue"), queue).row,
    h("button", { type: "submit", class: "primary", testid: "site-create" }, t("create")),
  );
  container.append(h("h2", {}, t("nav.sites")), secret, form, list);

  function splitOrigins(raw) {
    return raw.split(/[\s,]+/).map((o) => o.trim()).filter(Boolean);
  }

  function showSecret(site) {
    replace(secret, t("sites.secret", { name: site.name }), " ", h("code", {}, site.identity_secret));
    secret.hidden = false;
  }

  function card(s) {
    const n = h("input", { value: s.name, testid: "site-edit-name", "aria-label": t("name"), maxlength: "80" });
    const o = h("input", { value: s.allowed_origins.join(", "), testid: "site-edit-origins", "aria-label": t("sites.origins") });
    const q = select({ testid: "site-edit-queue", "aria-label": t("sites.queue") }, queues.map((x) => ({ value: x.id, label: x.name })), s.default_queue_id);
    const flag = (prop, label) => h("label", {}, h("input", { type: "checkbox", checked: s[prop], dataset: { flag: prop }, testid: `site-${prop}` }), ` ${label}`);
    const flags = h(
      "div",
      { class: "checks" },
      flag("require_verified", t("sites.require_verified")),
      flag("allow_customer_attachments", t("sites.attachments")),
      flag("transcript_email", t("sites.transcript_email")),
    );
    const value = (prop) => flags.querySelector(`[data-flag="${prop}"]`).checked;
    const action = (testid, label, run, cls) => h("button", { type: "button", testid, class: cls, onclick: run }, label);
    return h(
      "section",
      { class: "card", testid: "site-row", dataset: { siteId: s.id } },
      h("p", { class: "muted" }, `${t("sites.key")}: `, h("code", {}, s.key), " · ", h("code", {}, `<script src="${location.origin}/widget.js" data-site="${s.key}" async></script>`)),
      field(t("name"), n).row,
      field(t("sites.origins"), o).row,
      field(t("sites.queue"), q).row,
      flags,
      h(
        "div",
        { class: "actions" },
        action("site-save", t("save"), async () => {
          try {
            await put(`/api/sites/${s.id}`, {
              name: n.value,
              allowed_origins: splitOrigins(o.value),
              default_queue_id: Number(q.value),
              require_verified: value("require_verified"),
              allow_customer_attachments: value("allow_customer_attachments"),
              transcript_email: value("transcript_email"),
            });
            ctx.notify(t("saved"));
          } catch (error) {
            ctx.fail(error);
          }
        }),
        action("site-rotate", t("sites.rotate"), async () => {
          if (!(await ctx.confirm(t("sites.rotate_confirm")))) return;
          try {
            showSecret(await post(`/api/sites/${s.id}/rotate-secret`));
          } catch (error) {
            ctx.fail(error);
          }
        }),
        action(
          "site-delete",
          t("delete"),
          async () => {
            if (!(await ctx.confirm(t("confirm.delete", { name: s.name })))) return;
            try {
              await del(`/api/sites/${s.id}`);
              load();
            } catch (error) {
              ctx.fail(error);
            }
          },
          "danger",
        ),
      ),
    );
  }

  async function load() {
    try {
      queues = await get("/api/queues");
      const chosen = queue.value;
      replace(queue, queues.map((x) => h("option", { value: String(x.id) }, x.name)));
      if (chosen) queue.value = chosen;
      replace(list, (await get("/api/sites")).map(card));
    } catch (error) {
      ctx.fail(error);
    }
  }
  load();
}
