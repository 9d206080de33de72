"""Reading what was appended to a transcript since the stored offset (blocking: run it off the loop).

Only whole lines are read: a last line without its newline is still being written and waits for
the next read. A file that is shorter than the offset, has another inode, or whose first bytes
changed was rewritten or rotated: it is read again from its start (usage rows are keyed by message,
so lines read twice count once).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

# Enough to tell two transcripts apart: the first line names the session and its first instant.
FINGERPRINT_BYTES = 512
# One read, one transaction: a large backlog is taken in steps so no write holds the writer long.
MAX_READ = 8 * 1024 * 1024
# A line longer than this is passed over unread (no transcript line carrying usage is near it):
# a path that a payload names is read, and must not make the daemon hold a whole device in memory.
MAX_LINE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Position:
    offset: int
    inode: int | None
    fingerprint: str | None


START = Position(0, None, None)


@dataclass(frozen=True)
class Chunk:
    lines: list[bytes]
    position: Position  # where the next read starts
    restarted: bool  # the file was rewritten or rotated: read from its start
    more: bool  # whole lines remain past MAX_READ


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()[:32]


def read(path: str, at: Position, max_read: int = MAX_READ) -> Chunk | None:
    """The whole lines after `at`, or None when the file is gone or no regular file (a FIFO or a
    device named as a transcript is not read: it could block or never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        head = f.read(FINGERPRINT_BYTES)
        restarted = at.offset > 0 and (
            st.st_size < at.offset
            or (at.inode is not None and st.st_ino != at.inode)
            or (at.fingerprint is not None and _print_at(head, at.offset) != at.fingerprint)
        )
        offset = 0 if restarted else at.offset
        f.seek(offset)
        data = f.read(max_read)
    end = data.rfind(b"\n")
    if end < 0:
        # Nothing whole yet (or one line longer than max_read, which is read whole below).
        if len(data) == max_read:
            return _long_line(path, offset, st.st_ino, head, restarted)
        return Chunk([], Position(offset, st.st_ino, _print_at(head, offset)), restarted, False)
    whole = data[: end + 1]
    new_offset = offset + len(whole)
    lines = [line for line in whole.split(b"\n") if line.strip()]
    return Chunk(lines, Position(new_offset, st.st_ino, _print_at(head, new_offset)), restarted,
                  len(data) == max_read and new_offset < st.st_size)


def _print_at(head: bytes, offset: int) -> str | None:
    return _fingerprint(head[: min(offset, FINGERPRINT_BYTES)]) if offset > 0 else None


def _long_line(path: str, offset: int, inode: int, head: bytes, restarted: bool) -> Chunk:
    """A single line longer than MAX_READ (a huge tool result): read up to its newline; one longer
    than MAX_LINE is passed over once its newline is there."""
    with open(path, "rb") as f:
        f.seek(offset)
        line = f.readline(MAX_LINE)
        skipped = 0
        while len(line) + skipped >= MAX_LINE and not line.endswith(b"\n"):
            skipped += len(line)
            line = f.readline(MAX_LINE)
            if not line:
                break
    if not line.endswith(b"\n"):
        return Chunk([], Position(offset, inode, _print_at(head, offset)), restarted, False)
    new_offset = offset + skipped + len(line)
    whole = [] if skipped else [line[:-1]]
    return Chunk(whole, Position(new_offset, inode, _print_at(head, new_offset)), restarted, True)
