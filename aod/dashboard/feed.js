// Every change as it happens (since the page loaded), newest first; filterable and pausable.
import { h } from "./dom.js";
import { store } from "./store.js";

export const NAME = "feed";
const SHOWN = 300;
const filters = { kind: "", tool: "", project: "", session: "" };
let state = null;

export function mount(root) {
  state = { paused: false, frozen: null };
  const input = (key, label) => h("input", { type: "search", placeholder: label, "aria-label": `filter by ${label}`, value: filters[key],
    oninput: (e) => { filters[key] = e.target.value.trim(); render(); } });
  state.pause = h("button", { "aria-label": "pause the feed", "aria-pressed": "false", onclick: toggle }, "Pause");
  state.info = h("span", { class: "note", role: "status" });
  state.list = h("ol", { class: "feed", "aria-label": "live changes" });
  root.append(h("section", { class: "feedview", "aria-label": "live feed" },
    h("div", { class: "filters" }, input("kind", "kind"), input("tool", "tool"), input("project", "project"),
      input("session", "session"), state.pause, state.info), state.list));
  render();
}

export function unmount() { state = null; }

function toggle() {
  state.paused = !state.paused;
  state.frozen = state.paused ? store.feedTotal : null;
  state.pause.textContent = state.paused ? "Resume" : "Pause";
  state.pause.setAttribute("aria-pressed", String(state.paused));
  state.pause.setAttribute("aria-label", state.paused ? "resume the feed" : "pause the feed");
  render();
}

export function update() {
  if (!state) return;
  if (state.paused) state.info.textContent = `paused · ${store.feedTotal - state.frozen} new`;
  else render();
}

function kindOf(c) { return c.entity === "event" ? c.data.kind : c.entity; }

function matches(c) {
  if (filters.kind && !kindOf(c).toLowerCase().includes(filters.kind.toLowerCase())) return false;
  if (filters.tool && !(c.data.tool_name || "").toLowerCase().includes(filters.tool.toLowerCase())) return false;
  if (filters.project && !(c.project_id || "").includes(filters.project)) return false;
  if (filters.session && !(c.session_id || "").includes(filters.session)) return false;
  return true;
}

function describe(c) {
  const d = c.data;
  if (c.entity === "event") return `${d.tool_name || ""}${d.duration_ms != null ? ` ${d.duration_ms} ms` : ""}${d.ok === false ? " failed" : ""}`;
  if (c.entity === "session") return `${c.op} → ${d.status} (${d.activity})`;
  if (c.entity === "pr") return `#${d.number} ${d.state} ${d.ci_state || ""} ${d.review_decision || ""}`;
  if (c.entity === "check") return `${d.name}: ${d.status}`;
  if (c.entity === "escalation") return `${d.priority}: ${d.message}${d.acked_at ? " (acked)" : ""}`;
  if (c.entity === "usage") return `$${(d.cost_usd || 0).toFixed(2)} in ${d.messages} messages`;
  return c.op;
}

function render() {
  const upto = state.paused ? store.feed.length - (store.feedTotal - state.frozen) : store.feed.length;
  const rows = [];
  for (let i = upto - 1; i >= 0 && rows.length < SHOWN; i--) {
    const c = store.feed[i];
    if (!matches(c)) continue;
    rows.push(row(c));
  }
  state.list.replaceChildren(...rows);
  if (!state.paused) state.info.textContent = `${store.feedTotal} changes since the page opened`;
}

// A change never changes: its row is built once and reused by every later render.
const built = new WeakMap();
function row(c) {
  let el = built.get(c);
  if (!el) {
    el = h("li", { class: `change e-${c.entity}`, "data-seq": c.seq, "data-entity": c.entity, "data-id": c.id },
      h("time", { datetime: c.at }, new Date(c.at).toLocaleTimeString([], { hour12: false })), " ",
      h("span", { class: "kind" }, kindOf(c)), " ",
      c.session_id ? h("a", { href: `/sessions/${encodeURIComponent(c.session_id)}` }, c.session_id) : "", " ",
      h("span", {}, describe(c)));
    built.set(c, el);
  }
  return el;
}
