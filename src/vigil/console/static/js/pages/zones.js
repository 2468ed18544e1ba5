// Zones: polygons on an SVG plane (draw, drag, close), edit, 422 reasons at the shape, contains, camera link.
import { api, ApiError } from "../api.js";
import { attempt, badge, card, clear, form, h, problem, problemText, table, toast } from "../ui.js";
import { centroid, extent, plane } from "../plane.js";

const KINDS = ["working", "detection", "exclusion", "parking"];

export async function render(main) {
  let zones = [], cameras = [], selected = null;
  const status = h("p", { class: "muted", id: "plane-status", "aria-live": "polite" }, "");
  const errorBox = h("div", { id: "zone-error" });
  const formBox = h("div", {});
  const listBox = h("div", {});
  const planeBox = h("div", { class: "plane-box" });
  let p = null;

  const toolbar = h("div", { class: "toolbar" },
    h("button", { type: "button", id: "draw-zone", onclick: () => startDraw() }, "Draw new zone"),
    h("button", { type: "button", class: "secondary", onclick: () => p?.finish() }, "Close shape"),
    h("button", { type: "button", class: "secondary", id: "ask-contains", onclick: () => askMode() }, "Ask contains"),
    h("button", { type: "button", class: "secondary", onclick: () => { p?.stop(); p?.clearOverlay(); showForm(null); status.textContent = ""; } }, "Cancel"));

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Zones")),
    h("div", { class: "split" }, h("div", {}, toolbar, planeBox, status, errorBox), h("div", {}, formBox)),
    card("All zones", async () => listBox));

  async function load() {
    try {
      [zones, cameras] = await Promise.all([
        api("zones", { params: { limit: 500 } }).then((r) => r.items),
        api("cameras", { params: { limit: 500 } }).then((r) => r.items).catch(() => []),
      ]);
    } catch (err) { clear(listBox).append(problem(err)); zones = zones || []; }
    const rings = zones.map((z) => z.geometry.coordinates[0]);
    const [w, hh] = extent(rings.flat(), 100);
    if (!p || ((p.width !== w || p.height !== hh) && !p.draft)) {
      p = plane({ width: w, height: hh, label: "Zone plane" });
      clear(planeBox).append(p.svg);
    }
    p.onClose = (pts) => { status.textContent = `Shape closed with ${pts.length} vertices: fill in the form and save.`; showForm(selected, pts); };
    p.onChange = (pts) => { status.textContent = pts ? `${pts.length} vertices${p.closed ? " (closed)" : ""}` : ""; if (p.closed) showForm(selected, pts); };
    drawShapes();
    clear(listBox).append(table([
      { label: "Name", render: (z) => h("button", { type: "button", class: "link", onclick: () => select(z) }, z.name) },
      { label: "Zone id", key: "zone_id" },
      { label: "Kind", render: (z) => badge(z.kind) },
      { label: "Camera", render: (z) => cameraLink(z.camera_id) },
      { label: "Vertices", render: (z) => String(z.geometry.coordinates[0].length - 1) },
      { label: "Actions", render: (z) => h("button", { type: "button", class: "danger", onclick: () => remove(z) }, "Delete") },
    ], zones, { empty: "No zones yet: draw one on the plane." }));
  }

  function cameraLink(id) {
    if (!id) return "—";
    const cam = cameras.find((c) => c.id === id);
    return h("a", { href: `#/plates?camera_id=${id}` }, cam ? cam.name : id.slice(0, 8));
  }

  function drawShapes() {
    p.setShapes(zones.map((z) => ({ id: z.zone_id, polygon: z.geometry.coordinates[0], label: z.name, cls: `k-${z.kind}${selected?.zone_id === z.zone_id ? " selected" : ""}`,
      title: `${z.name} (${z.zone_id})`, onclick: () => select(z) })));
  }

  function startDraw() {
    selected = null;
    p.clearOverlay(); clear(errorBox);
    p.start([], "draw");
    drawShapes();
    status.textContent = "Click on the plane to add vertices; click the first vertex (or press Enter) to close.";
    showForm(null);
  }

  function select(z) {
    selected = z;
    p.clearOverlay(); clear(errorBox);
    p.start(z.geometry.coordinates[0].slice(0, -1), "edit");
    drawShapes();
    status.textContent = `Editing ${z.name}: drag vertices, then save.`;
    showForm(z, p.draft);
  }

  function askMode() {
    if (!selected) { toast("Select a zone first (click it in the list or on the plane).", "error"); return; }
    p.mode = "point";
    status.textContent = `Click a point to ask whether ${selected.name} contains it.`;
    p.onPoint = async ([x, y]) => {
      const r = await attempt(() => api(`zones/${selected.zone_id}/contains`, { method: "POST", body: { points: [[x, y]] } }));
      if (!r) return;
      const inside = r.inside[0];
      p.mark(x, y, inside ? "inside" : "outside", inside ? "inside" : "outside");
      status.textContent = `(${x}, ${y}) is ${inside ? "inside" : "outside"} ${selected.name}`;
    };
  }

  function showForm(z, pts) {
    const fields = [
      ...(z ? [] : [{ name: "zone_id", label: "Zone id", placeholder: "ZONE_001", required: true }]),
      { name: "name", label: "Name", value: z?.name, required: true },
      { name: "kind", label: "Kind", options: KINDS, value: z?.kind || "working" },
      { name: "camera_id", label: "Camera", options: [["", "none"], ...cameras.map((c) => [c.id, c.name])], value: z?.camera_id || "" },
    ];
    clear(formBox).append(h("h2", {}, z ? `Edit ${z.name}` : "New zone"), form(fields, async (v) => {
      const shape = p.draft && p.draft.length ? p.draft : null;
      if (!z && (!shape || !p.closed)) { toast("Draw and close a shape first.", "error"); return; }
      const ring = shape ? [...shape, shape[0]] : null;
      const body = { ...v, ...(ring ? { geometry: { type: "Polygon", coordinates: [ring] } } : {}) };
      clear(errorBox); p.clearOverlay();
      try {
        const saved = z ? await api(`zones/${z.zone_id}`, { method: "PATCH", body })
          : await api("zones", { method: "POST", body });
        toast(`Saved ${saved.name}`, "ok");
        p.stop(); selected = null; showForm(null); status.textContent = "";
        await load();
      } catch (err) {
        // Validation reasons (self_intersecting, ...) are shown at the shape and beside it.
        errorBox.append(problem(err));
        if (shape) { const [cx, cy] = centroid(shape); p.note(cx, cy, reasons(err)); }
      }
    }, { submit: z ? "Save zone" : "Create zone" }), pts ? h("p", { class: "muted" }, `${pts.length} vertices`) : null);
  }

  async function remove(z) {
    if (!confirm(`Delete zone ${z.name}?`)) return;
    if (await attempt(() => api(`zones/${z.zone_id}`, { method: "DELETE" }).then(() => true), "Deleted")) load();
  }

  // The plane exists before the first answer, so the toolbar works at once; load() resizes it to the zones.
  p = plane({ width: 120, height: 120, label: "Zone plane" });
  planeBox.append(p.svg);
  showForm(null);
  await load();
}

function reasons(err) {
  if (err instanceof ApiError && err.errors.length) return err.errors.map((e) => e.type).join(", ");
  return problemText(err);
}
