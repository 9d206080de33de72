"""The default routing: urgent escalations go to the desktop when notify-send (or osascript on
macOS) is on the PATH the config is read with, and nowhere otherwise; any [notifiers] or
[routing] table in the file is the user's own choice and wins. Real executables in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from aod.config import NotifierConfig, desktop_program, parse_config
from aod.notify.routing import routed

NOWHERE = {"urgent": (), "action": (), "info": ()}


def bin_dir(root: Path, *programs: str) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name in programs:
        (root / name).write_text("#!/bin/sh\nexit 0\n")
        (root / name).chmod(0o755)
    return str(root)


def test_notify_send_on_path_routes_urgent_to_the_desktop(tmp_path: Path) -> None:
    config = parse_config({}, env={"PATH": bin_dir(tmp_path / "bin", "notify-send")}, platform="linux")
    assert dict(config.notifiers) == {"desktop": NotifierConfig(name="desktop", type="desktop")}
    assert dict(config.routing) == {"urgent": ("desktop",), "action": (), "info": ()}
    assert routed(config)


@pytest.mark.parametrize(
    ("programs", "platform", "expected"),
    [
        ((), "linux", None),
        (("osascript",), "linux", None),  # osascript shows nothing outside macOS
        (("osascript",), "darwin", "osascript"),
        (("notify-send", "osascript"), "darwin", "notify-send"),
        (("notify-send",), "linux", "notify-send"),
    ],
)
def test_which_desktop_program(tmp_path: Path, programs: tuple[str, ...], platform: str, expected: str | None) -> None:
    path = bin_dir(tmp_path / "bin", *programs)
    found = desktop_program(path, platform)
    assert (Path(found).name if found else None) == expected
    config = parse_config({}, env={"PATH": path}, platform=platform)
    assert (tuple(config.notifiers), config.routing["urgent"]) == (
        (("desktop",), ("desktop",)) if expected else ((), ()))


def test_no_path_finds_nothing(tmp_path: Path) -> None:
    # An environment without PATH is not the test runner's PATH: the result must not depend on it.
    config = parse_config({}, env={}, platform="linux")
    assert (dict(config.notifiers), dict(config.routing)) == ({}, NOWHERE)
    assert not routed(config)


@pytest.mark.parametrize(
    "doc",
    [
        {"routing": {}},
        {"routing": {"urgent": []}},
        {"notifiers": {}},
        {"notifiers": {"pager": {"type": "command", "command": ["page-me"]}}},
    ],
)
def test_any_notifiers_or_routing_table_is_the_users_choice(tmp_path: Path, doc: dict[str, object]) -> None:
    config = parse_config(doc, env={"PATH": bin_dir(tmp_path / "bin", "notify-send")}, platform="linux")
    assert "desktop" not in config.notifiers
    assert dict(config.routing) == NOWHERE


def test_an_explicit_route_is_kept_as_written(tmp_path: Path) -> None:
    doc = {"notifiers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x"}}, "routing": {"action": ["hook"]}}
    config = parse_config(doc, env={"PATH": bin_dir(tmp_path / "bin", "notify-send")}, platform="linux")
    assert tuple(config.notifiers) == ("hook",)
    assert dict(config.routing) == {"urgent": (), "action": ("hook",), "info": ()}
