"""The config file is watched: a valid change applies live, a broken one is reported and ignored."""

from __future__ import annotations

from pathlib import Path

from aod.config import Config, parse_config
from aod.config_reload import restart_needed
from tests.helpers import gh_standin
from tests.helpers.agent_world import FAST, World
from tests.helpers.waiting import wait_for


def red(sha: str) -> list[dict[str, object]]:
    return [gh_standin.pr(7, sha, [gh_standin.check_run("unit", "FAILURE", f"https://ci.example/{sha}/unit")])]


def rewrite(path: Path, text: str) -> None:
    # As editors save: a new file renamed over the old one.
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    tmp.replace(path)


def test_a_valid_change_applies_live_and_a_broken_file_keeps_the_last_good_config(world: World) -> None:
    world.start_pane()
    gh_standin.record(world.gh_state, red("aaa111"))
    d = world.daemon(FAST + "[reactions.ci-failed]\nenabled = false\n")
    sid = world.adopt_session(d)
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["status"] == "ci_failed", message="CI red")
    polls = len(gh_standin.calls(world.gh_state))
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= polls + 3, message="more polls")
    assert "ci.example" not in world.pane_text()  # the reaction is off

    header = '[server]\ntcp = "127.0.0.1:0"\n'
    live = header + FAST + '[reactions.ci-failed]\nmessage = "Live config: fix the build."\n'
    rewrite(d.config, live)
    wait_for(lambda: "Live config: fix the build." in world.pane_text(), message="nudge under the new config")
    assert "https://ci.example/aaa111/unit" in world.pane_text()
    assert d.status()["config"]["errors"] == []

    rewrite(d.config, live.replace('interval = "0.2s"', 'interval = "soon"'))
    wait_for(lambda: d.status()["config"]["errors"], message="the error reported")
    (error,) = d.status()["config"]["errors"]
    assert str(d.config) in error and "scm.interval" in error and "soon" in error

    # The last good config still rules: the observer still polls fast and nudges with its message.
    gh_standin.record(world.gh_state, red("bbb222"))
    wait_for(lambda: "https://ci.example/bbb222/unit" in world.pane_text(), message="nudge under the old config")
    assert world.pane_text().count("Live config: fix the build.") == 2

    rewrite(d.config, live)
    wait_for(lambda: d.status()["config"]["errors"] == [], message="error cleared")
    assert "config reloaded" in d.log.read_text()
    d.stop()


async def test_the_holder_keeps_the_last_good_config(tmp_path: Path) -> None:
    from aod.config import load_config
    from aod.config_reload import ConfigHolder

    path = tmp_path / "config.toml"
    path.write_text('[scm]\ninterval = "5s"\n')
    holder = ConfigHolder(load_config(path, data_dir=tmp_path / "data", socket=tmp_path / "s.sock"))
    seen: list[float] = []
    holder.subscribe(lambda config: seen.append(config.scm.interval))

    path.write_text('[scm]\ninterval = "7s"\n')
    assert await holder.reload() and holder.current.scm.interval == 7.0 and seen == [7.0]
    assert holder.current.data_dir == tmp_path / "data"  # where the daemon runs does not move

    path.write_text("[scm\n")
    assert not await holder.reload()
    assert holder.current.scm.interval == 7.0 and "invalid TOML" in holder.errors[0]
    path.unlink()
    assert not await holder.reload() and "config file not found" in holder.errors[0]

    path.write_text('[scm]\ninterval = "7s"\n')
    assert await holder.reload() and holder.errors == [] and seen == [7.0]  # unchanged: nobody told


def test_ingest_settings_follow_a_reload(data_dir: Path, aod_env: dict[str, str]) -> None:
    from tests.helpers.daemon import Daemon

    d = Daemon(data_dir, aod_env, '[ingest]\ndedup_window = "1m"\n').start()
    try:
        payload = {"session_id": "reload-1", "hook_event_name": "Stop", "cwd": "/tmp"}
        assert d.post("/v1/hooks/claude-code", payload).body["accepted"] == 1
        assert d.post("/v1/hooks/claude-code", payload).body["duplicates"] == 1
        rewrite(d.config, '[server]\ntcp = "127.0.0.1:0"\n[ingest]\ndedup_window = "100ms"\nmax_payload_bytes = 1024\n')
        wait_for(lambda: "config reloaded" in d.log.read_text(), message="the reload")
        wait_for(lambda: d.post("/v1/hooks/claude-code", payload).body["accepted"] == 1, message="the short window")
        big = payload | {"hook_event_name": "Notification", "message": "x" * 4000}
        assert d.post("/v1/hooks/claude-code", big).body["accepted"] == 1
        (row,) = d.get("/v1/events?kind=Notification").body["items"]
        assert row["trimmed"] is True and row["payload_bytes"] > 4000
    finally:
        d.stop()


def test_only_what_is_wired_at_start_up_waits_for_a_restart(tmp_path: Path) -> None:
    def config(text: str) -> Config:
        return parse_config(text, None, data_dir=tmp_path, socket=tmp_path / "aod.sock")

    base = config("")
    live = config('[ingest]\ndedup_window = "9s"\n[retention]\nevents_days = 3\n[stream]\nqueue_size = 10\n'
                  '[reaper]\ninterval = "1s"\n')
    assert restart_needed(base, live) == []
    wired = config('[ingest]\nmax_body_bytes = 1048576\n[server]\nlog_level = "debug"\n[storage]\nreaders = 2\n')
    assert restart_needed(base, wired) == ["server", "storage", "ingest.max_body_bytes"]
