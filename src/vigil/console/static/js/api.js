// The console's only way to the server: the public API with the key in a header, and WebSockets.
const KEY = "vigil.api_key";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k) => sessionStorage.setItem(KEY, k);
export const clearKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  get errors() { return this.problem.errors || []; }
}

function query(params) {
  if (!params) return "";
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function api(path, { method = "GET", body, params, form, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${getKey() || ""}` };
  let payload;
  if (form) payload = form;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const url = (path.startsWith("/") ? path : `/api/v1/${path}`) + query(params);
  const r = await fetch(url, { method, headers, body: payload, cache: "no-store" });
  if (r.status === 401) window.dispatchEvent(new CustomEvent("vigil:unauthorized"));
  if (!r.ok) {
    let problem = null;
    try { problem = await r.json(); } catch { problem = { detail: `${r.status} ${r.statusText}` }; }
    throw new ApiError(r.status, problem);
  }
  if (raw) return r;
  if (r.status === 204) return null;
  const type = r.headers.get("content-type") || "";
  return type.includes("json") ? r.json() : r.text();
}

// Image routes need the key: fetch with the header, show as an object URL (the key never goes in a URL).
const objectUrls = new Set();
export async function imageUrl(path) {
  const r = await api(path, { raw: true });
  const url = URL.createObjectURL(await r.blob());
  objectUrls.add(url);
  return url;
}
export function releaseImages() {
  for (const u of objectUrls) URL.revokeObjectURL(u);
  objectUrls.clear();
}

// Multipart upload with progress (fetch has no upload progress; XHR does).
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/${path}`);
    xhr.setRequestHeader("Authorization", `Bearer ${getKey() || ""}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress?.(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new ApiError(xhr.status, xhr.response || { detail: `HTTP ${xhr.status}` }));
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: "network error" }));
    xhr.send(form);
  });
}

// A WebSocket that reconnects; browsers cannot set headers on one, so the key goes as ?token= (API.md).
export function stream(path, params, onMessage, onState) {
  let ws, closed = false, delay = 500;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}${path}${query({ ...params, token: getKey() })}`);
    ws.onopen = () => { delay = 500; onState?.("live"); };
    ws.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.warn("bad message", err); } };
    ws.onclose = (e) => {
      if (closed) return;
      onState?.(e.code === 1008 ? "refused" : "reconnecting");
      if (e.code === 1008) return;  // key revoked or lacks the scope: do not hammer the server
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
  return { close() { closed = true; ws?.close(); } };
}
