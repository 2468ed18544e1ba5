// Faces: events, drag-and-drop multi upload with progress, gallery by cluster, search by photo, recompute job.
import { api, imageUrl, upload } from "../api.js";
import { attempt, card, clear, dialog, form, h, problem, problemText, table, when } from "../ui.js";

export async function render(main) {
  let events = [], current = null;
  const eventSel = h("select", { "aria-label": "Event", id: "face-event" });

  const eventsCard = card("Events", async () => {
    events = (await api("faces/events", { params: { limit: 500 } })).items;
    const keep = eventSel.value;
    clear(eventSel).append(...events.map((e) => h("option", { value: e.code }, `${e.name} (${e.code})`)));
    if (keep && events.some((e) => e.code === keep)) eventSel.value = keep;
    current = eventSel.value || null;
    gallery.reload();
    return table([{ label: "Name", key: "name" }, { label: "Code", key: "code" }, { label: "Running", key: "running" },
      { label: "Starts", render: (e) => when(e.starts_at) }, { label: "Ends", render: (e) => when(e.ends_at) }], events, { empty: "No events yet." });
  }, { actions: h("button", { type: "button", onclick: () => {
    const d = dialog("New event", form([{ name: "code", label: "Code", required: true }, { name: "name", label: "Name", required: true },
      { name: "running", label: "Running", type: "checkbox", value: true }], async (v) => {
      if (await attempt(() => api("faces/events", { method: "POST", body: v }), "Event created")) { d.close(); eventSel.value = v.code; eventsCard.reload(); }
    }, { submit: "Create" }));
  } }, "New event") });

  const uploads = h("ul", { class: "uploads", id: "uploads" });
  const picker = h("input", { type: "file", multiple: true, accept: "image/*", "aria-label": "Photos to upload", id: "face-files" });
  const drop = h("div", { class: "dropzone", tabindex: "0" }, h("p", {}, "Drop photos here, or choose them: "), picker, uploads);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); });
  picker.addEventListener("change", () => { send([...picker.files]); picker.value = ""; });

  async function send(files) {
    if (!current) { uploads.append(h("li", { class: "problem" }, "Create or choose an event first.")); return; }
    await Promise.all(files.map(async (file) => {
      const bar = h("progress", { max: 1, value: 0 }), note = h("span", {}, " uploading…");
      uploads.append(h("li", {}, `${file.name} `, bar, note));
      const fd = new FormData();
      fd.append("file", file); fd.append("event_code", current);
      try {
        const img = await upload("faces/images", fd, (f) => { bar.value = f; });
        bar.value = 1;
        note.textContent = ` ${img.faces.length} face${img.faces.length === 1 ? "" : "s"} found`;
      } catch (err) { note.textContent = ` ${problemText(err)}`; note.className = "problem"; }
    }));
    gallery.reload();
  }

  const gallery = card("Gallery by cluster", async () => {
    if (!current) return h("p", { class: "muted" }, "No event.");
    const clusters = await api("faces/clusters", { params: { event_code: current } });
    const images = await api("faces/images", { params: { event_code: current, limit: 200 } });
    const byCluster = new Map();
    for (const img of images.items) for (const f of img.faces) {
      const key = f.cluster_id ?? "unclustered";
      if (!byCluster.has(key)) byCluster.set(key, new Map());
      byCluster.get(key).set(img.id, img);
    }
    const faces = images.items.reduce((n, i) => n + i.faces.length, 0);
    return [h("p", { id: "face-count" }, `${images.total} photos · ${faces} faces · ${clusters.length} clusters`),
      ...[...byCluster.entries()].map(([cid, imgs]) => h("div", {}, h("h3", {}, cid === "unclustered" ? "Not clustered yet" : `Cluster ${String(cid).slice(0, 8)} (${clusters.find((c) => c.cluster_id === cid)?.size ?? imgs.size})`),
        h("div", { class: "gallery" }, [...imgs.values()].slice(0, 12).map(photo))))];
  }, { actions: h("button", { type: "button", class: "secondary", onclick: () => recompute() }, "Recompute clusters") });

  const job = h("div", { "aria-live": "polite" });
  async function recompute() {
    if (!current) return;
    let j = await attempt(() => api("faces/clusters/recompute", { method: "POST", params: { event_code: current } }));
    const bar = h("progress", { max: 1, value: 0 }), text = h("span", {});
    clear(job).append(h("p", {}, "Recompute: ", bar, text));
    while (j && !["done", "completed", "failed", "succeeded"].includes(j.status)) {
      bar.value = j.progress ?? (j.total ? j.processed / j.total : 0);
      text.textContent = ` ${j.status} ${j.phase || ""} ${j.processed ?? 0}/${j.total ?? "?"}`;
      await new Promise((r) => setTimeout(r, 500));
      j = await attempt(() => api(`faces/clusters/jobs/${j.id}`));
    }
    if (j) { bar.value = 1; text.textContent = ` ${j.status}: ${j.clusters ?? 0} clusters${j.error ? ` (${j.error})` : ""}`; gallery.reload(); }
  }

  const results = h("div", {});
  const searchForm = form([{ name: "file", label: "Photo to search for", type: "file", accept: "image/*", required: true },
    { name: "top_k", label: "Top k", type: "number", value: 10 }, { name: "max_distance", label: "Max distance", type: "number", step: "0.05" }],
  async (v) => {
    const fd = new FormData();
    fd.append("file", v.file[0]);
    if (current) fd.append("event_code", current);
    if (v.top_k) fd.append("top_k", v.top_k);
    if (v.max_distance) fd.append("max_distance", v.max_distance);
    clear(results);
    try {
      const r = await api("faces/search", { method: "POST", form: fd });
      results.append(h("p", {}, `${r.query_faces} face(s) in the query, ${r.matches.length} matches`),
        h("div", { class: "gallery" }, r.matches.map((m) => photo({ id: m.image_id }, `distance ${m.distance.toFixed(3)}`))));
    } catch (err) { results.append(problem(err)); }
  }, { submit: "Search" });

  eventSel.addEventListener("change", () => { current = eventSel.value; gallery.reload(); });
  main.append(h("div", { class: "page-head" }, h("h1", {}, "Faces"), eventSel), eventsCard,
    h("div", { class: "grid2" }, card("Upload", async () => drop), card("Search by photo", async () => [searchForm, results])), job, gallery);
}

function photo(img, caption) {
  const el = h("img", { alt: `photo ${img.filename || img.id}` });
  imageUrl(`faces/images/${img.id}/file`).then((u) => { el.src = u; }).catch(() => null);
  return h("figure", {}, el, h("figcaption", {}, caption || `${img.faces?.length ?? 0} faces`));
}
