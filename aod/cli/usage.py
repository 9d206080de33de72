"""`aod usage`: tokens and cost from the transcripts, a table like ccusage's daily report.

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from aod.cli.output import EXIT_OK

GROUPS = ("day", "month", "model", "project", "session", "block")
_HEADERS = {"day": "date", "month": "month", "model": "model", "project": "project", "session": "session",
            "block": "block start (UTC)"}


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("usage", parents=list(parents),
                                help="tokens and cost from Claude Code's transcripts, by day, month, model, ...")
    cmd.add_argument("--by", choices=GROUPS, default="day",
                     help="group by day (default; the daemon's local calendar), month, model, project, session "
                          "or 5-hour block")
    cmd.add_argument("--since", metavar="WHEN", help="from this date (YYYY-MM-DD or YYYYMMDD) or RFC 3339 instant")
    cmd.add_argument("--until", metavar="WHEN", help="up to this date (included) or RFC 3339 instant (excluded)")
    cmd.add_argument("--json", action="store_true", help="print the API JSON")


def run(args: argparse.Namespace) -> int:
    from aod.cli.output import dump_json, emit, get_or_exit, table_width

    body = get_or_exit(args, "/v1/usage", {"group_by": args.by, "since": args.since, "until": args.until})
    if isinstance(body, int):
        return body
    if args.json:
        emit(dump_json(body))
        return EXIT_OK
    emit(usage_table(body, width=table_width()))
    unpriced = body.get("unpriced_models") or []
    if unpriced:
        # stderr: a warning about the figures, not a row of them.
        count = body.get("total", {}).get("unpriced_messages", 0)
        print(f"aod: {count} messages of models with no price ({', '.join(unpriced)}) are not in the cost; "
              'price them under [usage.prices."MODEL"] in the config', file=sys.stderr)
    return EXIT_OK


def _tokens(n: Any) -> str:
    return f"{int(n or 0):,}"


def _cost(item: Mapping[str, Any]) -> str:
    text = f"${float(item.get('cost_usd') or 0):,.2f}"
    return text + "*" if item.get("unpriced_messages") else text


def _total_tokens(item: Mapping[str, Any]) -> int:
    return sum(int(item.get(k) or 0) for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                                "cache_read_input_tokens"))


def usage_table(body: Mapping[str, Any], width: int | None = None) -> str:
    """One row per key and a total row; `*` marks a cost that leaves unpriced messages out."""
    from aod.cli.render import Col, table

    group = str(body.get("group_by") or "day")
    items: list[Mapping[str, Any]] = list(body.get("items") or [])
    if not items:
        return "no usage recorded" + (" in that window" if body.get("since") or body.get("until") else "")
    total = {**(body.get("total") or {}), "key": "Total", "models": []}
    columns = [
        Col(_HEADERS.get(group, group), lambda r: r.get("key") or "(none)", shrink=False),
        Col("models", lambda r: ", ".join(r.get("models") or [])),
        Col("input", lambda r: _tokens(r.get("input_tokens")), "right", False),
        Col("output", lambda r: _tokens(r.get("output_tokens")), "right", False),
        Col("cache create", lambda r: _tokens(r.get("cache_creation_input_tokens")), "right", False),
        Col("cache read", lambda r: _tokens(r.get("cache_read_input_tokens")), "right", False),
        Col("total tokens", lambda r: _tokens(_total_tokens(r)), "right", False),
        Col("cost (USD)", _cost, "right", False),
    ]
    if any(item.get("sidechain_messages") for item in items):
        # What subagents spent, already in the cost: said apart, as ccusage cannot.
        columns.append(Col("subagents", lambda r: f"${float(r.get('sidechain_cost_usd') or 0):,.2f}", "right", False))
    return table([*items, total], columns, width)
