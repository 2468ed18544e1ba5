// Alerts: live list from /ws/alerts, filters, acknowledge/resolve, detail (assignee, comments, snooze, history),
// optional critical notification. #/alerts/policies is the sub-view of policies and mutes (alerts-policies.js).
import { api, stream } from "../api.js";
import { attempt, badge, clear, dialog, h, problem, setLive, toIso, when } from "../ui.js";
import { renderPolicies } from "./alerts-policies.js";

const SEVERITIES = ["critical", "warning", "info"];

const SNOOZES = [["15", "15 min"], ["60", "1 h"], ["480", "8 h"]];

export async function render(main) {
  if (/^#\/alerts\/policies/.test(location.hash)) return renderPolicies(main);
  const state = { filters: { status: "", severity: "", source: "", since: "" }, alerts: new Map(), total: 0 };
  const notify = h("input", { type: "checkbox", id: "notify-critical" });
  const countEl = h("span", { class: "count", "aria-live": "polite" });
  const list = h("div", { id: "alert-list" });
  const filters = h("form", { class: "filters", "aria-label": "Alert filters" },
    field("Status", h("select", { name: "status" }, opts(["", "open", "acknowledged", "resolved"]))),
    field("Severity", h("select", { name: "severity" }, opts(["", ...SEVERITIES]))),
    field("Source", h("input", { name: "source", placeholder: "reid, plate, geofence…" })),
    field("Since", h("input", { name: "since", type: "datetime-local" })),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    for (const k of Object.keys(state.filters)) state.filters[k] = filters.elements[k].value;
    load();
  });
  notify.addEventListener("change", () => {
    if (notify.checked && "Notification" in window && Notification.permission === "default") Notification.requestPermission();
  });

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Alerts"), countEl,
    h("label", { class: "inline" }, notify, " Notify me of critical alerts"),
    h("a", { href: "#/alerts/policies", class: "sub-link" }, "Policies and mutes")), filters, list);

  const matches = (a) => {
    const f = state.filters;
    return (!f.status || a.status === f.status) && (!f.severity || a.severity === f.severity)
      && (!f.source || a.source === f.source);
  };

  function draw() {
    const rows = [...state.alerts.values()].filter(matches)
      .sort((a, b) => (b.last_seen_at || "").localeCompare(a.last_seen_at || ""));
    countEl.textContent = `${rows.length} shown${state.total > rows.length ? ` of ${state.total}` : ""}`;
    clear(list);
    if (!rows.length) { list.append(h("p", { class: "muted" }, "No alerts match.")); return; }
    list.append(h("ul", { class: "alerts" }, rows.map(row)));
  }

  function row(a) {
    return h("li", { class: `alert sev-${a.severity}`, dataset: { id: a.id, status: a.status } },
      h("div", { class: "alert-main" },
        badge(a.severity),
        h("button", { type: "button", class: "link alert-title", onclick: () => detail(a.id) }, a.title),
        h("span", { class: "muted" }, ` ${a.source} · ${a.kind}`)),
      h("div", { class: "alert-meta" },
        badge(a.status, `st-${a.status}`),
        h("span", { title: "times seen" }, `×${a.count}`),
        h("span", {}, "last seen ", when(a.last_seen_at)),
        a.assignee ? h("span", { class: "assignee" }, "assigned to ", a.assignee) : null,
        a.snoozed_until && new Date(a.snoozed_until) > new Date() ? badge("snoozed", "snoozed") : null,
        a.muted ? badge("muted", "muted") : null,
        a.status === "open" ? h("button", { type: "button", onclick: () => act(a, "acknowledge") }, "Acknowledge") : null,
        a.status !== "resolved" ? h("button", { type: "button", class: "secondary", onclick: () => act(a, "resolve") }, "Resolve") : null));
  }

  async function act(a, action) {
    const updated = await attempt(() => api(`alerts/${a.id}/${action}`, { method: "POST" }));
    if (updated) { state.alerts.set(updated.id, updated); draw(); }
  }

  // The alert whose detail is open: alert.updated for it redraws its facts and reloads its history.
  let opened = null;

  async function detail(id) {
    const facts = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    const historyEl = h("div", { class: "history" }, h("p", { class: "muted" }, "Loading…"));
    const assignee = h("input", { id: "alert-assignee", name: "assignee", maxlength: 200, autocomplete: "off",
      placeholder: "nobody" });
    const assignForm = h("form", { class: "filters" },
      field("Assignee", assignee), h("button", { type: "submit" }, "Save assignee"));
    const snoozeFor = h("select", { name: "snooze_for" }, SNOOZES.map(([v, t]) => h("option", { value: v }, t)));
    const snoozeBtn = h("button", { type: "submit", class: "secondary" }, "Snooze");
    const snoozeForm = h("form", { class: "filters" }, field("Snooze for", snoozeFor), snoozeBtn);
    const text = h("textarea", { id: "alert-comment", name: "text", rows: 2, required: true, maxlength: 10000 });
    const commentForm = h("form", { class: "form" },
      h("label", { for: "alert-comment" }, "Comment"), text, h("button", { type: "submit" }, "Add comment"));
    const dataEl = h("pre", { class: "json" });
    const body = h("div", {}, facts, h("div", { class: "grid2 detail-actions" }, assignForm, snoozeForm), commentForm,
      h("h3", {}, "History"), historyEl, h("h3", {}, "Data"), dataEl);
    const d = dialog("Alert", body);
    let seq = 0;

    const show = (a) => {
      state.alerts.set(a.id, a);
      clear(facts).append(h("dl", { class: "kv" },
        Object.entries({ title: a.title, severity: a.severity, status: a.status, source: a.source, kind: a.kind,
          subject: a.subject, count: a.count, assignee: a.assignee ?? "—" })
          .flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k } }, String(v))]),
        h("dt", {}, "created"), h("dd", {}, when(a.created_at)),
        h("dt", {}, "last seen"), h("dd", {}, when(a.last_seen_at)),
        h("dt", {}, "acknowledged"), h("dd", {}, a.acknowledged_at ? [when(a.acknowledged_at), ` by ${a.acknowledged_by}`] : "—"),
        h("dt", {}, "resolved"), h("dd", {}, a.resolved_at ? [when(a.resolved_at), ` by ${a.resolved_by}`] : "—"),
        h("dt", {}, "snoozed until"), h("dd", {}, a.snoozed_until ? when(a.snoozed_until) : "—"),
        a.muted ? [h("dt", {}, "muted"), h("dd", {}, "yes (stored and counted, not notified)")] : null));
      dataEl.textContent = JSON.stringify(a.data, null, 2);
      snoozeBtn.disabled = a.status === "resolved";
      snoozeBtn.title = a.status === "resolved" ? "A resolved alert cannot be snoozed" : "";
    };
    const loadHistory = async () => {
      const mine = ++seq;
      try {
        const items = await api(`alerts/${id}/history`);
        if (mine === seq) clear(historyEl).append(historyList(items));
      } catch (err) { if (mine === seq) clear(historyEl).append(problem(err)); }
    };
    const refresh = (a) => { if (a) show(a); draw(); loadHistory(); };

    assignForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const value = assignee.value.trim();
      const a = await attempt(() => api(`alerts/${id}`, { method: "PATCH", body: { assignee: value || null } }),
        value ? `Assigned to ${value}` : "Unassigned");
      if (a) refresh(a);
    });
    snoozeForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const until = new Date(Date.now() + Number(snoozeFor.value) * 60_000).toISOString();
      const a = await attempt(() => api(`alerts/${id}/snooze`, { method: "POST", body: { until } }), "Snoozed");
      if (a) refresh(a);
    });
    commentForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const value = text.value.trim();
      if (!value) { text.focus(); return; }
      const c = await attempt(() => api(`alerts/${id}/comments`, { method: "POST", body: { text: value } }), "Comment added");
      if (c) { text.value = ""; loadHistory(); }
    });

    opened = { id, refresh };
    d.addEventListener("close", () => { if (opened?.refresh === refresh) opened = null; });
    try {
      const a = await api(`alerts/${id}`);
      assignee.value = a.assignee || "";
      show(a);
      loadHistory();
    } catch (err) { clear(body).append(problem(err)); }
  }

  async function load() {
    const f = state.filters;
    try {
      const page = await api("alerts", { params: { status: f.status, severity: f.severity, source: f.source,
        since: toIso(f.since), limit: 200 } });
      state.alerts = new Map(page.items.map((a) => [a.id, a]));
      state.total = page.total;
      draw();
    } catch (err) { clear(list).append(problem(err)); }
  }

  function alarm(a) {
    if (!notify.checked || a.severity !== "critical") return;
    try {
      if ("Notification" in window && Notification.permission === "granted") new Notification(a.title, { body: `${a.source} · ${a.kind}` });
      const ctx = new AudioContext(), o = ctx.createOscillator();
      o.connect(ctx.destination); o.frequency.value = 880; o.start(); o.stop(ctx.currentTime + 0.2);
    } catch (err) { console.warn("notification", err); }
  }

  await load();
  const ws = stream("/ws/alerts", {}, (msg) => {
    if (!msg.type?.startsWith("alert.")) return;
    const a = msg.data;
    const known = state.alerts.has(a.id);
    state.alerts.set(a.id, a);
    if (!known) state.total += 1;
    if (msg.type === "alert.created") alarm(a);
    draw();
    if (opened && opened.id === a.id) opened.refresh(a);
  }, (s) => setLive(s === "live" ? "● live" : s));
  return () => { ws.close(); setLive(""); };
}

const field = (label, input) => h("label", {}, h("span", {}, label), input);

// One line per history entry: when, what, who, and the detail in words.
function historyList(items) {
  if (!items.length) return h("p", { class: "muted" }, "No history yet.");
  return h("ol", { class: "history-list" }, items.map((e) => h("li", { dataset: { action: e.action } },
    when(e.at), " ", badge(e.action, `h-${e.action}`), " ", h("span", { class: "muted" }, "by "), e.by,
    describe(e) ? [" — ", h("span", { class: "history-detail" }, describe(e))] : null)));
}

function describe(e) {
  const d = e.detail || {};
  if (e.action === "commented") return d.text ?? "";
  if (e.action === "updated") {
    return Object.entries(d).map(([k, v]) => (v && typeof v === "object" && "to" in v
      ? `${k}: ${v.from ?? "—"} → ${v.to ?? "—"}` : `${k}: ${JSON.stringify(v)}`)).join("; ");
  }
  if (e.action === "snoozed" && d.until) return `until ${new Date(d.until).toLocaleString()}`;
  return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
}
const opts = (values) => values.map((v) => h("option", { value: v }, v || "any"));
