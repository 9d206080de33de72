// One session: header, timeline (keyset "older"), PRs and checks, trackers, escalations, send, kill.
import { ApiError, get, post, query } from "./api.js";
import { h, ago, flag, fill } from "./dom.js";
import { store, upsertSession, addPr, prsOf, checksOf } from "./store.js";
import { ack } from "./board.js";
import { replayPanel } from "./replay.js";

export const NAME = "session";
let state = null;

export function mount(root, { id }, navigate) {
  state = { id, root, navigate, events: new Map(), cursor: null, trackers: [], missing: false, payloads: new Map(), open: new Set() };
  state.header = h("section", { class: "head", "aria-label": "session" });
  state.prs = h("section", { class: "prs", "aria-label": "pull requests" });
  state.escs = h("section", { class: "escs", "aria-label": "trackers and escalations" });
  state.timeline = h("ol", { class: "timeline", "aria-label": "events" });
  state.older = h("button", { class: "more", "aria-label": "load older events", onclick: older }, "older");
  state.note = h("p", { class: "note", role: "status" });
  const input = h("textarea", { rows: 2, "aria-label": "message to the agent", placeholder: "type to the agent…" });
  const send = h("form", { class: "send", "aria-label": "send to agent", onsubmit: (e) => { e.preventDefault(); sendMessage(input); } },
    input, h("button", { type: "submit", "aria-label": "send message" }, "Send"),
    h("button", { type: "button", class: "danger", "aria-label": "kill session", onclick: kill }, "Kill"));
  state.replay = replayPanel(id);
  root.append(h("div", { class: "session" }, state.header, send, state.note, state.escs, state.prs,
    h("section", { "aria-label": "timeline" }, h("h2", {}, "Events"), state.timeline, state.older), state.replay.el));
  load();
}

export function unmount() { if (state) state.replay.close(); state = null; }

async function load() {
  const mine = state;
  try {
    const [detail, events] = await Promise.all([
      get(`/v1/sessions/${encodeURIComponent(mine.id)}`),
      get(`/v1/sessions/${encodeURIComponent(mine.id)}/events` + query({ payload: 1, limit: 50 })),
    ]);
    upsertSession(detail);
    for (const p of detail.prs) addPr(p);
    for (const e of detail.escalations) store.escalations.set(e.id, e);
    mine.trackers = detail.trackers;
    addEvents(mine, events);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) mine.missing = true;
    else mine.note.textContent = `could not load: ${err.message}`;
  }
  if (state === mine) render();
}

function addEvents(mine, page) {
  for (const ev of page.items) {
    mine.events.set(ev.id, ev);
    if (ev.payload !== undefined) mine.payloads.set(ev.id, ev.payload);
  }
  mine.cursor = page.next_cursor;
}

async function older() {
  const mine = state;
  if (!mine.cursor) return;
  try {
    addEvents(mine, await get(`/v1/sessions/${encodeURIComponent(mine.id)}/events` + query({ payload: 1, limit: 50, cursor: mine.cursor })));
  } catch (err) { mine.note.textContent = `could not load older events: ${err.message}`; }
  if (state === mine) render();
}

export function update(batch) {
  if (!state) return;
  let mine = batch.length === 0;  // an empty batch: counts were re-read, the header may age
  for (const c of batch) {
    if (c.session_id !== state.id) continue;
    mine = true;
    if (c.entity === "event") state.events.set(c.data.id, c.data);
  }
  // Other sessions' changes do not touch this page: under a busy stream it renders only for its own.
  if (mine) render();
}

// Tokens and cost from the session's transcript (the stream's `usage` entity keeps it current).
function cost(u) {
  if (!u) return null;
  const tokens = u.input_tokens + u.output_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
  const sub = u.sidechain_messages ? `, subagents $${u.sidechain_cost_usd.toFixed(2)}` : "";
  const unpriced = u.unpriced_messages ? `, ${u.unpriced_messages} messages unpriced` : "";
  return `$${u.cost_usd.toFixed(2)} · ${tokens.toLocaleString()} tokens in ${u.messages} messages${sub}${unpriced}`;
}

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "—")];
}

function render() {
  const s = store.sessions.get(state.id);
  if (!s) {
    state.header.replaceChildren(h("h1", {}, state.missing ? `No session ${state.id}` : `Session ${state.id}`));
    return;
  }
  const log = store.statusLog.get(s.id) || [];
  state.replay.end(s.last_event_at);
  state.header.replaceChildren(
    h("h1", {}, s.project_id || "(no project)", s.branch ? ` ⎇ ${s.branch}` : "", " ",
      h("span", { class: `status s-${s.status}` }, s.status.replace("_", " "), " · ", ago(s._since))),
    h("dl", {}, field("session", s.id), field("agent", s.agent), field("worktree", s.workspace_path),
      field("runtime", `${s.runtime || "none"}${s.runtime_handle ? " " + s.runtime_handle : ""}`),
      field("alive", flag(s.is_alive)), field("activity", s.activity), field("error", s.error),
      field("started", s.created_at), field("ended", s.ended_at ? `${s.ended_at} (${s.termination_reason})` : null),
      field("cost", cost(s.usage)),
      field("status timeline", log.length ? log.map((l) => `${l.status} ${ago(l.at)} ago`).join(" → ") : `${s.status} for ${ago(s._since)}`)));
  const escs = [...store.escalations.values()].filter((e) => e.session_id === s.id).sort((a, b) => b.id - a.id);
  fill(state.escs, h("h2", {}, "Escalations and trackers"),
    escs.length ? h("ul", {}, escs.map((e) => h("li", { class: `esc p-${e.priority}`, "data-escalation": e.id },
      `${e.priority} · ${e.reaction}: ${e.message} · ${ago(e.created_at)} ago `,
      e.acked_at ? h("span", { class: "acked" }, "acked") :
        h("button", { class: "ack", "aria-label": `acknowledge escalation ${e.id}`, onclick: () => ack(e.id).then(render) }, "Ack"))))
      : h("p", { class: "empty" }, "no escalations"),
    state.trackers.length ? h("ul", {}, state.trackers.map((t) => h("li", {},
      `${t.reaction}: ${t.attempts} attempts since ${ago(t.first_at)} ago${t.resolved_at ? ", resolved" : ""}${t.escalated_at ? ", escalated" : ""}`))) : null);
  const prs = prsOf(s.id);
  fill(state.prs, h("h2", {}, "Pull requests"), prs.length ? prs.map((p) => h("div", { class: "pr" },
    h("a", { href: p.url, rel: "noreferrer", target: "_blank" }, `#${p.number ?? "?"} ${p.title || p.url}`),
    ` · ${p.state || "?"}${p.draft ? " (draft)" : ""} · review ${p.review_decision || "—"} · CI ${p.ci_state || "—"} · ${p.mergeability || ""}`,
    h("ul", { class: "checks" }, checksOf(p.url).map((c) => h("li", { class: `check c-${c.status}` }, `${c.name}: ${c.status}`))),
    (p.comments || []).length ? h("ul", { class: "comments" }, p.comments.map((c) => h("li", {},
      `${c.author || "?"}${c.path ? ` on ${c.path}${c.line ? ":" + c.line : ""}` : ""}: ${c.body || ""}`))) : null))
    : h("p", { class: "empty" }, "no pull request"));
  const events = [...state.events.values()].sort((a, b) => b.id - a.id);
  state.timeline.replaceChildren(...events.map(eventRow));
  state.older.hidden = !state.cursor;
}

function eventRow(ev) {
  const details = h("details", { ontoggle: (e) => payload(ev.id, e.target) },
    h("summary", { "aria-label": `event ${ev.id} payload` },
      h("span", { class: "kind" }, ev.kind), ev.tool_name ? h("span", { class: "tool" }, ev.tool_name) : null,
      ev.duration_ms != null ? h("span", { class: "dur" }, `${ev.duration_ms} ms`) : null,
      ev.ok === false ? h("span", { class: "bad" }, "failed") : ev.ok === true ? h("span", { class: "good" }, "ok") : null,
      h("time", { datetime: ev.occurred_at }, ` ${ago(ev.occurred_at)} ago`)),
    h("pre", {}, state.payloads.has(ev.id) ? JSON.stringify(state.payloads.get(ev.id), null, 2) : "…"));
  if (state.open.has(ev.id)) details.open = true;
  return h("li", { "data-event": ev.id, "data-kind": ev.kind }, details);
}

async function payload(id, details) {
  const mine = state;
  if (details.open) mine.open.add(id); else mine.open.delete(id);
  if (!details.open || mine.payloads.has(id)) return;
  try {
    mine.payloads.set(id, (await get(`/v1/events/${id}`)).payload);
    details.querySelector("pre").textContent = JSON.stringify(mine.payloads.get(id), null, 2);
  } catch (err) { details.querySelector("pre").textContent = `could not load: ${err.message}`; }
}

async function sendMessage(input, force = false) {
  const message = input.value;
  if (!message.trim()) return;
  try {
    await post(`/v1/sessions/${encodeURIComponent(state.id)}/send`, force ? { message, force: true } : { message });
    input.value = "";
    state.note.textContent = "sent";
  } catch (err) {
    if (err instanceof ApiError && err.code === "waiting_input" && !force) {
      if (confirm("The agent is waiting for an answer to a question. Send this anyway?")) return sendMessage(input, true);
      state.note.textContent = "not sent";
      return;
    }
    state.note.textContent = `send failed: ${err.message}`;
  }
}

async function kill() {
  if (!confirm(`Kill session ${state.id}? Its agent's runtime ends.`)) return;
  try {
    upsertSession(await post(`/v1/sessions/${encodeURIComponent(state.id)}/kill`));
    state.note.textContent = "killed";
    render();
  } catch (err) { state.note.textContent = `kill failed: ${err.message}`; }
}
