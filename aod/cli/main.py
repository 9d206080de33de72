"""`aod` entry point: argument parsing and dispatch.

Subcommand modules are imported only when their command runs, so `aod status` or `aod hook`
never pay for apsw, yoyo or aiohttp imports they do not use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

EXIT_USAGE = 2


def _runners() -> dict[str, ModuleType]:
    """The module that runs each command (queries and control answer several). Imported here,
    not at the top: `aod hook`, which an agent runs for every event, needs none of them."""
    import aod.cli.export as export
    import aod.cli.hooks_agents as hooks_agents
    import aod.cli.imports as imports
    import aod.cli.replay as replay
    import aod.cli.search as search
    from aod.cli import ack, control, dashboard, doctor, escalations, queries, service, team, usage

    return {
        **dict.fromkeys(queries.COMMANDS, queries), **dict.fromkeys(control.COMMANDS, control),
        "hooks": hooks_agents, "ack": ack, "escalations": escalations, "service": service, "doctor": doctor,
        "dashboard": dashboard, "usage": usage, "import": imports, "team": team,
        "search": search, "replay": replay, "export": export,
    }


def _global_options() -> argparse.ArgumentParser:
    # SUPPRESS keeps a subparser from overwriting a value given before the subcommand,
    # so `aod --data-dir D serve` and `aod serve --data-dir D` mean the same.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory (env AOD_DATA_DIR)")
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file (env AOD_CONFIG)")
    common.add_argument("--socket", default=argparse.SUPPRESS, help="Unix socket path (env AOD_SOCKET)")
    return common


def build_parser() -> argparse.ArgumentParser:
    import aod.cli.export as export
    import aod.cli.imports as imports
    import aod.cli.replay as replay
    import aod.cli.search as search
    from aod.cli import ack, control, dashboard, doctor, escalations, hooks, queries, service, team, usage

    common = _global_options()
    parser = argparse.ArgumentParser(prog="aod", parents=[common], description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the daemon in the foreground")
    serve.add_argument("--tcp", metavar="ADDRESS", help='listen here instead of server.tcp: HOST:PORT '
                       '(port 0: any free port), or "" for the Unix socket only')
    queries.add_parsers(commands, [common])
    control.add_parsers(commands, [common])
    hooks.add_parser(commands, [common])
    ack.add_parser(commands, [common])
    escalations.add_parser(commands, [common])
    service.add_parser(commands, [common])
    doctor.add_parser(commands, [common])
    dashboard.add_parser(commands, [common])
    usage.add_parser(commands, [common])
    imports.add_parser(commands, [common])
    team.add_parser(commands, [common])
    search.add_parser(commands, [common])
    replay.add_parser(commands, [common])
    export.add_parser(commands, [common])
    commands.add_parser("hook", parents=[common], help="forward a hook payload on stdin to aod (always exits 0)")

    db = commands.add_parser("db", parents=[common], help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser("migrate", parents=[common], help="apply pending schema migrations (the daemon does at start)")
    check = db_commands.add_parser("check", parents=[common], help="verify the database file")
    check.add_argument("--full", action="store_true", help="PRAGMA integrity_check instead of the quicker quick_check")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    prune = db_commands.add_parser("prune", parents=[common], help="delete events and changes older than retention")
    prune.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    prune.add_argument("--json", action="store_true", help="machine-readable output")
    backup = db_commands.add_parser("backup", parents=[common], help="copy the database to PATH (also while the daemon runs)")
    backup.add_argument("path", metavar="PATH", help="the backup file to write (replaced atomically)")
    restore = db_commands.add_parser("restore", parents=[common], help="replace the database with a backup (daemon stopped)")
    restore.add_argument("path", metavar="PATH", help="a file written by aod db backup")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["hook"]:
        # An agent waits for this on every tool call: skip argparse and every other import.
        from aod.hook import main as hook_main

        return hook_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from aod import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "serve":
        return _serve(args)
    runner = _runners().get(args.command)
    if runner is not None:
        code: int = runner.run(args)
        return code
    if args.command == "hook":  # reached only with global options first: `aod --data-dir D hook`
        from aod.hook import main as hook_main

        options = (("--data-dir", "data_dir"), ("--socket", "socket"), ("--config", "config"))
        return hook_main([f"{flag}={getattr(args, name)}" for flag, name in options if getattr(args, name, None)])
    if args.command == "db":
        from aod.cli import db

        return db.run(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _serve(args: argparse.Namespace) -> int:
    # Every line `aod serve` writes is a JSON log line, from before the config is read.
    import logging

    from aod import logs

    logs.setup("info")
    from aod.cli.context import EXIT_CONFIG, config_from_args_or_raise
    from aod.config import ConfigError
    from aod.daemon import serve

    try:
        config = config_from_args_or_raise(args)
    except ConfigError as exc:
        logging.getLogger("aod.daemon").error("invalid config", extra={"error": str(exc)})
        return EXIT_CONFIG
    return serve(config)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
