// Small DOM helpers: no framework, no build step.
import { ApiError } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVGNS = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

export const clear = (el) => { el.replaceChildren(); return el; };

// The text of a problem (403 detail, 422 reasons) as a visible message instead of a broken page.
export function problemText(err) {
  if (err instanceof ApiError) {
    const reasons = err.errors.map((e) => [e.type, e.msg || e.message].filter(Boolean).join(": ")).filter(Boolean);
    return [err.message, ...reasons].join(" — ");
  }
  return String(err?.message || err);
}
export const problem = (err) => h("p", { class: "problem", role: "alert" }, problemText(err));

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  box.append(t);
  setTimeout(() => t.remove(), 5000);
}

// Run an action from a button: show its problem as a toast, never throw into the page.
export async function attempt(fn, ok) {
  try {
    const r = await fn();
    if (ok) toast(ok, "ok");
    return r;
  } catch (err) {
    toast(problemText(err), "error");
    return undefined;
  }
}

// A titled card whose body is filled by `load(body)`; its error stays inside it.
export function card(title, load, { actions } = {}) {
  const body = h("div", { class: "card-body" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("section", { class: "card", "aria-label": title }, h("header", {}, h("h2", {}, title), actions), body);
  const reload = async () => {
    try {
      const content = await load(body);
      if (content !== undefined) clear(body).append(...[content].flat().filter(Boolean));
    } catch (err) {
      clear(body).append(problem(err));
    }
  };
  el.reload = reload;
  reload();
  return el;
}

export function table(columns, rows, { empty = "Nothing yet.", rowAttrs } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
      columns.map((c) => h("td", { "data-label": c.label }, c.render ? c.render(r) : fmt(r[c.key]))))))));
}

export function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return h("time", { datetime: iso, title: iso }, d.toLocaleString());
}

export const badge = (text, kind = text) => h("span", { class: `badge b-${kind}` }, text);

// A horizontal bar chart in plain SVG: [{label, value}].
export function barChart(items, { unit = "", label = "chart" } = {}) {
  if (!items.length) return h("p", { class: "muted" }, "No data.");
  const max = Math.max(...items.map((i) => i.value), 1);
  const rowH = 24, labelW = 140, w = 520;
  const svg = s("svg", { viewBox: `0 0 ${w} ${items.length * rowH + 4}`, class: "chart", role: "img", "aria-label": label });
  items.forEach((it, i) => {
    const bw = Math.max(1, ((w - labelW - 60) * it.value) / max);
    const y = i * rowH + 2;
    svg.append(
      s("text", { x: labelW - 6, y: y + 16, "text-anchor": "end", class: "chart-label" }, String(it.label).slice(0, 20)),
      s("rect", { x: labelW, y: y + 3, width: bw, height: rowH - 8, rx: 3, class: "bar" }, s("title", {}, `${it.label}: ${it.value}${unit}`)),
      s("text", { x: labelW + bw + 6, y: y + 16, class: "chart-value" }, `${fmt(it.value)}${unit}`),
    );
  });
  return svg;
}

// A line/area chart in plain SVG: points [{x: number, y: number}], x as epoch ms or index.
export function lineChart(points, { label = "chart", xfmt = (x) => String(x) } = {}) {
  if (!points.length) return h("p", { class: "muted" }, "No data.");
  const w = 520, hgt = 160, pad = 28;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1);
  const X = (x) => pad + ((x - x0) / (x1 - x0)) * (w - 2 * pad);
  const Y = (y) => hgt - pad - (y / y1) * (hgt - 2 * pad);
  const d = points.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
  return s("svg", { viewBox: `0 0 ${w} ${hgt}`, class: "chart", role: "img", "aria-label": label },
    s("line", { x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, class: "axis" }),
    s("path", { d, class: "line" }),
    points.map((p) => s("circle", { cx: X(p.x), cy: Y(p.y), r: 2.5, class: "dot" }, s("title", {}, `${xfmt(p.x)}: ${p.y}`))),
    s("text", { x: pad, y: hgt - 8, class: "chart-label" }, xfmt(x0)),
    s("text", { x: w - pad, y: hgt - 8, "text-anchor": "end", class: "chart-label" }, xfmt(x1)),
    s("text", { x: 2, y: pad, class: "chart-label" }, fmt(y1)));
}

// A small labelled form; fields: [{name, label, type, options, value, required}]. onSubmit(values, form).
export function form(fields, onSubmit, { submit = "Save", cls = "" } = {}) {
  const f = h("form", { class: `form ${cls}` });
  for (const fd of fields) {
    const id = `f-${fd.name}-${Math.random().toString(36).slice(2, 7)}`;
    let input;
    if (fd.options) {
      input = h("select", { id, name: fd.name, required: fd.required },
        fd.options.map((o) => {
          const [v, t] = Array.isArray(o) ? o : [o, o];
          return h("option", { value: v, selected: String(fd.value ?? "") === String(v) }, t);
        }));
    } else if (fd.type === "textarea") {
      input = h("textarea", { id, name: fd.name, rows: 3, required: fd.required }, fd.value ?? "");
    } else {
      input = h("input", { id, name: fd.name, type: fd.type || "text", required: fd.required, step: fd.step,
        value: fd.value ?? "", placeholder: fd.placeholder, multiple: fd.multiple, accept: fd.accept });
      if (fd.type === "checkbox") input.checked = !!fd.value;
    }
    f.append(h("label", { for: id }, fd.label), input);
  }
  f.append(h("button", { type: "submit" }, submit));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {};
    for (const fd of fields) {
      const el = f.elements[fd.name];
      if (fd.type === "checkbox") values[fd.name] = el.checked;
      else if (fd.type === "number") values[fd.name] = el.value === "" ? null : Number(el.value);
      else if (fd.type === "file") values[fd.name] = el.files;
      else values[fd.name] = el.value === "" ? null : el.value;
    }
    await onSubmit(values, f);
  });
  return f;
}

// A modal dialog (native <dialog>: focus trap and Escape for free).
export function dialog(title, ...content) {
  const d = h("dialog", { "aria-label": title },
    h("header", {}, h("h2", {}, title), h("button", { type: "button", class: "secondary", "aria-label": "Close",
      onclick: () => d.close() }, "×")),
    ...content);
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

export const toIso = (local) => (local ? new Date(local).toISOString() : null);

export function setLive(text) { const el = document.getElementById("live"); if (el) el.textContent = text; }
