// Plates: events with crop thumbnails, frame with bbox, search (+max_distance when offered), live toggle,
// stats, watchlist CRUD, exporters (deliveries, test, enable/disable), cameras/models/sensors.
import { api, imageUrl, stream } from "../api.js";
import { attempt, badge, barChart, card, clear, dialog, form, h, problem, s, setLive, table, toIso, when } from "../ui.js";

const cameraNames = new Map();  // camera id -> name, so events show the camera's name

export async function render(main) {
  try {
    for (const cam of (await api("cameras", { params: { limit: 500 } })).items) cameraNames.set(cam.id, cam.name);
  } catch { /* a key without read sees the problem in each card below */ }
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const filters = h("form", { class: "filters", "aria-label": "Plate search" },
    lbl("Plate", h("input", { name: "plate", placeholder: "AB-123" })),
    lbl("Camera id", h("input", { name: "camera_id", value: params.get("camera_id") || "" })),
    lbl("Since", h("input", { name: "since", type: "datetime-local" })),
    lbl("Until", h("input", { name: "until", type: "datetime-local" })),
    lbl("Min confidence", h("input", { name: "min_confidence", type: "number", step: "0.05", min: 0, max: 1 })),
    lbl("Max distance", h("input", { name: "max_distance", type: "number", min: 0, max: 3, step: 1 })),
    h("button", { type: "submit" }, "Search"));
  const live = h("input", { type: "checkbox", id: "plates-live" });
  let ws = null, liveRows = [];

  const events = card("Plate events", async () => {
    const f = filters.elements;
    const q = { plate: f.plate.value, camera_id: f.camera_id.value, since: toIso(f.since.value), until: toIso(f.until.value),
      min_confidence: f.min_confidence.value, limit: 100 };
    if (f.max_distance.value) q.max_distance = f.max_distance.value;
    const page = await api("plates/events", { params: q });
    return [h("p", { class: "muted" }, `${page.total} events`), eventsTable(unique([...liveRows, ...page.items]))];
  });
  filters.addEventListener("submit", (e) => { e.preventDefault(); events.reload(); });
  live.addEventListener("change", () => {
    if (live.checked) {
      ws = stream("/ws/plates", {}, (m) => { if (m.type === "plate.event") { liveRows.unshift(m.data); liveRows = liveRows.slice(0, 50); events.reload(); } },
        (st) => setLive(st === "live" ? "● live plates" : st));
    } else { ws?.close(); ws = null; setLive(""); }
  });

  const stats = card("Statistics", async () => {
    const st = await api("plates/stats");
    return [h("p", {}, `${st.total} events · average confidence ${st.avg_confidence == null ? "—" : st.avg_confidence.toFixed(2)}`),
      h("div", { class: "grid2" },
        h("div", {}, h("h3", {}, "By hour"), barChart((st.by_hour || []).map((b) => ({ label: hourLabel(b), value: b.count })), { label: "Events by hour" })),
        h("div", {}, h("h3", {}, "By camera"), barChart((st.by_camera || []).map((b) => ({ label: b.camera_name || b.name || b.camera_id, value: b.count })), { label: "Events by camera" })),
        h("div", {}, h("h3", {}, "Top plates"), barChart((st.top_plates || []).map((b) => ({ label: b.plate, value: b.count })), { label: "Top plates" })))];
  });

  const watchlist = card("Watchlist", async () => {
    const page = await api("plates/watchlist", { params: { limit: 500 } });
    return table([{ label: "Plate", key: "plate" }, { label: "Label", key: "label" }, { label: "Severity", render: (w) => badge(w.severity) },
      { label: "", render: (w) => h("button", { type: "button", class: "danger", onclick: async () => {
        if (await attempt(() => api(`plates/watchlist/${w.id}`, { method: "DELETE" }).then(() => true), "Removed")) watchlist.reload();
      } }, "Remove") }], page.items, { empty: "No plates watched." });
  }, { actions: h("button", { type: "button", onclick: () => {
    const d = dialog("Watch a plate", form([{ name: "plate", label: "Plate", required: true }, { name: "label", label: "Label" },
      { name: "severity", label: "Severity", options: ["warning", "critical", "info"] }], async (v) => {
      if (await attempt(() => api("plates/watchlist", { method: "POST", body: v }), "Added")) { d.close(); watchlist.reload(); }
    }, { submit: "Add" }));
  } }, "Add plate") });

  const exporters = card("Exporters", async () => {
    const page = await api("exporters", { params: { limit: 200 } });
    return table([{ label: "Name", key: "name" }, { label: "Kind", key: "kind" }, { label: "Events", render: (x) => (x.event_types || []).join(", ") },
      { label: "Enabled", render: (x) => badge(x.enabled ? "enabled" : "disabled", String(x.enabled)) },
      { label: "", render: (x) => h("span", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: async () => {
          const r = await attempt(() => api(`exporters/${x.id}/test`, { method: "POST" }));
          if (r) dialog(`Test of ${x.name}`, h("p", {}, r.ok ? `OK in ${r.latency_ms?.toFixed(0)} ms` : `Failed: ${r.error}`));
        } }, "Test"),
        h("button", { type: "button", class: "secondary", onclick: async () => {
          if (await attempt(() => api(`exporters/${x.id}/${x.enabled ? "disable" : "enable"}`, { method: "POST" }))) exporters.reload();
        } }, x.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "secondary", onclick: () => deliveries(x) }, "Deliveries")) }],
    page.items, { empty: "No exporters." });
  });

  async function deliveries(x) {
    const body = h("div", {}, "Loading…");
    dialog(`Deliveries of ${x.name}`, body);
    try {
      const page = await api(`exporters/${x.id}/deliveries`, { params: { limit: 100 } });
      clear(body).append(table([{ label: "Event", render: (d) => d.event_type || d.type || "" }, { label: "Status", render: (d) => badge(d.status) },
        { label: "Attempts", render: (d) => String(d.attempts ?? d.attempt ?? "") }, { label: "Last error", render: (d) => d.last_error || "" },
        { label: "Updated", render: (d) => when(d.updated_at || d.created_at) }], page.items, { empty: "No deliveries yet." }));
    } catch (err) { clear(body).append(problem(err)); }
  }

  const config = ["cameras", "models", "sensors"].map((kind) => card(kind[0].toUpperCase() + kind.slice(1), async () => {
    const page = await api(kind, { params: { limit: 200 } });
    const cols = { cameras: [{ label: "Name", key: "name" }, { label: "RTSP", key: "rtsp_url" }, { label: "Enabled", key: "enabled" }],
      models: [{ label: "Name", key: "name" }, { label: "Kind", key: "kind" }, { label: "Version", key: "version" }],
      sensors: [{ label: "Name", key: "name" }, { label: "Camera", key: "camera_id" }, { label: "Zone", key: "zone_id" }] }[kind];
    return table(cols, page.items, { empty: `No ${kind}.` });
  }));

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Plates"), h("label", { class: "inline" }, live, " Live (/ws/plates)")),
    filters, events, stats, h("div", { class: "grid2" }, watchlist, exporters), h("div", { class: "grid2" }, ...config));
  return () => { ws?.close(); setLive(""); };
}

function eventsTable(items) {
  return table([
    { label: "Crop", render: (e) => (e.crop_url ? thumb(e) : "—") },
    { label: "Plate", render: (e) => h("button", { type: "button", class: "link plate", onclick: () => frame(e) }, e.plate) },
    { label: "Camera", render: (e) => cameraNames.get(e.camera_id) || e.camera_id },
    { label: "Confidence", render: (e) => (e.confidence ?? 0).toFixed(2) },
    { label: "Vehicle", render: (e) => (e.vehicle ? [e.vehicle.color, e.vehicle.make, e.vehicle.model, e.vehicle.type].filter(Boolean).join(" ") : "—") },
    { label: "Captured", render: (e) => when(e.captured_at) },
  ], items, { empty: "No plate events match." });
}

function thumb(e) {
  const img = h("img", { class: "thumb", alt: `crop of ${e.plate}` });
  imageUrl(`plates/events/${e.id}/crop`).then((u) => { img.src = u; }).catch(() => img.replaceWith("—"));
  return img;
}

async function frame(e) {
  const wrap = h("div", { class: "frame-wrap" });
  dialog(`${e.plate} · ${cameraNames.get(e.camera_id) || e.camera_id}`, wrap, h("pre", { class: "json" }, JSON.stringify(e, null, 2)));
  if (!e.frame_url) { wrap.append(h("p", { class: "muted" }, "No frame stored.")); return; }
  try {
    const img = h("img", { alt: `frame of ${e.plate}`, src: await imageUrl(`plates/events/${e.id}/frame`) });
    await img.decode();
    wrap.append(img);
    if (e.bbox) {
      const [x, y, w, hh] = e.bbox;
      wrap.append(s("svg", { viewBox: `0 0 ${img.naturalWidth} ${img.naturalHeight}`, preserveAspectRatio: "none" }, s("rect", { x, y, width: w, height: hh })));
    }
  } catch (err) { wrap.append(problem(err)); }
}

const hourLabel = (b) => (b.hour && String(b.hour).includes("T") ? new Date(b.hour).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit" }) : String(b.hour ?? b.label));
const unique = (rows) => [...new Map(rows.map((r) => [r.id, r])).values()];
const lbl = (t, input) => h("label", {}, h("span", {}, t), input);
