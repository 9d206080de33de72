// The one EventSource. The browser resumes a dropped stream by itself with Last-Event-ID; when
// it gives up (an error status while the daemon starts, say) we open a new one from our last id.
import { enqueue, clearAll } from "./store.js";
import { hhmm } from "./dom.js";
import { get } from "./api.js";

const ENTITIES = ["session", "pr", "check", "event", "escalation", "usage"];
const OFFLINE_AFTER_MS = 5000;
let source = null;
// The first connection names a cursor no database has: the daemon subscribes us, then answers
// `reset` with its head, and the app reads its snapshot only then. Whatever changes after that
// head arrives on the stream, so nothing falls between the snapshot and the live changes.
let lastId = "boot:9223372036854775807";
let droppedAt = null;
let offlineTimer = 0;
let indicator = null;

function show(state, text) {
  if (!indicator) return;
  indicator.dataset.state = state;
  indicator.textContent = text;
}

function dropped() {
  if (droppedAt) return;
  droppedAt = new Date();
  show("reconnecting", "reconnecting…");
  offlineTimer = setTimeout(() => show("offline", `offline since ${hhmm(droppedAt)}`), OFFLINE_AFTER_MS);
}

export function connect(el) {
  indicator = el;
  document.addEventListener("aod:unauthorized", () => {
    clearTimeout(offlineTimer);
    show("unauthorized", "logged out: run `aod dashboard` to log in again");
  });
  open();
}

function open() {
  source = new EventSource("/v1/stream?after=" + encodeURIComponent(lastId));
  source.onopen = () => {
    droppedAt = null;
    clearTimeout(offlineTimer);
    show("live", "live");
  };
  source.onerror = () => {
    dropped();
    if (source.readyState === EventSource.CLOSED) {
      // EventSource does not say why it gave up; a status read does (a 401 raises aod:unauthorized).
      source = null;
      get("/v1/status").catch(() => {});
      setTimeout(open, 2000);
    }
  };
  for (const entity of ENTITIES) {
    source.addEventListener(entity, (msg) => {
      lastId = msg.lastEventId;
      enqueue(JSON.parse(msg.data), lastId.split(":")[0]);
    });
  }
  source.addEventListener("reset", (msg) => {
    lastId = msg.lastEventId;
    clearAll(JSON.parse(msg.data).head);
  });
}
