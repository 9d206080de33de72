"""`aod team migrate|sessions|stats`: the team store ([forward.postgres]), read from PostgreSQL itself.

No daemon involved: the team view is every machine's rows, which only the team store has. The dsn
is `--dsn`, else the config's `forward.postgres.dsn`. Only argparse at module level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    team = subparsers.add_parser("team", parents=list(parents),
                                 help="the team store: every machine's sessions, CI failures and cost")
    actions = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)
    dsn = argparse.ArgumentParser(add_help=False)
    dsn.add_argument("--dsn", help="postgresql://… (default: forward.postgres.dsn from the config)")
    dsn.add_argument("--json", action="store_true", help="machine-readable output")
    actions.add_parser("migrate", parents=[*parents, dsn],
                       help="create or update the team schema (run it with the owner's dsn)")
    sessions = actions.add_parser("sessions", parents=[*parents, dsn],
                                  help="sessions that need a human, across every machine, newest first")
    sessions.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    sessions.add_argument("--cursor", help="the next_cursor of the page before")
    stats = actions.add_parser("stats", parents=[*parents, dsn],
                               help="CI failures by repository and cost per person per day")
    stats.add_argument("--days", type=int, default=7, help="how many days back (default 7)")


def run(args: argparse.Namespace) -> int:
    import psycopg

    from aod.cli.output import dump_json, emit, table_width
    from aod.forward import team_queries, team_schema

    dsn = args.dsn or _configured_dsn(args)
    if not dsn:
        print("aod: no team store: give --dsn postgresql://… or set forward.postgres.dsn in the config",
              file=sys.stderr)
        return EXIT_SETUP
    try:
        if args.team_command == "migrate":
            applied = team_schema.migrate(dsn)
            emit(dump_json({"applied": applied}) if args.json else
                 (f"applied {', '.join(applied)}" if applied else "the team schema is up to date"))
            return EXIT_OK
        if getattr(args, "limit", 1) < 1 or getattr(args, "days", 1) < 1:
            print("aod: --limit and --days must be 1 or more", file=sys.stderr)
            return EXIT_SETUP
        with team_queries.connect(dsn) as conn:
            if args.team_command == "sessions":
                body = team_queries.sessions_needing_human(conn, args.limit, args.cursor)
                emit(dump_json(body) if args.json else _sessions_text(body, table_width()))
                return EXIT_OK
            body = {"days": args.days, "ci_failures": team_queries.ci_failures_by_repository(conn, args.days),
                    "cost": team_queries.cost_per_person_per_day(conn, args.days)}
            emit(dump_json(body) if args.json else _stats_text(body, table_width()))
            return EXIT_OK
    except team_queries.BadCursor as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except psycopg.Error as exc:
        print(f"aod: the team store failed: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return EXIT_FAILED


def _configured_dsn(args: argparse.Namespace) -> str:
    from aod.cli.context import config_from_args

    return config_from_args(args).forward.postgres.dsn


def _sessions_text(body: Mapping[str, Any], width: int | None) -> str:
    from aod.cli.render import Col, table

    items = list(body.get("items") or [])
    if not items:
        return "no session needs a human"
    text = table(items, [Col("person", "tenant_id"), Col("session", "id", shrink=False), ("status", "status"),
                         ("project", "project"), ("branch", "branch"), ("updated", "updated_at"),
                         ("title", "title")], width)
    if body.get("next_cursor"):
        text += f"\nmore: aod team sessions --cursor {body['next_cursor']}"
    return text


def _stats_text(body: Mapping[str, Any], width: int | None) -> str:
    from aod.cli.render import table

    days = body.get("days")
    parts = [f"CI failures by repository, last {days} days:"]
    failures = list(body.get("ci_failures") or [])
    parts.append(table(failures, [("repository", "repository"), ("failed checks", "failed_checks"), ("PRs", "prs"),
                                  ("people", "people"), ("last failed", "last_failed_at")], width)
                 if failures else "none")
    cost = body.get("cost")
    parts.append("")
    if cost is None:
        parts.append("cost per person per day: not in the team store (no aod.usage table: `aod team migrate` adds it)")
    else:
        parts.append(f"cost per person per day, last {days} days:")
        parts.append(table(list(cost), [("day", "day"), ("person", "person"), ("messages", "messages"),
                                        ("tokens", "tokens"), ("cost USD", "cost_usd")], width)
                     if cost else "none")
    return "\n".join(parts)
