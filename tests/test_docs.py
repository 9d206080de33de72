"""The docs in docs/ against the code: nothing that exists may be missing from them.

Like Datasette's and sqlite-utils' documentation tests: the routes come from the aiohttp app
the daemon builds, the commands and options from the argparse parser `aod` uses, the config
keys from the config dataclasses; each must be in its doc. The API reference goes further: it
is rendered from the OpenAPI document (aod/api/openapi.py), which is checked against the
router, the error codes the route modules raise, and what a real daemon answers.
"""

from __future__ import annotations

import argparse
import ast
import http.client
import json
import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from aod import config as config_module
from aod import daemon
from aod.api import openapi_markdown
from aod.api.app import build_app
from aod.api.errors import _CODES
from aod.api.openapi import document
from aod.cli.main import build_parser
from aod.config import REACTION_KEYS, ReactionConfig, parse_config
from aod.config_reload import RESTART_ONLY
from aod.storage.database import open_storage
from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# Answered by the TCP guard (aod/api/security.py) before routing: in the API, not in the router.
GUARD_ROUTES = {("GET", "/login")}
METHODS = ("get", "post", "put", "patch", "delete")


def _doc(name: str) -> str:
    return (DOCS / name).read_text()


# --- the app's routes ---------------------------------------------------------------------------


@pytest.fixture
async def app(data_dir: Path) -> AsyncIterator[web.Application]:
    """The application exactly as `aod serve` assembles it, on a real (empty) database."""
    config = parse_config({}, data_dir=data_dir, socket=data_dir / "aod.sock")
    storage = await open_storage(data_dir, config.storage)
    yield build_app(await daemon._context(config, storage.db))  # the daemon's own context, not a copy
    await storage.close()


def _routes(app: web.Application) -> dict[tuple[str, str], Any]:
    """(METHOD, path) -> handler; HEAD is aiohttp's automatic twin of each GET."""
    found = {}
    for route in app.router.routes():
        if route.method != "HEAD":
            found[(route.method, route.resource.canonical)] = route.handler
    return found


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document()["paths"].items()
            for method, op in item.items() if method in METHODS}


def _codes(op: dict[str, Any]) -> set[tuple[int, str]]:
    """(status, error code) pairs an operation documents."""
    pairs = set()
    for status, response in op["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        pairs |= {(int(status), c) for c in code.get("enum", [])}
    return pairs


def _raised(source: Path, only: str | None = None) -> set[tuple[int, str]]:
    """Every `Something(4xx/5xx, "code", …)` call in a module (ApiError, RefusedBody, error_response),
    or only the calls of `only`."""
    pairs = set()
    for node in ast.walk(ast.parse(source.read_text())):
        callee = getattr(node, "func", None)
        if only is not None and getattr(callee, "id", getattr(callee, "attr", None)) != only:
            continue
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            status, code = node.args[0], node.args[1]
            if (isinstance(status, ast.Constant) and isinstance(status.value, int) and 400 <= status.value < 600
                    and isinstance(code, ast.Constant) and isinstance(code.value, str)):
                pairs.add((status.value, code.value))
    return pairs


def _module_file(handler: Any) -> Path:
    return REPO / (handler.__module__.replace(".", "/") + ".py")


# --- OpenAPI ------------------------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises on anything the OpenAPI 3.1 schema refuses, and on dangling $refs
    for (method, path), op in _operations().items():
        assert op["summary"] and op["responses"], (method, path)
        for name in re.findall(r"{(\w+)}", path):
            assert any(p["name"] == name and p["in"] == "path" for p in op.get("parameters", [])), (method, path, name)


async def test_openapi_has_every_route_and_nothing_else(app: web.Application) -> None:
    routes = _routes(app)
    operations = _operations()
    assert set(operations) == set(routes) | GUARD_ROUTES, (
        f"missing from aod/api/openapi.py: {sorted(set(routes) - set(operations))}; "
        f"documented but not served: {sorted(set(operations) - set(routes) - GUARD_ROUTES)}")
    for key, handler in routes.items():
        assert operations[key]["operationId"] == handler.__name__, key


async def test_every_error_a_route_module_raises_is_documented(app: web.Application) -> None:
    routes = _routes(app)
    operations = _operations()
    by_module: dict[Path, set[tuple[int, str]]] = {}
    for key, handler in routes.items():
        by_module.setdefault(_module_file(handler), set()).update(_codes(operations[key]))
    for module, documented in by_module.items():
        missing = _raised(module) - documented
        assert not missing, f"{module.relative_to(REPO)} raises {sorted(missing)}; list them in aod/api/openapi.py"
    # Reading a JSON body can fail the same ways for every route that takes one.
    body_errors = _raised(REPO / "aod/api/bodies.py", only="RefusedBody")
    assert len(body_errors) == 3
    for key, op in operations.items():
        if "requestBody" in op:
            assert body_errors <= _codes(op), (key, sorted(body_errors - _codes(op)))
    # The TCP guard's refusals are on every operation (the token only where one is needed).
    for key, op in operations.items():
        assert (403, "forbidden_host") in _codes(op), key
        if op.get("security") != []:
            assert (401, "unauthorized") in _codes(op), key
        if key[0] != "GET":
            assert (403, "forbidden_origin") in _codes(op), key
    # And nothing documented that no code can answer.
    answerable = set().union(*(_raised(p) for p in (REPO / "aod/api").glob("*.py")))
    answerable |= set(_CODES.items()) | {(507, "storage_full"), (507, "storage_readonly"),
                                         (503, "storage_full"), (503, "storage_readonly")}
    for key, op in operations.items():
        assert _codes(op) <= answerable, (key, sorted(_codes(op) - answerable))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema behind a `$ref`; an `allOf` of objects as one object."""
    if "$ref" in schema:
        return _resolve(document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "allOf" in schema:
        parts = [_resolve(part) for part in schema["allOf"]]
        return {"properties": {k: v for p in parts for k, v in p["properties"].items()},
                "required": [k for p in parts for k in p["required"]]}
    return schema


def _same_keys(schema: dict[str, Any], value: Any, where: str) -> int:
    """Asserts every object in `value` has its schema's required properties and no others; counts the
    objects checked."""
    schema = _resolve(schema)
    checked = 0
    if isinstance(value, dict) and "properties" in schema:
        documented, required = set(schema["properties"]), set(schema["required"])
        assert required <= set(value) <= documented, (
            f"{where}: undocumented {sorted(set(value) - documented)}, "
            f"documented as always there but absent {sorted(required - set(value))}")
        checked += 1
        for key, item in value.items():
            checked += _same_keys(schema["properties"][key], item, f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            checked += _same_keys(schema["items"], item, f"{where}[]")
    return checked


def _ok_schema(method: str, path: str, status: int = 200) -> dict[str, Any]:
    return document()["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


@pytest.fixture
def paging_daemon(short_dir: Path, aod_env: dict[str, str]) -> Iterator[Daemon]:
    """A daemon that pages the human (through a command that accepts everything) on needs-input."""
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    d = Daemon(data, aod_env, '[notifiers.pager]\ntype = "command"\ncommand = ["true"]\n'
                              '[routing]\nurgent = ["pager"]\n').start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.kill()


def test_a_real_daemon_serves_the_document_and_answers_with_the_documented_keys(paging_daemon: Daemon) -> None:
    d = paging_daemon
    served = d.get("/v1/openapi.json")
    assert served.status == 200 and served.headers["content-type"].startswith("application/json")
    assert served.body == json.loads(json.dumps(document()))

    start = hook_payload("SessionStart")
    accepted = d.post("/v1/events", {"agent": "claude-code", "payload": start})
    assert accepted.status == 202
    assert _same_keys(_ok_schema("post", "/v1/events", 202), accepted.body, "POST /v1/events") == 1
    sid = wait_for(lambda: (d.get("/v1/sessions").body["items"] or [{}])[0].get("id"), message="a session")
    observation = {"url": "https://github.com/o/r/pull/7", "number": 7, "state": "open", "draft": False,
                   "review_decision": None, "mergeability": "mergeable", "head_sha": "abc", "title": "t",
                   "checks": [{"name": "unit", "status": "failed", "commit_sha": "abc", "url": "https://ci/u"}],
                   "comments": [{"comment_id": "c1", "author": "a", "path": "x.py", "line": 3, "body": "b",
                                 "resolved": False}]}
    pr = d.post(f"/v1/sessions/{sid}/pr", observation)
    assert pr.status == 200, pr.body
    assert _same_keys(_ok_schema("post", "/v1/sessions/{id}/pr"), pr.body, "POST pr") == 5
    # A question for the human: needs-input pages at once, through the routed notifier.
    question = hook_payload("PermissionRequest")
    assert d.post("/v1/events", {"agent": "claude-code", "payload": question}).status == 202

    def paged() -> dict[str, Any] | None:
        detail = d.get(f"/v1/sessions/{sid}").body
        escalations = detail["escalations"]
        return detail if escalations and escalations[0]["deliveries"] and detail["trackers"] else None

    detail = wait_for(paged, message="an escalation with its delivery")
    # The session, its PR with a check and a comment, a tracker, an escalation, a delivery, events.
    assert _same_keys(_ok_schema("get", "/v1/sessions/{id}"), detail, "GET /v1/sessions/{id}") >= 8
    acked = d.post(f"/v1/escalations/{detail['escalations'][0]['id']}/ack", {})
    assert _same_keys(_ok_schema("post", "/v1/escalations/{id}/ack"), acked.body, "ack") == 2

    event_id = d.get("/v1/events").body["items"][0]["id"]
    for method, path, url in (
        ("get", "/v1/status", "/v1/status"),
        ("get", "/v1/sessions", "/v1/sessions"),
        ("get", "/v1/events", "/v1/events?payload=1"),
        ("get", "/v1/events", "/v1/events"),
        ("get", "/v1/sessions/{id}/events", f"/v1/sessions/{sid}/events"),
        ("get", "/v1/events/{id}", f"/v1/events/{event_id}"),
        ("get", "/v1/projects", "/v1/projects"),
        ("get", "/healthz", "/healthz"),
        ("get", "/readyz", "/readyz"),
    ):
        reply = d.get(url)
        assert reply.status == 200, (url, reply.body)
        assert _same_keys(_ok_schema(method, path), reply.body, url) >= 1, url
    pruned = d.post("/v1/admin/prune?dry_run=1", {})
    assert _same_keys(_ok_schema("post", "/v1/admin/prune"), pruned.body, "prune") == 1
    # The document is part of the API over TCP too: behind the token, like the rest.
    host, port = d.status()["tcp"].rsplit(":", 1)
    token = (d.data_dir / "token").read_text().strip()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/v1/openapi.json")
        refused = conn.getresponse()
        assert refused.status == 401 and json.loads(refused.read())["error"]["code"] == "unauthorized"
        conn.request("GET", "/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})
        reply = conn.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["paths"].keys() == document()["paths"].keys()
        conn.request("GET", f"/login?token={token}")  # the guard's route the router has not
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 302 and "aod_session=" in reply.headers["Set-Cookie"]
    finally:
        conn.close()
    assert d.get(f"/login?token={token}").status == 404  # not on the Unix socket


# --- docs/api.md --------------------------------------------------------------------------------


async def test_api_md_has_every_route_and_its_reference_is_rendered_from_openapi(app: web.Application) -> None:
    text = _doc("api.md")
    for method, path in sorted(set(_routes(app)) | GUARD_ROUTES):
        assert f"\n### {method} {path}\n" in text, f"docs/api.md has no '### {method} {path}'"
    assert text == openapi_markdown.with_reference(text), (
        "docs/api.md's reference is stale: run `python -m aod.api.openapi_markdown --write`")


# --- docs/cli.md --------------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, name: str = "aod") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _commands(subparser, f"{name} {sub}")


def _sections(text: str, level: str) -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading of that level or above."""
    parts = re.split(rf"^({level} .+)$", text, flags=re.M)
    return {parts[i][len(level) + 1:].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _mentioned(name: str, text: str) -> bool:
    return re.search(rf"`{re.escape(name)}(?=[`\s=\[])", text) is not None


def test_cli_md_has_every_command_and_option() -> None:
    text = _doc("cli.md")
    parser = build_parser()
    global_options = {o for a in parser._actions for o in a.option_strings} - {"-h", "--help"}
    top = _sections(text, "##")
    for option in sorted(global_options):
        assert _mentioned(option, top["Global options"]), f"docs/cli.md: global option {option}"
    commands = _sections(text, "###")
    for name, sub in _commands(parser):
        has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        if name == "aod" or has_subcommands:
            continue
        assert name in commands, f"docs/cli.md has no '### {name}'"
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.option_strings:
                for option in action.option_strings:
                    if option not in global_options:
                        assert _mentioned(option, commands[name]), f"docs/cli.md: {name} {option}"
            else:
                assert action.metavar and action.metavar in commands[name], f"docs/cli.md: {name} {action.metavar}"
    assert set(commands) <= {n for n, _ in _commands(parser)}, "docs/cli.md documents a command aod does not have"


def test_cli_md_has_every_exit_code() -> None:
    table = _sections(_doc("cli.md"), "##")["Exit codes"]
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    sources = [*(REPO / "aod/cli").glob("*.py"), REPO / "aod/daemon.py"]
    codes = {int(n) for p in sources for n in re.findall(r"^EXIT_\w+ = (\d+)", p.read_text(), flags=re.M)}
    assert codes, "no EXIT_ constants found: has the CLI changed how it names exit codes?"
    assert codes <= documented, f"docs/cli.md lacks exit codes {sorted(codes - documented)}"


# --- docs/config.md -----------------------------------------------------------------------------


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a backticked key: key -> the other cells."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) > 1:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def _toml(cell: str, key: str) -> Any:
    match = re.fullmatch(r"`(.+)`", cell)
    assert match, f"docs/config.md: {key}: the default {cell!r} is not a `TOML value`"
    return tomllib.loads(f"v = {match[1]}")["v"]


def _check(obj: Any, name: str) -> Any:
    return next(f.metadata["check"] for f in fields(obj) if f.name == name)


def test_config_md_has_every_key_with_its_default_and_when_it_applies(tmp_path: Path) -> None:
    rows = _rows(_doc("config.md"))
    for section, cls in config_module._SECTIONS.items():
        defaults = cls()
        for f in fields(cls):
            key = f"{section}.{f.name}"
            assert key in rows, f"docs/config.md has no row for {key}"
            _type, default, applies = rows[key][:3]
            assert _check(defaults, f.name)(_toml(default, key), key) == getattr(defaults, f.name), key
            restart = section in RESTART_ONLY or key in RESTART_ONLY
            assert applies == ("restart" if restart else "live"), f"docs/config.md: {key} applies {applies!r}"
    for key in ("data_dir", "socket"):
        assert rows[key][2] == "restart", key
    # Routing: nowhere by default, but urgent pages reach the desktop when a notifier program is on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "notify-send").chmod(0o755)
    bare = parse_config({}, data_dir="/d", socket="/s", env={"PATH": ""}, platform="linux").routing
    desktop = parse_config({}, data_dir="/d", socket="/s", env={"PATH": str(bin_dir)}, platform="linux").routing
    for priority in config_module.PRIORITIES:
        row = rows[f"routing.{priority}"]
        assert tuple(_toml(row[1], priority)) == bare[priority], priority
        if desktop[priority] != bare[priority]:
            assert f"`{json.dumps(list(desktop[priority]))}`" in row[3], f"docs/config.md: routing.{priority}"
    notifier = config_module.NotifierConfig()
    for f in fields(notifier):
        if "check" not in f.metadata:
            continue
        key = f"notifiers.<name>.{f.name}"
        assert key in rows, f"docs/config.md has no row for {key}"
        try:
            expected = _check(notifier, f.name)(getattr(notifier, f.name), key)
        except config_module.ConfigError:
            assert "required" in rows[key][1], f"{key} has no valid default: the doc must say when it is required"
            continue
        assert _check(notifier, f.name)(_toml(rows[key][1], key), key) == expected, key
    for f in fields(ReactionConfig):
        assert f"reactions.<key>.{f.name}" in rows, f"docs/config.md has no row for reactions.<key>.{f.name}"


def test_config_md_has_every_reactions_defaults() -> None:
    table = _sections(_doc("config.md"), "###")["Reaction defaults"]
    header = next(line for line in table.splitlines() if line.startswith("| reaction"))
    columns = [c.strip() for c in header.strip().strip("|").split("|")][1:]
    assert set(columns) == {f.name for f in fields(ReactionConfig)}
    rows = _rows(table)
    defaults = parse_config({}, data_dir="/d", socket="/s").reactions
    assert set(rows) == set(REACTION_KEYS)
    for name, cells in rows.items():
        for column, cell in zip(columns, cells, strict=True):
            value = _check(defaults[name], column)(_toml(cell, f"{name}.{column}"), column)
            assert value == getattr(defaults[name], column), f"docs/config.md: reactions.{name}.{column}"


# --- docs/architecture.md and the links ---------------------------------------------------------


def test_architecture_md_places_every_module_and_every_path_in_docs_exists() -> None:
    text = _doc("architecture.md")
    for path in sorted((REPO / "aod").iterdir()):
        if path.name.startswith(("_", ".")) or (path.is_file() and path.suffix != ".py"):
            continue
        shown = f"aod/{path.name}" + ("/" if path.is_dir() else "")
        assert f"`{shown}" in text, f"docs/architecture.md does not say what {shown} is"
    for doc in (*DOCS.glob("*.md"), REPO / "README.md"):
        for ref in re.findall(r"`((?:aod|tests|bench|scripts|docs)/[\w./-]*)`", doc.read_text()):
            assert (REPO / ref.rstrip("/")).exists() or "*" in ref, f"{doc.name} names {ref}, which does not exist"


def test_readme_links_the_docs_and_nothing_outside_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("architecture.md", "api.md", "config.md", "cli.md"):
        assert (DOCS / name).is_file()
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"
    for doc in (*DOCS.glob("*.md"), REPO / "README.md"):
        assert "../shared" not in doc.read_text(), f"{doc.name} points outside the repository"
        for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]*))?\)", doc.read_text()):
            linked = doc.parent / target if target else doc
            assert linked.exists(), f"{doc.name} links {target}, which does not exist"
            if anchor:
                assert anchor in _anchors(linked), f"{doc.name} links {target}#{anchor}: no such heading"


def _anchors(doc: Path) -> set[str]:
    """The ids GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
