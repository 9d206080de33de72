"""`aod hooks install|uninstall --agent opencode`: opencode has no hook commands but plugins, so
aod writes one plugin file of its own: ~/.config/opencode/plugins/aod.js (honours
XDG_CONFIG_HOME; project scope: <project>/.opencode/plugins/aod.js), which opencode loads at
start (opencode.ai/docs/plugins). The plugin starts the hook client (exec form, an argv array)
with the event as JSON on its stdin and does not wait for it: the async rule of Claude Code's
hooks, in opencode's terms. The file is aod's by its first line; any other file there is the
user's, and neither install nor uninstall touches it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from aod.cli.hooks import EXIT_FAILED, hook_argv, passed_on, write_text_atomically

AGENT = "opencode"
MARK = "// aod: opencode events to aod's hook client."
# Bus events worth a process each. message.updated and message.part.updated stream with every
# token; the prompt comes from the chat.message hook instead.
EVENTS = (
    "session.created", "session.idle", "session.error", "session.deleted", "session.compacted",
    "permission.asked", "permission.updated", "permission.replied", "command.executed",
)  # not file.edited: it names no session, and an event without one cannot be stored
_PLUGIN = MARK + """ Written by `aod hooks install --agent opencode`;
// `aod hooks uninstall --agent opencode` removes it. Edits are lost on the next install.
import { spawn } from "node:child_process"

const HOOK = __ARGV__
const EVENTS = new Set(__EVENTS__)

function send(payload) {
  try {
    // Not waited for: opencode goes on at once, and the client spools while aod is down.
    const child = spawn(HOOK[0], HOOK.slice(1), { stdio: ["pipe", "ignore", "ignore"], detached: true })
    child.on("error", () => {})
    child.stdin.on("error", () => {})
    child.stdin.end(JSON.stringify(payload))
    child.unref()
  } catch {}
}

export const AodPlugin = async ({ directory }) => ({
  event: async ({ event }) => {
    if (EVENTS.has(event.type)) send({ ...event, directory })
  },
  "chat.message": async (input, output) => {
    const parts = (output && output.parts) || []
    const prompt = parts.filter((p) => p.type === "text").map((p) => p.text).join("\\n")
    const sessionID = input.sessionID || (output && output.message && output.message.sessionID)
    send({ type: "chat.message", properties: { ...input, sessionID }, prompt, directory })
  },
  "tool.execute.before": async (input) => send({ type: "tool.execute.before", properties: input, directory }),
  "tool.execute.after": async (input) => send({ type: "tool.execute.after", properties: input, directory }),
})
"""


def plugin_path(scope: str, project_dir: str | None, env: dict[str, str]) -> Path:
    if scope == "user":
        config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(os.path.abspath(Path(os.path.expanduser(config)) / "opencode" / "plugins" / "aod.js"))
    return Path(os.path.abspath(Path(project_dir or os.getcwd()) / ".opencode" / "plugins" / "aod.js"))


def plugin_text(argv: list[str]) -> str:
    return _PLUGIN.replace("__ARGV__", json.dumps(argv)).replace("__EVENTS__", json.dumps(list(EVENTS)))


def _is_ours(path: Path) -> bool | None:
    """Whether the file at `path` is aod's plugin; None when there is none."""
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return file.readline().startswith(MARK)
    except FileNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    if args.scope == "local" or getattr(args, "http", False) or getattr(args, "events", None):
        print("aod: opencode takes --scope user or project, and no --http or --events (the plugin forwards "
              "its own choice of events)", file=sys.stderr)
        return EXIT_FAILED
    path = plugin_path(args.scope, args.project_dir, dict(os.environ))
    try:
        ours = _is_ours(path)
    except OSError as exc:
        print(f"aod: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if ours is False:
        print(f"aod: {path} is not aod's plugin (its first line is not aod's mark); nothing was changed",
              file=sys.stderr)
        return EXIT_FAILED
    if args.hooks_command == "uninstall":
        if ours is None:
            print(f"no aod plugin at {path}")
        elif args.dry_run:
            print(f"dry run: would have removed {path}; nothing was written")
        else:
            path.unlink()
            print(f"removed aod's opencode plugin {path}")
        return 0
    text = plugin_text(hook_argv(AGENT, passed_on(args), on_path=args.scope == "project"))
    if ours and path.read_text(encoding="utf-8") == text:
        print(f"aod plugin already installed at {path}")
        return 0
    if args.dry_run:
        print(text, end="")
        print(f"dry run: would have written {path}; nothing was written")
        return 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, text, 0o644)
    except OSError as exc:
        print(f"aod: cannot write {path}: {exc.strerror or exc}; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    print(f"{'updated' if ours else 'added'} aod's opencode plugin {path} (opencode loads it at its next start)")
    return 0
