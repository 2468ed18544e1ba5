// Scenarios: list with state badge, only the server's allowed moves as buttons, run progress, predictions chart.
import { api, stream } from "../api.js";
import { attempt, badge, card, clear, dialog, form, h, lineChart, problem, setLive, table, when } from "../ui.js";

export async function render(main) {
  const list = card("Scenarios", async () => {
    const page = await api("scenarios", { params: { limit: 200 } });
    return table([
      { label: "Source", render: (x) => h("button", { type: "button", class: "link source", onclick: () => detail(x) }, x.source) },
      { label: "State", render: (x) => badge(x.status) },
      { label: "Run", render: (x) => progress(x.latest_run) },
      { label: "Updated", render: (x) => when(x.updated_at) },
      { label: "Moves", render: (x) => h("span", { class: "actions" }, (x.allowed_transitions || []).map((to) =>
        h("button", { type: "button", class: "secondary", onclick: () => move(x, to) }, to))) },
    ], page.items, { empty: "No scenarios." });
  }, { actions: h("button", { type: "button", onclick: () => create() }, "New scenario") });

  async function move(x, to) {
    if (await attempt(() => api(`scenarios/${x.id}/status`, { method: "POST", body: { status: to, version: x.version } }), `Moved to ${to}`)) list.reload();
    else list.reload();
  }

  function create() {
    const d = dialog("New scenario", form([{ name: "source", label: "Source (file path or rtsp/http URL)", required: true }], async (v) => {
      if (await attempt(() => api("scenarios", { method: "POST", body: v }), "Created")) { d.close(); list.reload(); }
    }, { submit: "Create" }));
  }

  async function detail(x) {
    const body = h("div", {}, "Loading…");
    dialog(x.source, body);
    try {
      const [runs, preds] = await Promise.all([api(`scenarios/${x.id}/runs`, { params: { limit: 20 } }), api(`scenarios/${x.id}/predictions`, { params: { limit: 500 } })]);
      const perFrame = new Map();
      for (const p of preds.predictions) perFrame.set(p.ts, (perFrame.get(p.ts) || 0) + 1);
      clear(body).append(h("p", {}, "State ", badge(x.status), x.last_error ? ` · last error: ${x.last_error}` : ""),
        h("h3", {}, "Runs"), table([{ label: "Attempt", key: "attempt" }, { label: "Status", render: (r) => badge(r.status) }, { label: "Progress", render: progress },
          { label: "Runner", key: "runner" }, { label: "Error", key: "error" }], runs.items, { empty: "No runs yet." }),
        h("h3", {}, `Predictions (${preds.total})`),
        table([{ label: "Class", key: "class" }, { label: "Count", key: "count" }, { label: "Avg confidence", key: "avg_confidence" }], preds.summary || []),
        lineChart([...perFrame.entries()].sort((a, b) => a[0] - b[0]).map(([ts, n]) => ({ x: ts, y: n })), { label: "Detections over time", xfmt: (t) => `${Number(t).toFixed(1)} s` }));
    } catch (err) { clear(body).append(problem(err)); }
  }

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Scenarios")), list);
  let ws = null;
  try {
    let pending = null;  // progress messages come often: reload at most once a second
    ws = stream("/ws/scenarios", {}, () => { pending ??= setTimeout(() => { pending = null; list.reload(); }, 1000); }, (st) => setLive(st === "live" ? "● live" : st));
  } catch { ws = null; }
  return () => { ws?.close(); setLive(""); };
}

function progress(run) {
  if (!run) return "—";
  return h("span", {}, `${run.status} · ${run.frames_processed}/${run.frames_read} frames · ${run.predictions} predictions`);
}
