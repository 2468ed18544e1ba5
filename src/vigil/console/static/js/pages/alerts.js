// Alerts: live list from /ws/alerts, filters, acknowledge/resolve, detail, optional critical notification.
import { api, stream } from "../api.js";
import { attempt, badge, clear, dialog, h, problem, setLive, toIso, when } from "../ui.js";

const SEVERITIES = ["critical", "warning", "info"];

export async function render(main) {
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
    h("label", { class: "inline" }, notify, " Notify me of critical alerts")), filters, list);

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
        a.status === "open" ? h("button", { type: "button", onclick: () => act(a, "acknowledge") }, "Acknowledge") : null,
        a.status !== "resolved" ? h("button", { type: "button", class: "secondary", onclick: () => act(a, "resolve") }, "Resolve") : null));
  }

  async function act(a, action) {
    const updated = await attempt(() => api(`alerts/${a.id}/${action}`, { method: "POST" }));
    if (updated) { state.alerts.set(updated.id, updated); draw(); }
  }

  async function detail(id) {
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    dialog("Alert", body);
    try {
      const a = await api(`alerts/${id}`);
      clear(body).append(h("dl", { class: "kv" },
        Object.entries({ title: a.title, severity: a.severity, status: a.status, source: a.source, kind: a.kind,
          subject: a.subject, count: a.count }).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
        h("dt", {}, "created"), h("dd", {}, when(a.created_at)),
        h("dt", {}, "last seen"), h("dd", {}, when(a.last_seen_at)),
        h("dt", {}, "acknowledged"), h("dd", {}, a.acknowledged_at ? [when(a.acknowledged_at), ` by ${a.acknowledged_by}`] : "—"),
        h("dt", {}, "resolved"), h("dd", {}, a.resolved_at ? [when(a.resolved_at), ` by ${a.resolved_by}`] : "—")),
        h("h3", {}, "Data"), h("pre", { class: "json" }, JSON.stringify(a.data, null, 2)));
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
  }, (s) => setLive(s === "live" ? "● live" : s));
  return () => { ws.close(); setLive(""); };
}

const field = (label, input) => h("label", {}, h("span", {}, label), input);
const opts = (values) => values.map((v) => h("option", { value: v }, v || "any"));
