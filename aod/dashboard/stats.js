// GET /v1/stats drawn as inline SVG (no chart library): events per minute over the last hour,
// and per tool its latency (p50, p95) and failure rate. Re-read after changes, at most every 2 s.
import { ApiError, get, query } from "./api.js";
import { h, s } from "./dom.js";
import * as cost from "./cost.js";

export const NAME = "stats";
const HOUR = 3600 * 1000;
let state = null;

export function mount(root) {
  state = { root, body: h("div", { class: "stats" }), timer: 0 };
  root.append(h("section", { "aria-label": "stats" }, h("h1", {}, "Last hour"), state.body));
  cost.mount(root);
  load();
}

export function unmount() { clearTimeout(state.timer); state = null; cost.unmount(); }

export function update(batch) {
  cost.update(batch);
  if (!state || state.timer || !batch.some((c) => c.entity === "event")) return;
  state.timer = setTimeout(() => { if (state) { state.timer = 0; load(); } }, 2000);
}

async function load() {
  const mine = state;
  // Sixty whole minutes, the current one last.
  const since = new Date();
  since.setSeconds(0, 0);
  since.setTime(since.getTime() - HOUR + 60000);
  let stats;
  try {
    stats = await get("/v1/stats" + query({ since: since.toISOString() }));
  } catch (err) {
    if (state === mine) {
      mine.body.replaceChildren(h("p", { class: "unavailable", role: "status" },
        err instanceof ApiError && err.status === 404 ? "stats unavailable: this daemon has no /v1/stats" : `stats unavailable: ${err.message}`));
    }
    return;
  }
  if (state !== mine) return;
  mine.body.replaceChildren(
    h("h2", {}, "Events per minute"), perMinute(stats.events_per_minute || [], since),
    h("h2", {}, "Sessions by status"),
    h("ul", { class: "statuses" }, Object.entries(stats.sessions_by_status || {}).map(([k, v]) => h("li", {}, `${k}: ${v}`))),
    h("h2", {}, "Tools"), tools(stats.tools || []));
}

function perMinute(rows, since) {
  const W = 720, H = 160, slots = 60;
  const counts = new Array(slots).fill(0);
  for (const r of rows) {
    const i = Math.floor((Date.parse(r.minute) - since.getTime()) / 60000);
    if (i >= 0 && i < slots) counts[i] += r.count;
  }
  const max = Math.max(1, ...counts);
  const bw = W / slots;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "chart", role: "img", "aria-label": `events per minute, peak ${max}` });
  counts.forEach((n, i) => {
    const bh = (n / max) * H;
    svg.append(s("rect", { x: i * bw + 1, y: H - bh, width: bw - 2, height: bh, class: "bar" }, s("title", {}, `${n} events`)));
  });
  svg.append(s("text", { x: 0, y: H + 16, class: "axis" }, "-60 min"), s("text", { x: W - 30, y: H + 16, class: "axis" }, "now"),
    s("text", { x: W - 4, y: 12, class: "axis", "text-anchor": "end" }, `max ${max}/min`));
  return svg;
}

function tools(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "no tool calls");
  const W = 720, row = 22, H = rows.length * row;
  const maxMs = Math.max(1, ...rows.map((r) => r.p95_ms || 0));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "tool latency and failure rate" });
  rows.forEach((r, i) => {
    const y = i * row;
    const rate = r.count ? r.failures / r.count : 0;
    const p95 = ((r.p95_ms || 0) / maxMs) * 360, p50 = ((r.p50_ms || 0) / maxMs) * 360;
    svg.append(s("text", { x: 0, y: y + 15, class: "axis" }, r.tool_name),
      s("rect", { x: 140, y: y + 4, width: p95, height: 14, class: "bar p95" }, s("title", {}, `p95 ${r.p95_ms} ms`)),
      s("rect", { x: 140, y: y + 4, width: p50, height: 14, class: "bar" }, s("title", {}, `p50 ${r.p50_ms} ms`)),
      s("rect", { x: 520, y: y + 4, width: rate * 100, height: 14, class: "bar fail" }),
      s("text", { x: 630, y: y + 15, class: "axis" }, `${r.count} · ${(rate * 100).toFixed(0)}% failed`));
  });
  return svg;
}
