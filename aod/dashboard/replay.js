// A stored session played again with its original timing (GET /v1/sessions/{id}/replay, server-sent
// events spaced by the original gaps / speed): play, pause, speed, seek. Pausing closes the stream;
// playing again opens one from the event after the last shown, so nothing is shown twice.
import { h, fill } from "./dom.js";
import { get, query } from "./api.js";

const SPEEDS = [0.5, 1, 2, 4, 10, 50];
const SHOWN = 200;  // the newest replayed events kept on the page
const STEPS = 1000;  // the seek slider's resolution over the session's span

export function replayPanel(id) {
  const p = { id, source: null, lastId: null, from: null, start: null, end: null, count: 0 };
  p.status = h("span", { class: "replay-status", role: "status" }, "ready");
  p.play = h("button", { type: "button", "aria-label": "play replay", onclick: () => play(p) }, "Play");
  p.pause = h("button", { type: "button", "aria-label": "pause replay", onclick: () => pause(p, "paused"), disabled: true }, "Pause");
  p.speed = h("select", { "aria-label": "replay speed", onchange: () => restart(p) },
    SPEEDS.map((s) => h("option", { value: s, selected: s === 1 }, `${s}×`)));
  p.seek = h("input", { type: "range", min: 0, max: STEPS, value: 0, "aria-label": "seek replay", onchange: () => seek(p) });
  p.at = h("time", { class: "replay-at" });
  p.log = h("ol", { class: "timeline replay-log", "aria-label": "replayed events" });
  p.el = h("section", { class: "replay", "aria-label": "replay" }, h("h2", {}, "Replay"),
    h("div", { class: "replay-controls" }, p.play, p.pause, p.speed, p.seek, p.at, p.status), p.log);
  // The seek slider spans the session's first event (asked once) to its last (the page's session row).
  get(`/v1/sessions/${encodeURIComponent(id)}/events` + query({ order: "asc", limit: 1 }))
    .then((page) => { if (page.items.length) p.start = Date.parse(page.items[0].occurred_at); })
    .catch(() => { p.status.textContent = "seek unavailable: the first event could not be read"; });
  return {
    el: p.el,
    end(at) { if (at) p.end = Date.parse(at); },
    close() { pause(p, "closed"); },
  };
}

function play(p) {
  if (p.source) return;
  const params = { speed: p.speed.value, from: p.lastId !== null ? p.lastId + 1 : p.from };
  const source = new EventSource(`/v1/sessions/${encodeURIComponent(p.id)}/replay` + query(params));
  p.source = source;
  source.addEventListener("event", (m) => { if (p.source === source) show(p, JSON.parse(m.data)); });
  // After the last event: the next Play starts from the beginning (or the seek point) again.
  source.addEventListener("end", () => { if (p.source === source) { pause(p, "ended"); p.lastId = null; } });
  // EventSource reconnects by itself, with Last-Event-ID: the server goes on after the last event.
  source.addEventListener("error", () => { if (p.source === source) p.status.textContent = "reconnecting"; });
  p.play.disabled = true;
  p.pause.disabled = false;
  p.status.textContent = `playing at ${p.speed.value}×`;
}

function pause(p, why) {
  if (p.source) p.source.close();
  p.source = null;
  p.play.disabled = false;
  p.pause.disabled = true;
  p.status.textContent = why;
}

function restart(p) {
  if (!p.source) return;
  pause(p, "paused");
  play(p);
}

function seek(p) {
  if (p.start === null || p.end === null) return;
  const at = new Date(p.start + Math.max(0, p.end - p.start) * Number(p.seek.value) / STEPS).toISOString();
  const playing = p.source !== null;
  pause(p, `from ${at}`);
  p.from = at;
  p.lastId = null;
  p.count = 0;
  fill(p.log);
  p.at.textContent = at;
  if (playing) play(p);
}

function show(p, frame) {
  const ev = frame.data;
  p.lastId = frame.id;
  p.count += 1;
  p.at.textContent = frame.at;
  if (p.start !== null && p.end !== null && p.end > p.start) {
    p.seek.value = String(Math.round((Date.parse(frame.at) - p.start) / (p.end - p.start) * STEPS));
  }
  p.status.textContent = `playing at ${p.speed.value}× · ${p.count} events`;
  p.log.prepend(h("li", { "data-replay-event": frame.id, "data-kind": ev.kind },
    h("span", { class: "kind" }, ev.kind), ev.tool_name ? h("span", { class: "tool" }, ev.tool_name) : null,
    ev.ok === false ? h("span", { class: "bad" }, "failed") : null,
    frame.replay && frame.replay.shortened ? h("span", { class: "note" }, `(${Math.round(frame.replay.gap_ms / 1000)} s gap shortened)`) : null,
    h("time", { datetime: frame.at }, ` ${frame.at}`)));
  while (p.log.children.length > SHOWN) p.log.lastChild.remove();
}
