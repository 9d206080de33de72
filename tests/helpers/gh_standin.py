"""A `gh` stand-in: answers like the GitHub CLI from recorded JSON files a test points it to.

Run as a program (through the `gh` wrapper that `install` writes) it reads $GH_STANDIN_DIR:
- `gh pr list ... --head BRANCH ...` prints `pr-list.BRANCH.json` if present, else
  `pr-list.json`, else `[]`;
- `gh api graphql ...` prints `review-threads.json`, else a PR without review threads;
- a file `fail` makes every call print its contents to stderr and exit 1;
- a file `delay` (seconds) makes every call sleep that long first.
Every call is appended to `calls.jsonl` as {"argv", "cwd", "start", "end"}.

Imported by tests, it offers `install` and builders for the recorded JSON (`pr`, `check_run`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

NO_THREADS = {"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": []}}}}}


def _answer(state: Path, argv: list[str]) -> str:
    if argv[:2] == ["pr", "list"]:
        branch = argv[argv.index("--head") + 1] if "--head" in argv else ""
        for name in (f"pr-list.{branch}.json", "pr-list.json"):
            if (state / name).exists():
                return (state / name).read_text()
        return "[]"
    if argv[:2] == ["api", "graphql"]:
        path = state / "review-threads.json"
        return path.read_text() if path.exists() else json.dumps(NO_THREADS)
    raise SystemExit(f"gh stand-in: unsupported command {argv!r}")


def main(argv: list[str]) -> int:
    state = Path(os.environ["GH_STANDIN_DIR"])
    start = time.time()
    if (state / "delay").exists():
        time.sleep(float((state / "delay").read_text()))
    code, out, err = 0, "", ""
    if (state / "fail").exists():
        code, err = 1, (state / "fail").read_text()
    else:
        out = _answer(state, argv)
    with open(state / "calls.jsonl", "a") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "start": start, "end": time.time()}) + "\n")
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


# --- for tests ------------------------------------------------------------------------------------


def install(bin_dir: Path, state: Path) -> dict[str, str]:
    """Write a `gh` into `bin_dir`; returns the environment that puts it first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    gh.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "GH_STANDIN_DIR": str(state)}


def calls(state: Path) -> list[dict[str, Any]]:
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_run(name: str, conclusion: str | None, url: str | None = None, status: str = "COMPLETED") -> dict[str, Any]:
    return {"__typename": "CheckRun", "name": name, "status": status if conclusion else "IN_PROGRESS",
            "conclusion": conclusion or "", "detailsUrl": url or f"https://ci.example/{name}", "workflowName": "CI"}


def pr(number: int, sha: str, checks: list[dict[str, Any]], *, state: str = "OPEN", review: str = "",
       mergeable: str = "MERGEABLE", draft: bool = False, reviews: list[dict[str, Any]] | None = None,
       title: str = "Add the feature") -> dict[str, Any]:
    return {
        "number": number, "url": f"https://github.com/acme/widget/pull/{number}", "state": state,
        "isDraft": draft, "title": title, "headRefOid": sha, "reviewDecision": review, "mergeable": mergeable,
        "statusCheckRollup": checks, "reviews": reviews or [],
    }


def record(state: Path, prs: list[dict[str, Any]], branch: str | None = None) -> None:
    """What the next `gh pr list` answers (for `branch` only, if given). Atomic: no half-read file."""
    target = state / (f"pr-list.{branch}.json" if branch else "pr-list.json")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(prs))
    tmp.replace(target)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
