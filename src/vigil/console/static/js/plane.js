// An SVG plane for polygons: click to add vertices, drag them, close on the first vertex (or Enter).
// Used for zones (image pixels) and for site plans (metres). y grows downwards, like an image.
import { h, s } from "./ui.js";

export function plane({ width = 100, height = 100, label = "plane", margin = 0 } = {}) {
  const m = margin;
  const svg = s("svg", { viewBox: `${-m} ${-m} ${width + 2 * m} ${height + 2 * m}`, class: "plane", role: "application", tabindex: "0",
    "aria-label": `${label}: click to add a vertex, drag to move it, click the first vertex or press Enter to close, Escape to cancel` });
  const grid = s("g", { class: "grid" });
  const step = niceStep(Math.max(width, height) / 10);
  for (let x = 0; x <= width; x += step) grid.append(s("line", { x1: x, y1: 0, x2: x, y2: height }));
  for (let y = 0; y <= height; y += step) grid.append(s("line", { x1: 0, y1: y, x2: width, y2: y }));
  const shapes = s("g", { class: "shapes" }), overlay = s("g", { class: "overlay" }), draftG = s("g", { class: "draft" });
  svg.append(s("rect", { x: -m, y: -m, width: width + 2 * m, height: height + 2 * m, class: "plane-bg" }), grid, shapes, overlay, draftG);
  const unit = Math.max(width, height) / 100;  // sizes of handles and labels scale with the plane

  const api = {
    svg, unit, width, height,
    draft: null,          // [[x, y], ...] being drawn or edited
    closed: false,
    mode: "idle",         // idle | draw | edit | point
    onClose: null, onPoint: null, onChange: null, onCircle: null,
    circle: null,         // [cx, cy] of a circle being drawn (mode "circle")
    toPlane(evt) {
      const pt = svg.createSVGPoint();
      pt.x = evt.clientX; pt.y = evt.clientY;
      const p = pt.matrixTransform(svg.getScreenCTM().inverse());
      return [round(p.x), round(p.y)];
    },
    setShapes(list) {
      shapes.replaceChildren(...list.map((sh) => {
        const g = s("g", { class: `shape ${sh.cls || ""}`, "data-id": sh.id });
        if (sh.polyline) g.append(s("polyline", { points: sh.polyline.map((p) => p.join(",")).join(" ") }));
        if (sh.polygon) g.append(s("polygon", { points: sh.polygon.map((p) => p.join(",")).join(" ") }));
        if (sh.circle) g.append(s("circle", { cx: sh.circle[0], cy: sh.circle[1], r: sh.circle[2] }));
        if (sh.marker) g.append(s("circle", { cx: sh.marker[0], cy: sh.marker[1], r: unit * 1.2, class: "marker" }));
        if (sh.label) {
          const [cx, cy] = sh.at || centroid(sh.polygon || [sh.circle || sh.marker]);
          g.append(s("text", { x: cx, y: cy, "font-size": unit * 3, "text-anchor": "middle", class: "shape-label" }, sh.label));
        }
        if (sh.title) g.append(s("title", {}, sh.title));
        if (sh.onclick) { g.classList.add("clickable"); g.addEventListener("click", (e) => { if (api.mode === "idle") { e.stopPropagation(); sh.onclick(); } }); }
        return g;
      }));
    },
    mark(x, y, cls, text) {
      overlay.append(s("circle", { cx: x, cy: y, r: unit * 1.3, class: `probe ${cls}` }),
        s("text", { x: x + unit * 2, y: y - unit, "font-size": unit * 3, class: `probe-label ${cls}` }, text));
    },
    note(x, y, text) {
      overlay.append(s("text", { x, y, "font-size": unit * 3, class: "shape-error", "text-anchor": "middle" }, text));
    },
    clearOverlay() { overlay.replaceChildren(); },
    start(points = [], mode = "draw") {
      api.draft = points.map((p) => [...p]);
      api.closed = mode === "edit";
      api.mode = mode;
      drawDraft();
      svg.focus();
    },
    stop() { api.draft = null; api.closed = false; api.mode = "idle"; api.circle = null; drawDraft(); },
    startCircle() { api.stop(); api.mode = "circle"; svg.focus(); },
    finish() {
      if (!api.draft || api.draft.length < 3) return false;
      api.closed = true;
      drawDraft();
      api.onClose?.(api.draft.map((p) => [...p]));
      return true;
    },
  };

  let dragging = -1, moved = false, suppressClick = false;
  function drawDraft() {
    draftG.replaceChildren();
    const pts = api.draft;
    if (!pts) return;
    if (pts.length) {
      draftG.append(s(api.closed ? "polygon" : "polyline", { points: pts.map((p) => p.join(",")).join(" "), class: "draft-line" }));
    }
    pts.forEach((p, i) => {
      const handle = s("circle", { cx: p[0], cy: p[1], r: unit * 1.4, class: `vertex${i === 0 ? " first" : ""}`, "data-i": String(i) });
      handle.addEventListener("pointerdown", (e) => {
        e.stopPropagation();
        dragging = i; moved = false;
        svg.setPointerCapture(e.pointerId);
      });
      draftG.append(handle);
    });
  }

  svg.addEventListener("pointerdown", () => { if (dragging < 0) suppressClick = false; });
  svg.addEventListener("pointermove", (e) => {
    if (api.mode === "circle" && api.circle) {
      const [x, y] = api.toPlane(e), [cx, cy] = api.circle;
      draftG.replaceChildren(s("circle", { cx, cy, r: Math.hypot(x - cx, y - cy), class: "draft-line" }),
        s("circle", { cx, cy, r: unit * 1.4, class: "vertex first" }));
      return;
    }
    if (dragging < 0 || !api.draft) return;
    api.draft[dragging] = clamp(api.toPlane(e));
    moved = true;
    drawDraft();
  });
  svg.addEventListener("pointerup", (e) => {
    if (dragging < 0) return;
    const i = dragging;
    dragging = -1;
    suppressClick = true;  // the click that follows a vertex press is not a new vertex
    if (moved) { api.onChange?.(api.draft); return; }
    if (i === 0 && !api.closed && api.draft.length >= 3) api.finish();
    e.stopPropagation();
  });
  svg.addEventListener("click", (e) => {
    if (suppressClick || e.target.classList?.contains("vertex")) { suppressClick = false; return; }
    const p = clamp(api.toPlane(e));
    if (api.mode === "draw" && !api.closed) { api.draft.push(p); drawDraft(); api.onChange?.(api.draft); }
    else if (api.mode === "point") api.onPoint?.(p);
    else if (api.mode === "circle" && !api.circle) { api.circle = p; }
    else if (api.mode === "circle") {
      const c = api.circle, r = round(Math.hypot(p[0] - c[0], p[1] - c[1]));
      api.mode = "idle"; api.circle = null;
      if (r > 0) api.onCircle?.(c, r); else drawDraft();
    }
  });
  svg.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && api.mode === "circle") { api.stop(); return; }
    if (!api.draft) return;
    if (e.key === "Enter") { e.preventDefault(); api.finish(); }
    else if (e.key === "Escape") { api.stop(); api.onChange?.(null); }
    else if (e.key === "Backspace" && !api.closed) { api.draft.pop(); drawDraft(); }
  });
  const clamp = ([x, y]) => [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
  return api;
}

export function centroid(points) {
  const n = points.length || 1;
  return [points.reduce((a, p) => a + p[0], 0) / n, points.reduce((a, p) => a + p[1], 0) / n];
}

export function extent(pointsList, min = 100) {
  let w = min, h2 = min;
  for (const p of pointsList) { w = Math.max(w, p[0]); h2 = Math.max(h2, p[1]); }
  const up = (v) => { const st = niceStep(v / 5); return Math.ceil((v * 1.05) / st) * st; };
  return [up(w), up(h2)];
}

function niceStep(v) {
  const p = 10 ** Math.floor(Math.log10(v || 1));
  const m = v / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}
const round = (v) => Math.round(v * 10) / 10;
export const legend = (...items) => h("p", { class: "legend muted" }, items.join(" · "));
