// People: searchable table, create/edit/delete with the zone from a list, stats by zone, directory cache.
import { api } from "../api.js";
import { attempt, barChart, card, clear, dialog, form, h, table, when } from "../ui.js";

const DIRECTORY = "people.directory";  // the name people/service.py caches the directory under

export async function render(main) {
  let zones = [];
  const q = h("input", { type: "search", name: "q", placeholder: "Search by name", "aria-label": "Search people" });
  const zoneFilter = h("select", { name: "zone_id", "aria-label": "Filter by zone" });
  const zoneOptions = () => [["", "no zone"], ...zones.map((z) => [z.zone_id, `${z.name} (${z.zone_id})`])];

  const people = card("People", async () => {
    const page = await api("people", { params: { q: q.value, zone_id: zoneFilter.value, limit: 200 } });
    return [h("p", { class: "muted" }, `${page.total} people`), table([
      { label: "Global id", key: "global_id" },
      { label: "Name", key: "name" },
      { label: "Zone", render: (p) => zoneName(p.zone_id) },
      { label: "Updated", render: (p) => when(p.updated_at) },
      { label: "Actions", render: (p) => h("span", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => edit(p) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => remove(p) }, "Delete")) },
    ], page.items, { empty: "No people match." })];
  }, { actions: h("button", { type: "button", onclick: () => edit(null) }, "New person") });

  const zoneName = (id) => (id ? (zones.find((z) => z.zone_id === id)?.name || id) : "—");

  const stats = card("People by zone", async () => {
    const st = await api("people/stats");
    return [h("p", {}, `${st.total} people in total`),
      barChart(st.by_zone.map((b) => ({ label: b.zone_id ? zoneName(b.zone_id) : "no zone", value: b.count })), { label: "People by zone" })];
  });

  const cache = card("Directory cache", async () => {
    const st = await api("cache/stats");
    const dir = st.caches?.[DIRECTORY] || { hits: 0, misses: 0 };
    const hits = dir.hits || 0, misses = dir.misses || 0;
    const rate = hits + misses ? `${((100 * hits) / (hits + misses)).toFixed(1)}%` : "no requests yet";
    return h("dl", { class: "kv" }, h("dt", {}, "Hit rate"), h("dd", { id: "hit-rate" }, rate),
      h("dt", {}, "Hits / misses"), h("dd", {}, `${hits} / ${misses}`), h("dt", {}, "Keys"), h("dd", {}, String(st.keys)),
      h("dt", {}, "Backend"), h("dd", {}, st.backend));
  }, { actions: h("button", { type: "button", class: "secondary", onclick: async () => {
    await attempt(() => api(`cache/invalidate/${DIRECTORY}`, { method: "POST" }), "Directory cache invalidated");
    cache.reload();
  } }, "Invalidate") });

  function edit(p) {
    const d = dialog(p ? `Edit ${p.name}` : "New person", form([
      { name: "global_id", label: "Global id", type: "number", value: p?.global_id, required: true },
      { name: "name", label: "Name", value: p?.name, required: true },
      { name: "zone_id", label: "Zone", options: zoneOptions(), value: p?.zone_id ?? "" },
    ], async (v) => {
      const ok = await attempt(() => (p ? api(`people/${p.id}`, { method: "PATCH", body: v })
        : api("people", { method: "POST", body: v })), p ? "Saved" : "Created");
      if (ok) { d.close(); people.reload(); stats.reload(); }
    }, { submit: p ? "Save" : "Create" }));
  }

  async function remove(p) {
    if (!confirm(`Delete ${p.name}?`)) return;
    if (await attempt(() => api(`people/${p.id}`, { method: "DELETE" }).then(() => true), "Deleted")) { people.reload(); stats.reload(); }
  }

  let timer;
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => people.reload(), 250); });
  zoneFilter.addEventListener("change", () => people.reload());

  // Zones first: a "New person" dialog opened before they arrived would offer no zone to choose.
  try { zones = (await api("zones", { params: { limit: 500 } })).items; } catch { zones = []; }
  main.append(h("div", { class: "page-head" }, h("h1", {}, "People"), q, zoneFilter), people, h("div", { class: "grid2" }, stats, cache));
  clear(zoneFilter).append(...[["", "all zones"], ...zones.map((z) => [z.zone_id, z.name])].map(([v, t]) => h("option", { value: v }, t)));
  people.reload(); stats.reload();
}
