// Entry point: login, navigation by hash, one page at a time (each page may return a cleanup).
import { api, ApiError, clearKey, getKey, releaseImages, setKey } from "./api.js";
import { clear, problem } from "./ui.js";

const PAGES = ["alerts", "people", "zones", "plates", "assets", "faces", "scenarios", "system"];
let cleanup = null;

const $ = (id) => document.getElementById(id);

function showLogin(message) {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("api_key").focus();
}

async function login(key) {
  // A key is good if the server knows it: 401 means unknown; 403 (no read scope) still signs in,
  // and each page then says which scope is missing.
  setKey(key);
  try {
    await api("alerts", { params: { limit: 1 } });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) {
      clearKey();
      showLogin(err instanceof ApiError && err.status === 401 ? "That key is not valid." : String(err.message));
      return;
    }
  }
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  if (!location.hash.startsWith("#/")) location.hash = "#/alerts";
  else route();
}

async function route() {
  if (!getKey()) return showLogin();
  const name = (location.hash.match(/^#\/([a-z]+)/) || [])[1] || "alerts";
  const page = PAGES.includes(name) ? name : "alerts";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  releaseImages();
  const main = clear($("main"));
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · Vigil console`;
  main.dataset.page = page;
  try {
    const mod = await import(`./pages/${page}.js`);
    cleanup = (await mod.render(main)) || null;
  } catch (err) {
    main.append(problem(err));
  }
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = $("api_key").value.trim();
  if (key) login(key);
});
$("logout").addEventListener("click", () => {
  if (cleanup) cleanup();
  cleanup = null;
  clearKey();
  $("api_key").value = "";
  showLogin();
});
window.addEventListener("hashchange", () => { if (getKey()) route(); });
window.addEventListener("vigil:unauthorized", () => {
  if (cleanup) cleanup();
  cleanup = null;
  clearKey();
  showLogin("The key was refused (revoked or invalid). Sign in again.");
});

if (getKey()) login(getKey()); else showLogin();
