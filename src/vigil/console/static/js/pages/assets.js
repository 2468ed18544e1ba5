// Assets: site plan with gateways, geofences and live positions (accuracy circles), track, dwell, jobs, maintenance.
import { api, stream } from "../api.js";
import { attempt, card, clear, dialog, form, h, problem, setLive, table, toIso, when } from "../ui.js";
import { extent, plane } from "../plane.js";

export async function render(main) {
  let sites = [], gateways = [], geofences = [], assets = [];
  const positions = new Map();  // asset_id -> location
  let track = null;
  const siteSel = h("select", { "aria-label": "Site" });
  const planeBox = h("div", { class: "plane-box" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  let p = null, flip = (pt) => pt;

  const assetList = card("Assets", async () => table([
    { label: "Name", key: "name" }, { label: "Tag", key: "tag_id" }, { label: "Kind", key: "kind" },
    { label: "Position", render: (a) => { const l = positions.get(a.id); return l ? `(${l.x.toFixed(1)}, ${l.y.toFixed(1)}) ±${l.accuracy_m?.toFixed(1)} m` : "—"; } },
    { label: "Battery", key: "battery" }, { label: "Last seen", render: (a) => when(a.last_seen_at) },
  ], assets.filter((a) => !siteSel.value || a.site_id === siteSel.value), { empty: "No assets." }));

  const trackForm = h("form", { class: "filters", "aria-label": "Track" },
    lbl("Asset", h("select", { name: "asset" })), lbl("Since", h("input", { name: "since", type: "datetime-local" })),
    lbl("Until", h("input", { name: "until", type: "datetime-local" })), h("button", { type: "submit" }, "Show track and dwell"));
  const trackOut = h("div", {});
  trackForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = trackForm.elements, id = f.asset.value;
    if (!id) return;
    const q = { since: toIso(f.since.value), until: toIso(f.until.value) };
    clear(trackOut);
    try {
      const [hist, dwell] = await Promise.all([api(`assets/${id}/locations`, { params: { ...q, limit: 500 } }),
        api(`analytics/assets/${id}/dwell`, { params: q })]);
      track = hist.items.map((l) => [l.x, l.y]);
      drawPlan();
      trackOut.append(h("p", {}, `${hist.total} positions in range`), table([{ label: "Geofence", render: (g) => g.name || g.geofence_id },
        { label: "Seconds", render: (g) => String(Math.round(g.seconds ?? g.dwell_s ?? 0)) }], dwell.geofences || [], { empty: "No dwell in range." }));
    } catch (err) { trackOut.append(problem(err)); }
  });

  const lists = ["jobs", "maintenance"].map((kind) => card(kind === "jobs" ? "Jobs" : "Maintenance", async () => {
    const page = await api(kind, { params: { limit: 200 } });
    const name = (id) => assets.find((a) => a.id === id)?.name || id;
    return table(kind === "jobs"
      ? [{ label: "Title", key: "title" }, { label: "Status", key: "status" }, { label: "Assets", render: (j) => (j.asset_ids || []).map(name).join(", ") }, { label: "Due", render: (j) => when(j.due_at) }]
      : [{ label: "Asset", render: (m) => name(m.asset_id) }, { label: "Kind", key: "kind" }, { label: "Due", render: (m) => when(m.due_at) }, { label: "Done", render: (m) => when(m.done_at) }],
    page.items, { empty: `No ${kind}.` });
  }));

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Assets"), siteSel,
    h("button", { type: "button", class: "secondary", onclick: () => drawGeofence() }, "Draw polygon geofence"),
    h("button", { type: "button", class: "secondary", onclick: () => drawCircle() }, "Draw circle geofence")),
  h("div", { class: "split" }, h("div", {}, planeBox, status), h("div", {}, h("h2", {}, "Track and dwell"), trackForm, trackOut)),
  assetList, h("div", { class: "grid2" }, ...lists));

  function drawPlan() {
    const site = siteSel.value;
    const gws = gateways.filter((g) => g.site_id === site), gfs = geofences.filter((g) => g.site_id === site);
    const pts = [...gws.map((g) => [g.x, g.y]), ...gfs.flatMap((g) => (g.polygon || (g.center ? [[g.center[0] + g.radius_m, g.center[1] + g.radius_m]] : []))),
      ...[...positions.values()].filter((l) => l.site_id === site).map((l) => [l.x, l.y])];
    const [w, hh] = extent(pts, 20);
    if (!p || ((p.width !== w || p.height !== hh) && !p.draft && p.mode === "idle")) { p = plane({ width: w, height: hh, label: "Site plan (metres)", margin: Math.max(w, hh) / 12 }); clear(planeBox).append(p.svg); }
    // The site frame has y pointing north; the screen's points down: flip for display (and back for input).
    const F = ([x, y]) => [x, hh - y];
    const placed = [...positions.values()].filter((l) => l.site_id === site);
    const shapes = [
      ...gfs.map((g) => ({ id: g.id, cls: "geofence", label: g.name, polygon: g.kind === "polygon" ? g.polygon.map(F) : null,
        circle: g.kind === "circle" ? [...F(g.center), g.radius_m] : null, at: g.kind === "circle" ? F(g.center) : undefined, title: `geofence ${g.name}`, onclick: () => editGeofence(g) })),
      ...gws.map((g) => { const [x, y] = F([g.x, g.y]); return { id: g.id, cls: "gateway", marker: [x, y], label: g.name, at: [x, y - p.unit * 2.5], title: `gateway ${g.name}` }; }),
      ...placed.flatMap((l) => {
        const a = assets.find((x) => x.id === l.asset_id);
        const [x, y] = F([l.x, l.y]);
        return [{ id: `acc-${l.asset_id}`, cls: "accuracy", circle: [x, y, Math.max(l.accuracy_m || 0, p.unit * 0.5)], title: `accuracy ±${l.accuracy_m} m` },
          { id: l.asset_id, cls: "asset", marker: [x, y], label: a?.name || "asset", at: [x, y + p.unit * 4], title: `${a?.name} ±${l.accuracy_m} m (${l.method})` }];
      }),
      ...(track && track.length > 1 ? [{ id: "track", cls: "track", polyline: track.map(F) }] : []),
    ];
    flip = F;
    p.setShapes(shapes);
    status.textContent = `${gws.length} gateways · ${gfs.length} geofences · ${placed.length} assets placed`;
  }

  function saveGeofence(body) {
    const d = dialog("New geofence", form([{ name: "name", label: "Name", required: true },
      { name: "severity", label: "Severity", options: ["warning", "critical", "info"] }], async (v) => {
      const ok = await attempt(() => api("geofences", { method: "POST", body: { ...v, site_id: siteSel.value, alert_on: ["enter", "exit"], ...body } }), "Geofence created");
      if (ok) { d.close(); geofences.push(ok); drawPlan(); }
    }, { submit: "Create" }));
    d.addEventListener("close", () => { p.stop(); drawPlan(); });
  }

  function drawCircle() {
    if (!p) return;
    p.startCircle();
    status.textContent = "Click the centre, then a point on the edge.";
    p.onCircle = (c, r) => saveGeofence({ kind: "circle", center: flip(c), radius_m: r });
  }

  // Edit a polygon geofence like a zone: its vertices become handles; Enter or "Save shape" stores it.
  function editGeofence(g) {
    if (g.kind !== "polygon") { status.textContent = `${g.name} is a circle: delete and draw it again to change it.`; return; }
    p.start(g.polygon.map(flip), "edit");
    status.textContent = `Editing ${g.name}: drag vertices, then press Enter.`;
    p.onClose = async (pts) => {
      const ok = await attempt(() => api(`geofences/${g.id}`, { method: "PATCH", body: { polygon: pts.map(flip) } }), `Saved ${g.name}`);
      if (ok) { Object.assign(g, ok); p.stop(); drawPlan(); }
    };
  }

  function drawGeofence() {
    if (!p) return;
    p.start([], "draw");
    status.textContent = "Click to add vertices; click the first one (or Enter) to close.";
    p.onClose = (pts) => saveGeofence({ kind: "polygon", polygon: pts.map(flip) });
  }

  try {
    [sites, gateways, geofences, assets] = await Promise.all(["sites", "gateways", "geofences", "assets"].map((k) => api(k, { params: { limit: 500 } }).then((r) => r.items)));
  } catch (err) { planeBox.append(problem(err)); return undefined; }
  siteSel.append(...sites.map((x) => h("option", { value: x.id }, x.name)));
  trackForm.elements.asset.append(...assets.map((a) => h("option", { value: a.id }, a.name)));
  await Promise.all(assets.map((a) => api(`assets/${a.id}/location`).then((l) => positions.set(a.id, { ...l, asset_id: a.id })).catch(() => null)));
  siteSel.addEventListener("change", () => { track = null; drawPlan(); assetList.reload(); });
  drawPlan(); assetList.reload(); lists.forEach((c) => c.reload());
  const ws = stream("/ws/locations", {}, (m) => {
    if (m.type !== "location.updated") return;
    positions.set(m.data.asset_id, m.data);
    drawPlan();
    assetList.reload();
  }, (st) => setLive(st === "live" ? "● live positions" : st));
  return () => { ws.close(); setLive(""); };
}

const lbl = (t, input) => h("label", {}, h("span", {}, t), input);
