// Agents and supervisors: create, change name / role / capacity, grant
// profiles, disable (closes their console), reset the password.

import { get, post, put } from "./api.js";
import { h, replace, field, select } from "./dom.js";

export function render(ctx, container) {
  const { t } = ctx;
  const rows = h("tbody", { testid: "user-list" });
  const shown = h("p", { class: "secret", testid: "user-password", hidden: true });
  let profiles = [];

  const username = h("input", { testid: "user-username", required: true, maxlength: "40", autocomplete: "off" });
  const display = h("input", { testid: "user-display-name", maxlength: "80" });
  const role = select({ testid: "user-role" }, [
    { value: "agent", label: t("role.agent") },
    { value: "supervisor", label: t("role.supervisor") },
  ]);
  const capacity = h("input", { testid: "user-capacity", type: "number", min: "1", max: "50", value: "3" });
  const profile = h("select", { testid: "user-profile" });

  function showPassword(who, password) {
    replace(shown, t("agents.password_shown", { name: who }), " ", h("code", {}, password));
    shown.hidden = false;
  }

  const form = h(
    "form",
    {
      class: "card inline",
      testid: "user-form",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const created = await post("/api/users", {
            username: username.value.trim(),
            display_name: display.value.trim() || null,
            role: role.value,
            capacity: Number(capacity.value),
          });
          if (profile.value) await post(`/api/users/${created.user.id}/profiles`, { profile_id: Number(profile.value) });
          if (created.generated_password) showPassword(created.user.username, created.generated_password);
          username.value = "";
          display.value = "";
          load();
        } catch (error) {
          ctx.fail(error);
        }
      },
    },
    field(t("agents.username"), username).row,
    field(t("agents.display_name"), display).row,
    field(t("agents.role"), role).row,
    field(t("agents.capacity"), capacity).row,
    field(t("agents.profile"), profile).row,
    h("button", { type: "submit", class: "primary", testid: "user-create" }, t("create")),
  );

  container.append(
    h("h2", {}, t("nav.agents")),
    shown,
    form,
    h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", {}, t("agents.username")), h("th", {}, t("agents.display_name")), h("th", {}, t("agents.role")), h("th", {}, t("agents.capacity")), h("th", {}, t("agents.profile")), h("th", {}, "")),
      ),
      rows,
    ),
  );

  function row(u) {
    const self = ctx.me() && ctx.me().id === u.id;
    const d = h("input", { value: u.display_name, testid: "user-edit-display-name", "aria-label": t("agents.display_name"), maxlength: "80" });
    const r = select({ testid: "user-edit-role", "aria-label": t("agents.role"), disabled: self }, [
      { value: "agent", label: t("role.agent") },
      { value: "supervisor", label: t("role.supervisor") },
    ], u.role);
    const c = h("input", { value: String(u.capacity), type: "number", min: "1", max: "50", testid: "user-edit-capacity", "aria-label": t("agents.capacity") });
    const grant = select({ testid: "user-grant-profile", "aria-label": t("agents.profile") }, [{ value: "", label: "–" }, ...profiles.map((p) => ({ value: p.id, label: p.name }))]);
    const button = (testid, label, run, cls) => h("button", { type: "button", testid, class: cls, onclick: run }, label);
    return h(
      "tr",
      { testid: "user-row", dataset: { userId: u.id, disabled: u.disabled ? "true" : "false" }, class: u.disabled ? "disabled" : "" },
      h("td", {}, u.username, u.disabled ? h("span", { class: "badge", testid: "user-disabled" }, ` ${t("agents.disabled")}`) : null),
      h("td", {}, d),
      h("td", {}, r),
      h("td", {}, c),
      h("td", {}, grant),
      h(
        "td",
        { class: "actions" },
        button("user-save", t("save"), async () => {
          try {
            const body = { display_name: d.value, capacity: Number(c.value) };
            if (!self) body.role = r.value;
            await put(`/api/users/${u.id}`, body);
            if (grant.value) await post(`/api/users/${u.id}/profiles`, { profile_id: Number(grant.value) });
            ctx.notify(t("saved"));
            load();
          } catch (error) {
            ctx.fail(error);
          }
        }),
        self
          ? null
          : button(
              "user-toggle-disabled",
              u.disabled ? t("agents.enable") : t("agents.disable"),
              async () => {
                if (!u.disabled && !(await ctx.confirm(t("agents.disable_confirm", { name: u.display_name })))) return;
                try {
                  await put(`/api/users/${u.id}`, { disabled: !u.disabled });
                  load();
                } catch (error) {
                  ctx.fail(error);
                }
              },
              u.disabled ? "" : "danger",
            ),
        button("user-reset-password", t("agents.reset"), async () => {
          if (!(await ctx.confirm(t("agents.reset_confirm", { name: u.display_name })))) return;
          try {
            const done = await post(`/api/users/${u.id}/password`, {});
            showPassword(u.username, done.generated_password);
          } catch (error) {
            ctx.fail(error);
          }
        }),
      ),
    );
  }

  async function load() {
    try {
      profiles = await get("/api/profiles");
      const chosen = profile.value;
      replace(profile, h("option", { value: "" }, "–"), profiles.map((p) => h("option", { value: String(p.id) }, p.name)));
      if (chosen) profile.value = chosen;
      replace(rows, (await get("/api/users")).map(row));
    } catch (error) {
      ctx.fail(error);
    }
  }
  load();
}
