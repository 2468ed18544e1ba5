// System: health per dependency with latency, consumer lag and cache stats, API keys (admin), version.
import { api } from "../api.js";
import { attempt, badge, card, dialog, form, h, table, when } from "../ui.js";

const SCOPES = ["read", "write", "ingest", "admin"];

export async function render(main) {
  const health = card("Health", async () => {
    const r = await fetch("/health", { cache: "no-store" });  // public, like /ready and /metrics
    const body = await r.json();
    return [h("p", {}, "Overall ", badge(body.status), ` · version `, h("strong", { id: "version" }, body.version)),
      table([
        { label: "Dependency", key: "name" },
        { label: "Status", render: (d) => badge(d.status) },
        { label: "Latency", render: (d) => (d.latency_ms == null ? "—" : `${d.latency_ms.toFixed(1)} ms`) },
        { label: "Error", render: (d) => d.error || "" },
      ], Object.entries(body.checks).map(([name, c]) => ({ name, ...c })))];
  });

  const lag = card("Consumers", async () => {
    const text = await (await fetch("/metrics", { cache: "no-store" })).text();
    const rows = [];
    for (const line of text.split("\n")) {
      const m = line.match(/^vigil_consumer_lag\{([^}]*)\}\s+(\S+)/);
      if (m) rows.push({ ...labels(m[1]), lag: Number(m[2]) });
    }
    const pending = text.match(/^vigil_outbox_pending(?:\{[^}]*\})?\s+(\S+)/m);
    return [table([
      ...Object.keys(rows[0] || { consumer: 1 }).filter((k) => k !== "lag").map((k) => ({ label: k, key: k })),
      { label: "Lag", key: "lag" }], rows, { empty: "No consumer has reported lag yet." }),
      h("p", { class: "muted" }, `Outbox pending: ${pending ? pending[1] : "—"}`)];
  });

  const cache = card("Cache", async () => {
    const st = await api("cache/stats");
    return [h("p", {}, `${st.backend}: ${st.hits} hits, ${st.misses} misses, ${st.keys} keys`),
      table([{ label: "Cache", key: "name" }, { label: "Hits", key: "hits" }, { label: "Misses", key: "misses" },
        { label: "Keys", key: "keys" },
        { label: "Hit rate", render: (c) => (c.hits + c.misses ? `${((100 * c.hits) / (c.hits + c.misses)).toFixed(1)}%` : "—") },
        { label: "", render: (c) => h("button", { type: "button", class: "secondary", onclick: async () => {
          await attempt(() => api(`cache/invalidate/${encodeURIComponent(c.name)}`, { method: "POST" }), `Invalidated ${c.name}`);
          cache.reload();
        } }, "Invalidate") }],
      Object.entries(st.caches || {}).map(([name, c]) => ({ name, ...c })))];
  });

  const keys = card("API keys", async () => {
    const page = await api("auth/keys", { params: { limit: 500 } });
    return table([{ label: "Name", key: "name" }, { label: "Scopes", render: (k) => k.scopes.map((x) => badge(x)) },
      { label: "Created", render: (k) => when(k.created_at) },
      { label: "", render: (k) => h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete key ${k.name}? It stops working at once.`)) return;
        if (await attempt(() => api(`auth/keys/${k.id}`, { method: "DELETE" }).then(() => true), "Key deleted")) keys.reload();
      } }, "Delete") }], page.items, { empty: "No stored keys (the admin key from the environment is not listed)." });
  }, { actions: h("button", { type: "button", onclick: () => createKey() }, "New key") });

  function createKey() {
    const d = dialog("New API key", form([
      { name: "name", label: "Name", required: true },
      ...SCOPES.map((sc) => ({ name: `scope_${sc}`, label: `Scope: ${sc}`, type: "checkbox", value: sc === "read" })),
    ], async (v) => {
      const scopes = SCOPES.filter((sc) => v[`scope_${sc}`]);
      const made = await attempt(() => api("auth/keys", { method: "POST", body: { name: v.name, scopes } }));
      if (!made) return;
      d.close();
      keys.reload();
      const out = h("input", { type: "text", readonly: true, value: made.key, class: "secret", "aria-label": "The new key" });
      dialog("Key created", h("p", {}, "Copy it now: it is shown only this once."), out,
        h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(made.key) }, "Copy"));
      out.select();
    }, { submit: "Create" }));
  }

  main.append(h("div", { class: "page-head" }, h("h1", {}, "System"),
    h("a", { href: "/docs" }, "API docs"), h("a", { href: "/redoc" }, "ReDoc")),
    h("div", { class: "grid2" }, health, lag), cache, keys);
  const timer = setInterval(() => { health.reload(); lag.reload(); }, 10000);
  return () => clearInterval(timer);
}

function labels(s) {
  const out = {};
  for (const m of s.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}
