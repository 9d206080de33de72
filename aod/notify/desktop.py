"""Which program shows a desktop notification on this machine. Stdlib only: the config reads it
to decide its default routing, and the desktop notifier to send."""

from __future__ import annotations

import shutil
import sys


def desktop_program(path: str | None = None, platform: str = sys.platform) -> str | None:
    """notify-send (freedesktop), else osascript on macOS, found on `path` (default: $PATH)."""
    found = shutil.which("notify-send", path=path)
    if found is None and platform == "darwin":
        found = shutil.which("osascript", path=path)
    return found
