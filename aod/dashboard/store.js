// What the page knows, keyed by entity id, and the one place stream changes are applied.
// Changes are queued and applied once per animation frame, then the current view renders once:
// a burst of 1,000 changes a second costs ~60 renders, not 1,000.
import { get, query } from "./api.js";

export const ATTENTION = ["needs_input", "ci_failed", "changes_requested", "stuck"];
export const ENDED = ["merged", "killed", "exited", "lost"];
const FEED_MAX = 5000;

export const store = {
  sessions: new Map(),      // id -> session, plus `_since` (when its status began, as far as we know)
  lastEvent: new Map(),     // session id -> newest event summary seen
  prs: new Map(),           // url -> pr (checks in store.checks)
  checks: new Map(),        // change entity id -> check
  escalations: new Map(),   // id -> escalation
  statusLog: new Map(),     // session id -> [{status, at}] seen while the page is open
  counts: {},               // /v1/status sessions_by_status
  feed: [],                 // every change since load, oldest first (bounded)
  feedTotal: 0,
  epoch: null,
  lastSeq: 0,
  snapshotAt: 0,
};

const listeners = { change: new Set(), reset: new Set() };
export function on(kind, fn) { listeners[kind].add(fn); return () => listeners[kind].delete(fn); }

let queue = [];
let frame = 0;

export function enqueue(change, epoch) {
  queue.push([change, epoch]);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const batch = [];
  for (const [change, epoch] of queue) {
    // The stream sends each change once, but a reconnect may overlap what was applied: apply a
    // seq only once, in order, within one database epoch.
    if (epoch === store.epoch && change.seq <= store.lastSeq) continue;
    store.epoch = epoch;
    store.lastSeq = change.seq;
    apply(change);
    batch.push(change);
  }
  queue = [];
  if (batch.length) for (const fn of listeners.change) fn(batch);
}

export function upsertSession(row, since) {
  const known = store.sessions.get(row.id);
  if (known && known.updated_at > row.updated_at) return known;  // an older copy never wins
  const session = { ...known, ...row };
  if (!known) session._since = since || row.activity_at || row.updated_at;
  else if (known.status !== row.status) session._since = since || row.updated_at;
  store.sessions.set(row.id, session);
  return session;
}

function noteStatus(session) {
  const log = store.statusLog.get(session.id) || [];
  if (!log.length || log[log.length - 1].status !== session.status) {
    log.push({ status: session.status, at: session._since });
    store.statusLog.set(session.id, log);
  }
}

export function noteEvent(ev) {
  const last = store.lastEvent.get(ev.session_id);
  if (!last || last.id < ev.id) store.lastEvent.set(ev.session_id, ev);
}

export function addPr(pr) {
  const known = store.prs.get(pr.url);
  if (!known || known.updated_at <= pr.updated_at) store.prs.set(pr.url, { ...known, ...pr });
  for (const c of pr.checks || []) store.checks.set(`${pr.url}\n${c.name}\n${c.commit_sha || ""}`, { ...c, pr_url: pr.url });
}

function apply(change) {
  const d = change.data || {};
  if (change.entity === "session") noteStatus(upsertSession(countStatus(d, change.op), change.at));
  else if (change.entity === "event") noteEvent(d);
  else if (change.entity === "pr") addPr(d);
  else if (change.entity === "check") store.checks.set(change.id, d);
  else if (change.entity === "escalation") store.escalations.set(d.id, { ...store.escalations.get(d.id), ...d });
  else if (change.entity === "usage" && store.sessions.has(change.id)) store.sessions.get(change.id).usage = d;
  store.feed.push(change);
  store.feedTotal += 1;
  // Trimmed in steps, not per change: a splice per change would copy 5,000 entries each time.
  if (store.feed.length > FEED_MAX * 1.2) store.feed.splice(0, store.feed.length - FEED_MAX);
  if (change.entity === "session") scheduleCounts();
}

// The counts move at once when we know where a session came from (the title must not wait for
// the re-read); the re-read scheduled below settles the rest, such as sessions never loaded here.
function countStatus(row, op) {
  const known = store.sessions.get(row.id);
  const from = known && known.updated_at <= row.updated_at ? known.status : null;
  if (from !== null && from !== row.status) store.counts[from] = Math.max(0, (store.counts[from] || 0) - 1);
  if ((from !== null && from !== row.status) || (!known && op === "insert")) store.counts[row.status] = (store.counts[row.status] || 0) + 1;
  return row;
}

export function prsOf(sessionId) {
  return [...store.prs.values()].filter((p) => p.session_id === sessionId);
}

export function checksOf(prUrl) {
  const out = new Map();  // the newest commit's row per check name
  for (const c of store.checks.values()) {
    if (c.pr_url !== prUrl) continue;
    const prev = out.get(c.name);
    if (!prev || (prev.updated_at || "") <= (c.updated_at || "")) out.set(c.name, c);
  }
  return [...out.values()];
}

export function openEscalation(sessionId) {
  let found = null;
  for (const e of store.escalations.values()) {
    if (e.session_id === sessionId && !e.acked_at && (!found || found.id < e.id)) found = e;
  }
  return found;
}

export function needingHuman() {
  return ATTENTION.reduce((n, status) => n + (store.counts[status] || 0), 0);
}

let countsTimer = 0;
function scheduleCounts() {
  // Counts come from the daemon (sessions not loaded here count too), re-read after session
  // changes at most once a second (a status read counts every table); countStatus moves them at once.
  if (countsTimer) return;
  countsTimer = setTimeout(async () => {
    countsTimer = 0;
    await loadCounts();
    for (const fn of listeners.change) fn([]);
  }, 1000);
}

export async function loadCounts() {
  try {
    store.counts = (await get("/v1/status")).sessions_by_status || {};
  } catch {
    // offline: keep the last counts; the stream's indicator says so
  }
}

// Everything the board's header and cards need beyond the session lists.
export async function loadSnapshot() {
  store.snapshotAt = Date.now();
  const [escalations, events] = await Promise.all([
    get("/v1/escalations" + query({ open: 1, limit: 500 })),
    get("/v1/events" + query({ limit: 500 })),
    loadCounts(),
  ]);
  // A streamed ack may have landed while the snapshot was read: an ack is never taken back.
  for (const e of escalations.items) store.escalations.set(e.id, { ...e, acked_at: store.escalations.get(e.id)?.acked_at || e.acked_at });
  for (const ev of events.items) noteEvent(ev);
}

export function clearAll(head) {
  for (const key of ["sessions", "lastEvent", "prs", "checks", "escalations", "statusLog"]) store[key].clear();
  store.counts = {};
  queue = [];
  if (head) {
    const [epoch, seq] = head.split(":");
    store.epoch = epoch;
    store.lastSeq = Number(seq);
  }
  for (const fn of listeners.reset) fn();
}
