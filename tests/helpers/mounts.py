"""Real small file systems for tests of a full disk and a read-only one (Linux, root).

Each context manager unmounts in `finally`, whatever the test did. Where mounting is not
permitted (not root, no loop devices, a container without CAP_SYS_ADMIN) the test is skipped
with the reason; any other failure fails the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_NOT_PERMITTED = ("permission denied", "must be superuser", "operation not permitted", "only root")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _require(*tools: str) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("mounting a test file system needs Linux")
    if os.geteuid() != 0:
        pytest.skip("mounting a test file system needs root")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _mount(*args: str) -> None:
    done = _run("mount", *args)
    if done.returncode != 0:
        if any(s in done.stderr.lower() for s in _NOT_PERMITTED):
            pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
        raise AssertionError(f"mount {' '.join(args)} failed: {done.stderr.strip()}")


def _unmount(path: Path) -> None:
    if _run("umount", str(path)).returncode != 0:
        # Something still holds a file there (a daemon a failing test left running): detach the
        # mount now, the kernel frees it when the last file closes.
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "24m") mounted on `path` (created if missing)."""
    _require("mount", "umount")
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


class Ext4:
    """An ext4 file system in an image file, mounted through a loop device with
    `errors=remount-ro`: an error (`trigger_error`) turns it read-only under open files, as a
    failing disk does. The kernel refuses `mount -o remount,ro` while files are open for writing
    (EBUSY, even for a bind mount), so this is the way a running daemon sees EROFS."""

    def __init__(self, image: Path, path: Path) -> None:
        self.image = image
        self.path = path

    def device(self) -> str:
        return _run("findmnt", "-n", "-o", "SOURCE", str(self.path)).stdout.strip()

    def trigger_error(self) -> None:
        control = Path("/sys/fs/ext4") / Path(self.device()).name / "trigger_fs_error"
        control.write_text("aod test: the disk failed\n")

    def is_read_only(self) -> bool:
        options = _run("findmnt", "-n", "-o", "OPTIONS", str(self.path)).stdout
        return "emergency_ro" in options or options.startswith("ro")

    def repair_and_remount(self) -> None:
        """What a person does after the error: unmount, fsck, mount again (read-write)."""
        _unmount(self.path)
        fsck = _run("e2fsck", "-f", "-y", str(self.image))
        assert fsck.returncode in (0, 1), f"e2fsck failed ({fsck.returncode}): {fsck.stdout}{fsck.stderr}"
        _mount("-o", "loop,errors=remount-ro", str(self.image), str(self.path))


@contextlib.contextmanager
def ext4(image: Path, path: Path, size: str = "32M") -> Iterator[Ext4]:
    _require("mount", "umount", "mkfs.ext4", "e2fsck", "findmnt", "truncate")
    if not Path("/sys/fs/ext4/features").is_dir():
        pytest.skip("this kernel has no ext4 sysfs (needed to make the file system fail)")
    made = _run("truncate", "-s", size, str(image))
    assert made.returncode == 0, made.stderr
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    assert made.returncode == 0, made.stderr
    path.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    if done.returncode != 0:
        # No free loop device or no loop driver (common in containers) is "not permitted here" too.
        pytest.skip(f"cannot loop-mount an ext4 image here: {done.stderr.strip()}")
    fs = Ext4(image, path)
    if not (Path("/sys/fs/ext4") / Path(fs.device()).name / "trigger_fs_error").exists():
        _unmount(path)
        pytest.skip("this kernel's ext4 has no trigger_fs_error")
    try:
        yield fs
    finally:
        if _run("findmnt", "-n", str(path)).returncode == 0:
            _unmount(path)
