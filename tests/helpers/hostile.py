"""Hostile input for a real daemon: the known bad cases, and seeded random mutations of real payloads.

Every case is a whole HTTP request. `Case.good_uids` are items that must be stored (a fresh uid
and a payload made unique, so neither dedup rule can take them); ingest cases that reach the
handler account for their dead letters exactly (see `dead_letters_for`).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

# Placeholders replaced in the JSON text after json.dumps, for what json.dumps cannot write.
_RAW = {
    "@@DEEP254@@": "[" * 254 + "]" * 254,
    "@@DEEP300@@": "[" * 300 + "]" * 300,
    "@@DEEP1000@@": '{"a":' * 1000 + "1" + "}" * 1000,
    "@@U64@@": str(2**64 - 1),
    "@@OVER_U64@@": str(2**64),
    "@@I63@@": str(2**63),
    "@@NEG_OVER_I64@@": str(-(2**63) - 1),
    "@@HUGE_FLOAT@@": "1e300",
    "@@INF@@": "1e400",
    "@@LONG_DIGITS@@": "9" * 5000,
}
HOSTILE_VALUES: list[Any] = [
    *_RAW, None, True, False, 0, -1, 1.5, -0.0, "", " ", "\u0000", "\ud800", "\udfff", "é\u202e", "🙂" * 50,
    "x" * 70_000, [], {}, [[[]]], {"a": {"b": {"c": None}}}, "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00",
    "0999-06-01T00:00:00Z", "2554-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "not a time", 2**31, -(2**31),
]
ENVELOPE_FIELDS = ("uid", "agent", "occurred_at", "session", "runtime", "payload")
RUNTIME_VALUES: list[Any] = [{"pid": "@@I63@@"}, {"pid": -5}, {"pid": 1.5}, {"tmux_pane": "%" * 300}, {"tmux_pane": 7}, []]
OCCURRED_AT_VALUES: list[Any] = [
    "@@U64@@", "@@OVER_U64@@", "@@I63@@", "@@NEG_OVER_I64@@", "@@HUGE_FLOAT@@", "@@LONG_DIGITS@@", -1, 0, 1.0e11,
    253402300800, 10**20, "0999-06-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00",
    "2554-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "", True,
]
QUERY_VALUES = [
    "", "0", "-1", "1", "500", "501", "²", "٣", "9" * 5000, "1e3", "%00", "%ff%fe", "null", "[]", "é",
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "0999-01-01T00:00:00Z", "2024-01-01T00:00:00+99:00",
]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CURSORS = [
    _cursor(v) for v in ([2**63], [2**64], [-(2**63) - 1], [{"a": 1}], [[1]], ["x", "y"], [1, 2], [True], [None, None],
                          [1.5], [["a"], ["b"]], [{"x": 1}, 2], "str", {"a": 1}, [], [1, 2, 3])
] + ["!!!", "é", "A", "%ff", "YQ", "W10"]


@dataclass
class Case:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)
    ingest: bool = False  # POST /v1/events or /v1/hooks/{agent}, well formed as HTTP
    good_uids: list[str] = field(default_factory=list)


def dead_letters_for(case: Case, status: int, body: Any) -> int:
    """How many dead letters an ingest answer stands for: one per rejected item, one for a refused body."""
    if not case.ingest:
        return 0
    if status == 202:
        return len(body["rejected"])
    return 1 if status in (400, 413, 415) else 0


def _parses(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def json_text(value: Any) -> bytes:
    text = json.dumps(value)
    for token, raw in _RAW.items():
        text = text.replace(json.dumps(token), raw)
    return text.encode()


class Generator:
    def __init__(self, fixtures: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.payloads = [json.loads(p.read_text()) for p in sorted(fixtures.glob("*.json"))]
        self.serial = 0

    def _unique(self) -> str:
        self.serial += 1
        return f"s{self.seed}-{self.serial:06d}"  # unique across generators too: else content dedup takes a twin

    def good_item(self) -> tuple[dict[str, Any], str]:
        uid = f"good-{self._unique()}"
        payload = dict(self.rng.choice(self.payloads), aod_hostile_serial=uid)
        return {"uid": uid, "agent": "claude-code", "payload": payload}, uid

    def _mutate(self, node: Any, depth: int = 0) -> Any:
        """A copy of `node` with one value somewhere replaced, added or removed."""
        rng = self.rng
        if isinstance(node, dict) and node and depth < 4 and rng.random() < 0.7:
            key = rng.choice(list(node))
            copy = dict(node)
            roll = rng.random()
            if roll < 0.15:
                del copy[key]
            elif roll < 0.3:
                copy[rng.choice(["duration_ms", "hook_event_name", "session_id", "cwd", "tool_use_id", "x"])] = rng.choice(HOSTILE_VALUES)
            else:
                copy[key] = self._mutate(node[key], depth + 1)
            return copy
        if isinstance(node, list) and node and rng.random() < 0.5:
            copy = list(node)
            i = rng.randrange(len(copy))
            copy[i] = self._mutate(copy[i], depth + 1)
            return copy
        return rng.choice(HOSTILE_VALUES)

    def bad_item(self) -> dict[str, Any]:
        item, _ = self.good_item()
        item["uid"] = f"bad-{self._unique()}"
        roll = self.rng.random()
        if roll < 0.5:
            item["payload"] = self._mutate(item["payload"])
        elif roll < 0.65:
            item["occurred_at"] = self.rng.choice(OCCURRED_AT_VALUES)
        elif roll < 0.75:
            item["runtime"] = self.rng.choice(RUNTIME_VALUES)
        else:
            item[self.rng.choice(ENVELOPE_FIELDS)] = self.rng.choice(HOSTILE_VALUES)
        return item

    # --- the cases --------------------------------------------------------------------------

    def cases(self, count: int) -> Iterator[Case]:
        yield from known_cases(self)
        makers = [
            (self.single_envelope, 20), (self.batch, 15), (self.raw_hook, 15), (self.query, 20),
            (self.pr_observation, 5), (self.other_post, 5), (self.auth_header, 5), (self.stream, 3),
        ]
        choices, weights = zip(*makers, strict=True)
        for _ in range(count):
            yield self.rng.choices(choices, weights)[0]()

    def single_envelope(self) -> Case:
        if self.rng.random() < 0.3:
            item, uid = self.good_item()
            return Case("POST", "/v1/events", json_text(item), ingest=True, good_uids=[uid])
        return Case("POST", "/v1/events", json_text(self.bad_item()), ingest=True)

    def batch(self) -> Case:
        items, good = [], []
        for _ in range(self.rng.randint(1, 12)):
            if self.rng.random() < 0.5:
                item, uid = self.good_item()
                good.append(uid)
                items.append(item)
            else:
                items.append(self.bad_item())
        body = json_text({"events": items})
        # A bad item can make the whole body unreadable JSON (a lone surrogate, 1e400): then nothing is stored.
        return Case("POST", "/v1/events", body, ingest=True, good_uids=good if _parses(body) else [])

    def raw_hook(self) -> Case:
        agent = self.rng.choice(["claude-code", "codex", "bad name", "é", "a" * 200, "%2e%2e", "x:y"])
        if self.rng.random() < 0.3 and agent in ("claude-code", "codex", "x:y"):
            item, _ = self.good_item()
            return Case("POST", f"/v1/hooks/{quote(agent)}", json_text(item["payload"]), ingest=True)
        return Case("POST", f"/v1/hooks/{quote(agent)}", json_text(self._mutate(self.rng.choice(self.payloads))), ingest=True)

    def query(self) -> Case:
        rng = self.rng
        path = rng.choice(["/v1/sessions", "/v1/events", "/v1/sessions/x/events", "/v1/projects", "/v1/status"])
        params = []
        for name in rng.sample(["limit", "cursor", "since", "until", "status", "project", "agent", "kind", "tool",
                                "session", "order", "payload", "active"], rng.randint(1, 4)):
            value = rng.choice(CURSORS) if name == "cursor" else rng.choice(QUERY_VALUES)
            params.append(f"{name}={quote(value, safe='%')}")
        if rng.random() < 0.2:
            path = rng.choice([f"/v1/events/{n}" for n in ("9223372036854775808", "9" * 30, "0", "1", "9" * 5000)]
                              + [f"/v1/sessions/{s}" for s in ("%00", "%C3%A9", "x" * 2000, "..", "a%2Fb")])
        return Case("GET", path + "?" + "&".join(params))

    def pr_observation(self) -> Case:
        base = {"url": "https://github.com/o/r/pull/1", "number": 1, "state": "open", "head_sha": "abc",
                "checks": [{"name": "unit", "status": "failed"}], "comments": [{"comment_id": 1, "line": 3}]}
        return Case("POST", "/v1/sessions/nope-1/pr", json_text(self._mutate(base)))

    def other_post(self) -> Case:
        rng = self.rng
        path = rng.choice(["/v1/escalations/9223372036854775808/ack", "/v1/escalations/1/ack", "/v1/escalations/x/ack",
                           "/v1/sessions/nope-1/send", "/v1/sessions/nope-1/kill", "/v1/sessions", "/v1/db/prune"])
        body = rng.choice([b"", b"{", b"[]", b"null", json_text({"message": rng.choice(HOSTILE_VALUES)}),
                           json_text({"project": rng.choice(HOSTILE_VALUES), "command": rng.choice(HOSTILE_VALUES)})])
        return Case("POST", path, body)

    def auth_header(self) -> Case:
        value = self.rng.choice([b"Bearer \xff\xfe", b"bearer \xc3\xa9", "Basic Zm9v", b"\x80", "Bearer", "BEARER  ",
                                 b"Bearer " + bytes(self.rng.randrange(128, 256) for _ in range(8))])
        name = self.rng.choice(["Authorization", "Cookie"])
        if name == "Cookie":
            value = b"aod_session=\xff\xfe; x=\x80" if self.rng.random() < 0.5 else "aod_session=; =;;"
        return Case("GET", "/v1/sessions", headers={name: value})

    def stream(self) -> Case:
        after = self.rng.choice(["x", "9" * 5000, "e:1:2", "é:1", str(2**63), "-1", "1.5", "%ff"])
        return Case("GET", f"/v1/stream?after={quote(after, safe='%')}")


def known_cases(gen: Generator) -> Iterator[Case]:
    """The cases a hostile run found answering 500 (issue 11), each at least once."""
    item, _ = gen.good_item()
    for raw in ("@@DEEP254@@", "@@DEEP300@@", "@@DEEP1000@@"):
        yield Case("POST", "/v1/events", json_text(dict(item, uid=f"deep-{raw}", payload=dict(item["payload"], x=raw))), ingest=True)
        yield Case("POST", "/v1/hooks/claude-code", json_text(dict(item["payload"], x=raw)), ingest=True)
    for big in ("@@I63@@", "@@U64@@", "@@OVER_U64@@", "@@HUGE_FLOAT@@"):
        yield Case("POST", "/v1/events", json_text(dict(item, uid=f"dur-{big}", payload=dict(item["payload"], duration_ms=big))), ingest=True)
    for when in OCCURRED_AT_VALUES:
        yield Case("POST", "/v1/events", json_text(dict(item, uid=f"t-{gen._unique()}", occurred_at=when)), ingest=True)
    good, uid = gen.good_item()
    yield Case("POST", "/v1/events", json_text({"events": [good, dict(item, uid="deep-in-batch", payload={"x": "@@DEEP300@@"})]}),
               ingest=True, good_uids=[uid])
    for cursor in CURSORS:
        yield Case("GET", f"/v1/events?cursor={cursor}")
        yield Case("GET", f"/v1/sessions?cursor={cursor}")
    yield Case("GET", "/v1/events/9223372036854775808")
    for bound in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"):
        yield Case("GET", f"/v1/events?since={bound}&until={bound}")
    for value in (b"Bearer \xff", b"\xc3"):
        yield Case("GET", "/v1/sessions", headers={"Authorization": value})
    yield Case("GET", "/v1/sessions", headers={"Cookie": b"aod_session=\xff"})


# --- raw HTTP -------------------------------------------------------------------------------


def send(sock_factory: Any, case: Case, extra_headers: dict[str, str]) -> tuple[int, Any]:
    """One request on a fresh connection; (status, parsed JSON body or raw bytes). Status 0: no answer."""
    head = [f"{case.method} {case.path} HTTP/1.1".encode(errors="surrogateescape"), b"Host: 127.0.0.1", b"Connection: close"]
    headers: dict[str, str | bytes] = {**extra_headers, **case.headers}
    if case.body is not None:
        headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(case.body))
    for name, value in headers.items():
        head.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    data = b"\r\n".join(head) + b"\r\n\r\n" + (case.body or b"")
    return exchange(sock_factory, data)


def exchange(sock_factory: Any, data: bytes, timeout: float = 10.0) -> tuple[int, Any]:
    with sock_factory() as sock:
        sock.settimeout(timeout)
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1."):
        return 0, raw
    status = int(raw.split(b" ", 2)[1])
    _, _, body = raw.partition(b"\r\n\r\n")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


GARBAGE = [
    b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"G\xffT / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n",
    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: \xff\xfe\r\nConnection: close\r\n\r\n",
]
