"""Where a session's project is: the git root above its `cwd` (file-system reads, off the loop)."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from aod.storage.projects import UNKNOWN_PATH


@dataclass(frozen=True)
class ProjectLocation:
    path: str
    name: str
    origin_url: str | None


UNKNOWN = ProjectLocation(UNKNOWN_PATH, "unknown", None)


def locate(cwd: str | None) -> ProjectLocation:
    """The git root at or above `cwd` (a worktree's `.git` file counts), else `cwd` itself."""
    if not cwd or not cwd.startswith("/"):
        return UNKNOWN
    start = Path(cwd)
    for candidate in (start, *start.parents):
        marker = candidate / ".git"
        try:
            if marker.exists():
                return ProjectLocation(str(candidate), candidate.name or "root", _origin_url(marker))
        except OSError:
            break
    return ProjectLocation(str(start), start.name or "root", None)


def _origin_url(marker: Path) -> str | None:
    config = marker / "config"
    if not config.is_file():
        return None  # a worktree's .git is a file pointing elsewhere; the main checkout has the remote
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(config, encoding="utf-8")
        return parser.get('remote "origin"', "url", fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
