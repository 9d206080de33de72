// The cost panel on the stats page: today's spend, today per project, and the burn rate of the
// current 5-hour block, from GET /v1/usage (the transcripts' tokens, priced by the daemon). Re-read
// when a session's usage changes (the stream's `usage` entity), at most once a second.
import { ApiError, get, query } from "./api.js";
import { fill, h, hhmm } from "./dom.js";

const HOUR = 3600 * 1000;
let state = null;

export function mount(root) {
  state = { body: h("div", { class: "cost" }), timer: 0 };
  root.append(h("section", { "aria-label": "cost", "data-panel": "cost" }, h("h1", {}, "Cost"), state.body));
  load();
}

export function unmount() {
  if (state) clearTimeout(state.timer);
  state = null;
}

export function update(batch) {
  if (!state || state.timer || !batch.some((c) => c.entity === "usage")) return;
  state.timer = setTimeout(() => { if (state) { state.timer = 0; load(); } }, 1000);
}

const usd = (n) => "$" + (n || 0).toFixed(2);
const tokens = (r) => (r.input_tokens || 0) + (r.output_tokens || 0) + (r.cache_creation_input_tokens || 0) + (r.cache_read_input_tokens || 0);

function localDay(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

async function load() {
  const mine = state;
  const now = new Date();
  // The day is the daemon's local calendar; on the same machine, the browser's.
  const today = localDay(now);
  let byProject, blocks;
  try {
    [byProject, blocks] = await Promise.all([
      get("/v1/usage" + query({ group_by: "project", since: today })),
      // Ten hours back: the current block began at most five hours ago, at the hour of a message
      // that itself may follow one up to five hours older.
      get("/v1/usage" + query({ group_by: "block", since: new Date(now.getTime() - 10 * HOUR).toISOString() })),
    ]);
  } catch (err) {
    if (state === mine) {
      mine.body.replaceChildren(h("p", { class: "unavailable", role: "status" },
        err instanceof ApiError && err.status === 404 ? "cost unavailable: this daemon has no /v1/usage" : `cost unavailable: ${err.message}`));
    }
    return;
  }
  if (state !== mine) return;
  const total = byProject.total;
  const unpriced = total.unpriced_messages
    ? h("p", { class: "note" }, `${total.unpriced_messages} messages of models with no price are left out: ${byProject.unpriced_models.join(", ")}`)
    : null;
  fill(mine.body,
    h("p", { class: "spend" }, "Today ", h("strong", { "data-today": total.cost_usd.toFixed(6) }, usd(total.cost_usd)),
      ` · ${tokens(total).toLocaleString()} tokens · ${total.messages} messages`),
    unpriced,
    projects(byProject.items),
    block(blocks.items.find((b) => b.active)));
}

function projects(items) {
  if (!items.length) return h("p", { class: "empty" }, "nothing spent today");
  const rows = [...items].sort((a, b) => b.cost_usd - a.cost_usd);
  return h("table", { class: "costs" },
    h("thead", {}, h("tr", {}, h("th", {}, "project"), h("th", {}, "cost"), h("th", {}, "tokens"), h("th", {}, "models"))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-project": r.key || "" },
      h("td", {}, r.key || "(no project)"), h("td", { class: "num" }, usd(r.cost_usd)),
      h("td", { class: "num" }, tokens(r).toLocaleString()), h("td", {}, r.models.join(", "))))));
}

function block(b) {
  if (!b) return h("p", { class: "empty", "data-block": "none" }, "no active 5-hour block");
  const rate = b.cost_per_hour === null ? "—" : usd(b.cost_per_hour) + "/h";
  return h("p", { class: "block", "data-block": b.key },
    `Current 5-hour block (since ${hhmm(new Date(b.key))}, ends ${hhmm(new Date(b.end))}): ${usd(b.cost_usd)}, burn rate `,
    h("strong", { "data-burn": b.cost_per_hour === null ? "" : b.cost_per_hour.toFixed(6) }, rate));
}
