// The attention board: sessions grouped by what needs the human, live.
import { get, post, query } from "./api.js";
import { h, ago, fill } from "./dom.js";
import { store, ATTENTION, ENDED, prsOf, checksOf, openEscalation, upsertSession, addPr } from "./store.js";

export const NAME = "board";
const PAGE = 100;
const SHOW = 30;
const GROUPS = [
  { key: "needs_input", title: "Needs input", statuses: ["needs_input"] },
  { key: "ci_failed", title: "CI failed", statuses: ["ci_failed"] },
  { key: "changes_requested", title: "Changes requested", statuses: ["changes_requested"] },
  { key: "stuck", title: "Stuck", statuses: ["stuck"] },
  { key: "working", title: "Working", statuses: ["working"] },
  { key: "waiting", title: "Idle / PR waiting",
    statuses: ["idle", "pr_open", "review_pending", "approved", "mergeable", "draft"] },
  { key: "ended", title: "Ended today", statuses: ENDED },
];
const PR_STATUSES = new Set(["ci_failed", "changes_requested", "pr_open", "review_pending", "approved", "mergeable", "draft"]);
const filters = { project: "", agent: "", text: "" };
let state = null;

function midnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}

function groupOf(session) {
  for (const g of GROUPS) {
    if (!g.statuses.includes(session.status)) continue;
    if (g.key === "ended" && !(session.ended_at && session.ended_at >= midnight())) return null;
    return g;
  }
  return null;
}

function matches(s) {
  if (filters.project && s.project_id !== filters.project) return false;
  if (filters.agent && s.agent !== filters.agent) return false;
  if (filters.text) {
    const hay = [s.id, s.project_id, s.branch, s.title, s.agent, s.status].join(" ").toLowerCase();
    if (!hay.includes(filters.text.toLowerCase())) return false;
  }
  return true;
}

export function mount(root, _params, navigate) {
  state = { root, navigate, cursors: {}, shown: {}, focus: null, details: new Set(), cardCache: new Map(),
    body: h("div", { class: "groups" }) };
  // "for 3m" and "2m ago" age while nothing changes.
  state.clock = setInterval(render, 30000);
  const projectSel = h("select", { "aria-label": "filter by project", onchange: (e) => { filters.project = e.target.value; load(); } },
    h("option", { value: "" }, "all projects"));
  const agentSel = h("select", { "aria-label": "filter by agent", onchange: (e) => { filters.agent = e.target.value; load(); } },
    h("option", { value: "" }, "all agents"));
  const text = h("input", { type: "search", id: "filter", placeholder: "filter (/)", "aria-label": "filter sessions", value: filters.text,
    oninput: (e) => { filters.text = e.target.value; render(); } });
  state.projectSel = projectSel;
  state.agentSel = agentSel;
  state.text = text;
  root.append(h("section", { class: "board", "aria-label": "attention board" },
    h("div", { class: "filters" }, projectSel, agentSel, text, h("span", { class: "notice note", role: "status" })), state.body));
  document.addEventListener("keydown", keys);
  loadProjects();
  load();
}

export function unmount() {
  clearInterval(state.clock);
  document.removeEventListener("keydown", keys);
  state = null;
}

async function loadProjects() {
  try {
    const projects = (await get("/v1/projects")).items;
    for (const p of projects) state?.projectSel.append(h("option", { value: p.id, selected: p.id === filters.project }, p.name || p.id));
  } catch { /* offline: no project list */ }
}

function fillAgents() {
  const agents = new Set([...store.sessions.values()].map((s) => s.agent));
  const have = new Set([...state.agentSel.options].map((o) => o.value));
  for (const a of [...agents].sort()) {
    if (!have.has(a)) state.agentSel.append(h("option", { value: a, selected: a === filters.agent }, a));
  }
}

async function load() {
  const mine = state;
  await Promise.all(GROUPS.map((g) => loadGroup(g, mine, null)));
  if (state === mine) render();
}

async function loadGroup(group, mine, cursor) {
  try {
    const page = await get("/v1/sessions" + query({ status: group.statuses.join(","), project: filters.project,
      agent: filters.agent, limit: PAGE, cursor }));
    for (const s of page.items) upsertSession(s);
    let next = page.next_cursor;
    // Ended today: the list is newest first, so a page reaching before midnight is the last one.
    const last = page.items[page.items.length - 1];
    if (group.key === "ended" && last && last.updated_at < midnight()) next = null;
    mine.cursors[group.key] = next;
  } catch { /* offline: what we have stays */ }
}

async function more(group) {
  const mine = state;
  mine.shown[group.key] = (mine.shown[group.key] || SHOW) + SHOW * 2;
  if (mine.cursors[group.key]) await loadGroup(group, mine, mine.cursors[group.key]);
  if (state === mine) render();
}

export function update() {
  if (state) render();
}

function render() {
  fillAgents();
  const byGroup = new Map(GROUPS.map((g) => [g.key, []]));
  for (const s of store.sessions.values()) {
    const g = groupOf(s);
    if (g && matches(s)) byGroup.get(g.key).push(s);
  }
  if (!state.sections) {
    state.sections = new Map(GROUPS.map((g) => [g.key, { el: h("section", { "aria-label": g.title, "data-group": g.key }),
      count: h("span", { class: "count", "data-count": g.key }), kids: [] }]));
    state.body.replaceChildren(...[...state.sections.values()].map((x) => x.el));
  }
  const cards = [];
  const hadFocus = document.activeElement?.classList.contains("card");
  for (const g of GROUPS) {
    const list = byGroup.get(g.key);
    const attention = ATTENTION.includes(g.key);
    list.sort((a, b) => (attention ? (a._since < b._since ? -1 : 1) : (a.updated_at < b.updated_at ? 1 : -1)));
    const counted = g.key === "ended" ? list.length
      : (filters.project || filters.agent || filters.text) ? list.length
      : g.statuses.reduce((n, st) => n + (store.counts[st] || 0), 0);
    const shown = list.slice(0, state.shown[g.key] || SHOW).map(card);
    cards.push(...shown);
    const hasMore = list.length > shown.length || Boolean(state.cursors[g.key]);
    const section = state.sections.get(g.key);
    section.el.className = `group g-${g.key}${attention && list.length ? " hot" : ""}`;
    section.count.textContent = String(Math.max(counted, list.length));
    const kids = [...shown, hasMore ? "more" : shown.length ? null : "none"];
    // Touch the DOM only where the group's cards changed: an unchanged group costs no layout.
    if (kids.length === section.kids.length && kids.every((k, n) => k === section.kids[n])) continue;
    section.kids = kids;
    fill(section.el, h("h2", {}, g.title, " ", section.count), shown,
      hasMore ? h("button", { class: "more", "aria-label": `show more ${g.title}`, onclick: () => more(g) }, "more") : null,
      shown.length ? null : h("p", { class: "empty" }, "none"));
  }
  state.cards = cards;
  const focused = cards.find((c) => c.dataset.id === state.focus);
  if (focused && hadFocus && document.activeElement !== focused) focused.focus();
  fetchDetails(byGroup);
}

// A card is rebuilt only when what it shows changed: under a stream of changes most cards are
// reused as they are, so a render costs little more than the grouping.
function card(s) {
  const ev = store.lastEvent.get(s.id);
  const esc = openEscalation(s.id);
  const prs = prsOf(s.id);
  const key = [s.updated_at, s.status, ago(s._since), s.is_alive, s.error, ev?.id, ev && ago(ev.occurred_at), esc?.id,
    ...prs.map((p) => p.updated_at + checksOf(p.url).map((c) => c.status).join())].join("|");
  const cached = state.cardCache.get(s.id);
  if (cached && cached.key === key) return cached.el;
  const el = buildCard(s, ev, esc, prs);
  state.cardCache.set(s.id, { key, el });
  return el;
}

function buildCard(s, ev, esc, prs) {
  const label = `session ${s.id}`;
  return h("article", { class: "card", tabindex: 0, "data-id": s.id, "aria-label": label,
    onfocus: () => { state.focus = s.id; } },
    h("div", { class: "line" },
      h("a", { href: `/sessions/${encodeURIComponent(s.id)}`, class: "title", "aria-label": `open ${s.id}` },
        s.project_id || "(no project)", s.branch ? h("span", { class: "branch" }, " ⎇ ", s.branch) : null),
      h("span", { class: `status s-${s.status}` }, s.status.replace("_", " "), " · ", ago(s._since))),
    h("div", { class: "meta" }, s.agent, " · ", s.id, s.is_alive === false ? " · not alive" : "",
      s.error ? h("span", { class: "error" }, " · ", s.error) : null),
    h("div", { class: "meta last" }, "last event: ",
      ev ? `${ev.kind}${ev.tool_name ? " " + ev.tool_name : ""}${ev.ok === false ? " (failed)" : ""} · ${ago(ev.occurred_at)} ago`
        : s.last_event_at ? `${ago(s.last_event_at)} ago` : "none"),
    prs.map((p) => {
      const checks = checksOf(p.url);
      const failing = checks.filter((c) => ["failure", "failed", "error", "cancelled", "timed_out"].includes(c.status)).length;
      return h("div", { class: "meta pr" }, h("span", {}, `PR #${p.number ?? "?"} ${p.state || ""}`),
        p.review_decision ? ` · ${p.review_decision}` : "", p.ci_state ? ` · CI ${p.ci_state}` : "",
        checks.length ? ` · ${checks.length} checks${failing ? `, ${failing} failing` : ""}` : "");
    }),
    esc ? h("div", { class: `esc p-${esc.priority}` }, h("span", {}, esc.priority, ": ", esc.message),
      h("button", { class: "ack", "aria-label": `acknowledge escalation ${esc.id}`, onclick: (e) => { e.stopPropagation(); ack(esc.id); } }, "Ack"))
      : null);
}

async function fetchDetails(byGroup) {
  // PRs and checks are not in the session list: read the detail of visible sessions that have one.
  const mine = state;
  const wanted = [];
  for (const [key, list] of byGroup) {
    for (const s of list.slice(0, mine.shown[key] || SHOW)) {
      if (PR_STATUSES.has(s.status) && !mine.details.has(s.id)) wanted.push(s.id);
    }
  }
  if (!wanted.length) return;
  for (const id of wanted) mine.details.add(id);
  await Promise.all(wanted.slice(0, 40).map(async (id) => {
    try {
      const d = await get(`/v1/sessions/${encodeURIComponent(id)}`);
      for (const p of d.prs) addPr(p);
      for (const e of d.escalations) store.escalations.set(e.id, e);
    } catch { /* gone or offline */ }
  }));
  if (state === mine) render();
}

export async function ack(id) {
  try {
    const e = await post(`/v1/escalations/${id}/ack`);
    store.escalations.set(e.id, e);
  } catch (err) {
    notice(`could not acknowledge escalation ${id}: ${err.message}`);
  }
  if (state) render();
}

function notice(text) {
  // The board's own line when it is shown; the session page has its note.
  const el = document.querySelector(".board .notice") || document.querySelector(".session .note");
  if (el) el.textContent = text;
}

function keys(e) {
  if (!state || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
  if (e.key === "/" && !typing) { e.preventDefault(); state.text.focus(); return; }
  if (typing) { if (e.key === "Escape") document.activeElement.blur(); return; }
  const cards = state.cards || [];
  if (!cards.length) return;
  let i = cards.findIndex((c) => c.dataset.id === state.focus);
  if (e.key === "j" || e.key === "k") {
    i = e.key === "j" ? Math.min(cards.length - 1, i + 1) : Math.max(0, i - 1);
    cards[i].focus();
    state.focus = cards[i].dataset.id;
  } else if (e.key === "Enter" && i >= 0) {
    state.navigate(`/sessions/${encodeURIComponent(cards[i].dataset.id)}`);
  } else if (e.key === "a" && i >= 0) {
    const esc = openEscalation(cards[i].dataset.id);
    if (esc) ack(esc.id);
  }
}
