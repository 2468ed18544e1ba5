// Alerts › Policies and mutes (#/alerts/policies): a sub-view of the Alerts page, not a navigation entry.
// Policies: list, create (name, match source/severity, quiet resolve, remind, enabled), enable/disable, delete.
// Mutes: list, create (match source or subject, until), delete.
import { api } from "../api.js";
import { attempt, badge, card, dialog, form, h, table, toIso, when } from "../ui.js";

const SEVERITIES = [["", "any"], ["critical", "critical"], ["warning", "warning"], ["info", "info"]];

// "source=reid · severity=critical", or "every alert" for an empty match.
export function matchSummary(match) {
  const parts = Object.entries(match || {}).filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(" · ") : "every alert";
}

const seconds = (s) => {
  if (s === null || s === undefined) return "—";
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
};

// Only the fields given: the API refuses empty strings in a match (min_length 1).
function compact(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined && v !== ""));
}

// A datetime-local value `minutes` from now, in the browser's time zone.
function localIn(minutes) {
  const d = new Date(Date.now() + minutes * 60_000);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

export async function renderPolicies(main) {
  document.title = "Alert policies · Alerts · Vigil console";

  const policies = card("Policies", async () => {
    const page = await api("alert-policies", { params: { limit: 200 } });
    return [h("p", { class: "muted" }, `${page.total} policies`), table([
      { label: "Name", key: "name" },
      { label: "Match", render: (p) => matchSummary(p.match) },
      { label: "Notify", render: (p) => `${p.notify.length} exporter${p.notify.length === 1 ? "" : "s"}` },
      { label: "Quiet resolve", render: (p) => seconds(p.quiet_resolve_s) },
      { label: "Remind every", render: (p) => seconds(p.remind_every_s) },
      { label: "Enabled", render: (p) => badge(p.enabled ? "enabled" : "disabled", p.enabled ? "ok" : "off") },
      { label: "Actions", render: (p) => h("span", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => toggle(p) }, p.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", "aria-label": `Delete policy ${p.name}`, onclick: () => removePolicy(p) },
          "Delete")) },
    ], page.items, { empty: "No policies: alerts are stored and pushed, nobody is notified.",
      rowAttrs: (p) => ({ dataset: { id: p.id } }) })];
  }, { actions: h("button", { type: "button", onclick: () => newPolicy() }, "New policy") });

  const mutes = card("Mutes", async () => {
    const page = await api("alerts/mutes", { params: { limit: 200 } });
    const now = new Date();
    return [h("p", { class: "muted" }, `${page.total} mutes`), table([
      { label: "Match", render: (m) => matchSummary(m.match) },
      { label: "Until", render: (m) => when(m.until) },
      { label: "State", render: (m) => (new Date(m.until) > now ? badge("active", "active") : badge("ended", "off")) },
      { label: "By", key: "created_by" },
      { label: "Actions", render: (m) => h("button", { type: "button", class: "danger",
        "aria-label": `Delete mute ${matchSummary(m.match)}`, onclick: () => removeMute(m) }, "Delete") },
    ], page.items, { empty: "No mutes.", rowAttrs: (m) => ({ dataset: { id: m.id } }) })];
  }, { actions: h("button", { type: "button", onclick: () => newMute() }, "New mute") });

  function newPolicy() {
    const d = dialog("New policy", form([
      { name: "name", label: "Name", required: true },
      { name: "source", label: "Match source", placeholder: "reid, plate, geofence… (empty: any)" },
      { name: "severity", label: "Match severity", options: SEVERITIES, value: "" },
      { name: "quiet_resolve_s", label: "Resolve after quiet (seconds)", type: "number" },
      { name: "remind_every_s", label: "Remind every (seconds)", type: "number" },
      { name: "enabled", label: "Enabled", type: "checkbox", value: true },
    ], async (v) => {
      const body = compact({ name: v.name, match: compact({ source: v.source, severity: v.severity }),
        quiet_resolve_s: v.quiet_resolve_s, remind_every_s: v.remind_every_s });
      body.match = body.match || {};
      body.notify = [];
      body.enabled = v.enabled;
      const ok = await attempt(() => api("alert-policies", { method: "POST", body }), "Policy created");
      if (ok) { d.close(); policies.reload(); }
    }, { submit: "Create policy" }));
  }

  async function toggle(p) {
    const ok = await attempt(() => api(`alert-policies/${p.id}`, { method: "PATCH", body: { enabled: !p.enabled } }),
      p.enabled ? "Policy disabled" : "Policy enabled");
    if (ok) policies.reload();
  }

  async function removePolicy(p) {
    if (!confirm(`Delete policy ${p.name}?`)) return;
    if (await attempt(() => api(`alert-policies/${p.id}`, { method: "DELETE" }).then(() => true), "Policy deleted")) {
      policies.reload();
    }
  }

  function newMute() {
    const d = dialog("New mute", h("p", { class: "muted" },
      "Alerts matching a mute are stored and counted, not notified or pushed as new. Give a source, a subject (a glob), or both."),
    form([
      { name: "source", label: "Match source", placeholder: "reid, plate, geofence…" },
      { name: "subject", label: "Match subject (glob)", placeholder: "e.g. person:42 or cam-*" },
      { name: "until", label: "Until", type: "datetime-local", value: localIn(60), required: true },
    ], async (v) => {
      const body = { match: compact({ source: v.source, subject: v.subject }), until: toIso(v.until) };
      const ok = await attempt(() => api("alerts/mutes", { method: "POST", body }), "Mute created");
      if (ok) { d.close(); mutes.reload(); }
    }, { submit: "Create mute" }));
  }

  async function removeMute(m) {
    if (!confirm(`Delete the mute on ${matchSummary(m.match)}?`)) return;
    if (await attempt(() => api(`alerts/mutes/${m.id}`, { method: "DELETE" }).then(() => true), "Mute deleted")) {
      mutes.reload();
    }
  }

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Alert policies"),
    h("a", { href: "#/alerts", class: "sub-link" }, "Back to the alert list")), policies, mutes);
}
