// The router (location.pathname picks the view), the title and favicon, and the stream.
import { connect } from "./stream.js";
import { store, on, needingHuman, loadSnapshot } from "./store.js";
import * as board from "./board.js";
import * as session from "./session.js";
import * as feed from "./feed.js";
import * as stats from "./stats.js";

const root = document.getElementById("view");
let current = null;

function route(path) {
  const m = path.match(/^\/sessions\/([^/]+)$/);
  if (m) return [session, { id: decodeURIComponent(m[1]) }];
  if (path === "/feed") return [feed, {}];
  if (path === "/stats") return [stats, {}];
  return [board, {}];
}

export function navigate(path) {
  if (path !== location.pathname) history.pushState(null, "", path);
  show();
}

function show() {
  if (current && current.unmount) current.unmount();
  root.replaceChildren();
  const [view, params] = route(location.pathname);
  current = view;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view.NAME) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view.mount(root, params, navigate);
}

function badge() {
  const n = needingHuman();
  const title = n > 0 ? `(${n}) aod` : "aod";
  if (document.title !== title) document.title = title;
  // The favicon is drawn here (an SVG data: URL, which img-src allows): red with the count, or calm.
  const text = n > 99 ? "99+" : String(n);
  const svg = n > 0
    ? `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#d03030"/><text x="16" y="21" font-size="${text.length > 2 ? 11 : 15}" font-family="sans-serif" font-weight="bold" text-anchor="middle" fill="#fff">${text}</text></svg>`
    : `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" fill="#4a6fa5"/></svg>`;
  const href = "data:image/svg+xml," + encodeURIComponent(svg);
  const link = document.getElementById("favicon");
  if (link.getAttribute("href") !== href) link.setAttribute("href", href);
}

function render(batch) {
  badge();
  if (current && current.update) current.update(batch);
}

async function reload() {
  try { await loadSnapshot(); } catch { /* the indicator says offline */ }
  badge();
  show();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href^='/']");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", show);
on("change", render);
on("reset", reload);
connect(document.getElementById("conn"));
window.aod = { store };  // for a look from the console
// The stream's first frame is a reset that loads everything; without a stream, show what we can.
const fallback = setTimeout(reload, 2000);
on("reset", () => clearTimeout(fallback));
