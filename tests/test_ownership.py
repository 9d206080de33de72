"""The ownership rules as pure functions of stat results (no file system): aod.ownership, aod.unix_socket."""

from __future__ import annotations

import os
import stat

import pytest

from aod.ownership import Action, judge_private_dir, judge_private_file, judge_socket_dir
from aod.unix_socket import BoundSocket, Probe, judge_socket_entry

ME, OTHER = 1000, 1001


def st(kind: int, mode: int, uid: int = ME, ino: int = 7, dev: int = 3, ctime: int = 0) -> os.stat_result:
    # The 10 legacy fields, then the float times and the *_ns ones (st_ctime_ns is the 16th).
    return os.stat_result((kind | mode, ino, dev, 1, uid, uid, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, ctime))


def never() -> Probe:
    raise AssertionError("probed something that is not a socket")


@pytest.mark.parametrize(("entry", "action", "words"), [
    (None, Action.CREATE, ""),
    (st(stat.S_IFDIR, 0o700), Action.USE, ""),
    (st(stat.S_IFDIR, 0o755), Action.USE, ""),  # others can list it, but the socket itself is 0600
    (st(stat.S_IFDIR, 0o1777, uid=0), Action.REFUSE, "uid 0"),
    (st(stat.S_IFDIR, 0o1777), Action.REFUSE, "writable by group or others (mode 1777)"),
    (st(stat.S_IFDIR, 0o770), Action.REFUSE, "writable by group or others (mode 0770)"),
    (st(stat.S_IFDIR, 0o700, uid=OTHER), Action.REFUSE, f"belongs to uid {OTHER}, not to this daemon's uid {ME}"),
    (st(stat.S_IFREG, 0o600), Action.REFUSE, "is a regular file, not a directory"),
])
def test_socket_dir_is_used_created_or_refused_never_tightened(
    entry: os.stat_result | None, action: Action, words: str
) -> None:
    verdict = judge_socket_dir("/s/aod.sock", "/s", entry, ME)
    assert verdict.action is action
    assert words in verdict.reason
    if action is Action.REFUSE:
        assert verdict.reason.startswith("refusing socket /s/aod.sock: its directory /s ")


@pytest.mark.parametrize(("entry", "action", "words"), [
    (None, Action.CREATE, ""),
    (st(stat.S_IFDIR, 0o700), Action.USE, ""),
    (st(stat.S_IFDIR, 0o755), Action.TIGHTEN, ""),
    (st(stat.S_IFDIR, 0o770), Action.TIGHTEN, ""),
    (st(stat.S_IFDIR, 0o1777), Action.REFUSE, "writable by anyone (mode 1777)"),
    (st(stat.S_IFDIR, 0o707), Action.REFUSE, "writable by anyone (mode 0707)"),
    (st(stat.S_IFDIR, 0o700, uid=OTHER), Action.REFUSE, f"belongs to uid {OTHER}"),
    (st(stat.S_IFREG, 0o600), Action.REFUSE, "is a regular file, not a directory"),
])
def test_data_dir_is_created_tightened_or_refused(entry: os.stat_result | None, action: Action, words: str) -> None:
    verdict = judge_private_dir("data dir", "/d", entry, ME)
    assert verdict.action is action
    assert words in verdict.reason


@pytest.mark.parametrize(("entry", "action"), [
    (None, Action.USE),
    (st(stat.S_IFREG, 0o600), Action.USE),
    (st(stat.S_IFREG, 0o644), Action.TIGHTEN),
    (st(stat.S_IFREG, 0o640), Action.TIGHTEN),
    (st(stat.S_IFLNK, 0o777), Action.USE),  # a user's own symlink: neither followed nor refused
    (st(stat.S_IFREG, 0o600, uid=OTHER), Action.REFUSE),
])
def test_data_files_are_tightened_or_refused(entry: os.stat_result | None, action: Action) -> None:
    verdict = judge_private_file("/d/aod.db", entry, ME)
    assert verdict.action is action
    assert (f"/d/aod.db belongs to uid {OTHER}" in verdict.reason) == (action is Action.REFUSE)


@pytest.mark.parametrize(("kind", "words"), [
    (stat.S_IFREG, "a regular file is in its place"),
    (stat.S_IFLNK, "a symbolic link is in its place"),
    (stat.S_IFDIR, "a directory is in its place"),
    (stat.S_IFIFO, "a special file is in its place"),
])
def test_anything_but_a_socket_at_the_path_is_refused_without_probing(kind: int, words: str) -> None:
    verdict = judge_socket_entry("/s/aod.sock", st(kind, 0o600), ME, never)
    assert verdict.action is Action.REFUSE
    assert words in verdict.reason and "deletes nothing it did not make" in verdict.reason


def test_a_socket_is_replaced_only_when_stale_and_ours() -> None:
    sock = st(stat.S_IFSOCK, 0o600)
    assert judge_socket_entry("/s/a", None, ME, never).action is Action.CREATE
    assert judge_socket_entry("/s/a", sock, ME, lambda: Probe(answers=False)).action is Action.REPLACE

    live = judge_socket_entry("/s/a", sock, ME, lambda: Probe(answers=True, pid=4242))
    assert live.action is Action.REFUSE and "another process (pid 4242) is serving on it" in live.reason

    unsure = judge_socket_entry("/s/a", sock, ME, lambda: Probe(answers=False, error="no answer within 0.5 s"))
    assert unsure.action is Action.REFUSE and "cannot tell whether" in unsure.reason and "0.5 s" in unsure.reason

    foreign = judge_socket_entry("/s/a", st(stat.S_IFSOCK, 0o600, uid=OTHER), ME, lambda: Probe(answers=False))
    assert foreign.action is Action.REFUSE and f"stale socket of uid {OTHER}" in foreign.reason


def test_bound_socket_is_ours_only_by_device_inode_and_ctime() -> None:
    bound = BoundSocket("/s/a", identity=(3, 7, 1_000))
    assert bound.is_ours(st(stat.S_IFSOCK, 0o600, ino=7, dev=3, ctime=1_000))
    assert not bound.is_ours(st(stat.S_IFSOCK, 0o600, ino=8, dev=3, ctime=1_000))
    assert not bound.is_ours(st(stat.S_IFSOCK, 0o600, ino=7, dev=4, ctime=1_000))
    # A freed inode number reused at once by a new file: the ctime tells them apart.
    assert not bound.is_ours(st(stat.S_IFSOCK, 0o600, ino=7, dev=3, ctime=2_000))
    assert not bound.is_ours(None)
