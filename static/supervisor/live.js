// Live view: queues (waiting, longest wait, agents ready), agents
// (status, pause reason, open chats, reconnecting) and alerts (agents lost
// after the grace period and what happened to their chats), polled every
// 2 seconds.

import { get } from "./api.js";
import { h, replace, duration, when } from "./dom.js";

const POLL_MS = 2000;

export function render(ctx, container) {
  const { t } = ctx;
  const updated = h("p", { class: "muted", testid: "live-updated" });
  const queueBody = h("tbody", { testid: "live-queues" });
  const agentBody = h("tbody", { testid: "live-agents" });
  const alertList = h("ul", { class: "alerts", testid: "live-alerts", attrs: { role: "status" } });
  container.append(
    h("h2", {}, t("live.heading")),
    updated,
    alertList,
    h("h3", {}, t("live.queues")),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, t("queue")), h("th", {}, t("live.waiting")), h("th", {}, t("live.longest")), h("th", {}, t("live.ready")))),
      queueBody,
    ),
    h("h3", {}, t("live.agents")),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, t("agent")), h("th", {}, t("status")), h("th", {}, t("live.open_chats")))),
      agentBody,
    ),
  );

  let timer = null;
  let stopped = false;
  let failed = false;

  function statusText(agent) {
    if (agent.reconnecting) return t("status.reconnecting");
    if (agent.status === "ready") return t("status.ready");
    if (agent.status === "not_ready") return t("status.not_ready", { reason: agent.pause_reason || "" });
    return t("status.offline");
  }

  function draw(view) {
    replace(updated, t("live.updated", { time: when(view.at, ctx.lang()) }));
    replace(
      queueBody,
      view.queues.map((q) =>
        h(
          "tr",
          { testid: "live-queue", dataset: { queueId: q.id, waiting: q.waiting } },
          h("td", { testid: "live-queue-name" }, q.name),
          h("td", { testid: "live-queue-waiting", class: q.waiting > 0 ? "num busy" : "num" }, q.waiting),
          h("td", { testid: "live-queue-longest", class: "num" }, q.waiting > 0 ? duration(q.longest_wait_secs) : "–"),
          h("td", { testid: "live-queue-ready", class: "num" }, q.agents_ready),
        ),
      ),
    );
    if (view.queues.length === 0) replace(queueBody, h("tr", {}, h("td", { colspan: 4 }, t("live.no_queues"))));
    replace(
      agentBody,
      view.agents.map((a) =>
        h(
          "tr",
          { testid: "live-agent", dataset: { agentId: a.id, status: a.status } },
          h("td", { testid: "live-agent-name" }, a.display_name),
          h("td", {}, h("span", { class: `status ${a.status}`, testid: "live-agent-status" }, statusText(a))),
          h("td", { testid: "live-agent-chats", class: "num" }, `${a.open_chats} / ${a.capacity}`),
        ),
      ),
    );
    if (view.agents.length === 0) replace(agentBody, h("tr", {}, h("td", { colspan: 3 }, t("live.no_agents"))));
    replace(
      alertList,
      (view.alerts || []).map((a) =>
        h(
          "li",
          { class: "alert", testid: "live-alert", dataset: { kind: a.kind } },
          `${when(a.at, ctx.lang())} · `,
          t(`alert.${a.kind}`, { agent: a.agent_name, chat: (a.conversation_id || "").slice(0, 8) }),
        ),
      ),
    );
  }

  async function poll() {
    try {
      const view = await get("/api/live");
      if (stopped) return;
      failed = false;
      draw(view);
    } catch (error) {
      if (stopped) return;
      // Report once per outage, not every 2 seconds.
      if (!failed) ctx.fail(error);
      failed = true;
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
