"""The sessions layer on a real SQLite file: the FactWriter (the one writer of session facts and
status) and the refusals of SessionControl that need no runtime. Spawning, sending and killing
real agents is tested through `aod serve` (test_spawn*.py, test_cli_send.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import apsw
import pytest

from aod.runtime.probe import Probe
from aod.runtime.probes import Observation
from aod.scm.observation import parse_observation
from aod.sessions.control import Refused, SessionControl
from aod.sessions.facts import FactWriter, Silence, observed_fields
from aod.sessions.projects import ProjectLocation
from aod.storage import prs, sessions
from aod.storage.database import Storage, open_storage
from aod.timefmt import iso_from_seconds, seconds_from_iso
from tests.helpers.rows import T0, insert_event, seed_session

NOW = seconds_from_iso(T0)


def at(seconds: float) -> str:
    return iso_from_seconds(NOW + seconds)


def updates(conn: apsw.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM change_log WHERE entity = 'session' AND op = 'update'").fetchone()[0])


def row(conn: apsw.Connection, session_id: str = "proj-1") -> dict[str, object]:
    found = sessions.get(conn, session_id)
    assert found is not None
    return found


def test_a_write_sets_the_facts_with_the_status_they_lead_to_and_a_no_change_writes_nothing(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    seed_session(conn)
    after = facts.write(conn, "proj-1", {"activity": "active", "last_event_at": at(0)}, now=at(1))
    assert after is not None and after["status"] == "working" and after["updated_at"] == at(1)
    assert row(conn)["status"] == "working"
    seen = updates(conn)
    assert facts.write(conn, "proj-1", {"activity": "active"}, now=at(2)) == row(conn)
    assert updates(conn) == seen and row(conn)["updated_at"] == at(1)
    assert facts.write(conn, "nobody", {"activity": "active"}, now=at(2)) is None


def test_stuck_after_is_read_at_each_write_so_a_reloaded_config_applies(conn: apsw.Connection) -> None:
    live = [600.0]
    facts = FactWriter(lambda: live[0])
    seed_session(conn)
    facts.write(conn, "proj-1", {"activity": "active", "last_event_at": at(0)}, now=at(0))
    assert facts.restatus_silent(conn, now=at(100)) == []
    assert facts.silence(conn, now=NOW + 100) == Silence(overdue=False, next_at=NOW + 600.0)
    live[0] = 60.0  # the config file now says one minute
    silence = facts.silence(conn, now=NOW + 100)
    assert silence.overdue and silence.next_at is None
    assert facts.restatus_silent(conn, now=at(100)) == ["proj-1"]
    assert row(conn)["status"] == "stuck"


def test_a_session_that_comes_back_loses_the_verdict_on_its_old_runtime(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    seed_session(conn)
    facts.killed(conn, "proj-1", now=at(0))
    assert (row(conn)["status"], row(conn)["is_alive"]) == ("killed", False)
    facts.write(conn, "proj-1", {"termination_reason": None, "ended_at": None, "activity": "active",
                                 "last_event_at": at(1)}, now=at(1))
    assert (row(conn)["status"], row(conn)["is_alive"]) == ("working", None)
    facts.killed(conn, "proj-1", now=at(2))
    facts.write(conn, "proj-1", {"termination_reason": None, "is_alive": True}, now=at(3))
    assert row(conn)["is_alive"] is True  # said outright: kept


def _pr(n: int, state: str) -> dict[str, object]:
    return parse_observation({"url": f"https://gh/proj/pull/{n}", "number": n, "state": state, "head_sha": "abc"})


def test_a_merged_pr_ends_the_session_only_when_no_other_pr_is_open(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    seed_session(conn)
    prs.upsert(conn, "proj-1", _pr(1, "merged"), at(0))
    prs.upsert(conn, "proj-1", _pr(2, "open"), at(0))
    assert facts.prs_recorded(conn, row(conn), merged=True, now=at(0))["status"] == "pr_open"
    prs.upsert(conn, "proj-1", _pr(2, "closed"), at(1))
    after = facts.prs_recorded(conn, row(conn), merged=True, now=at(1))
    assert (after["status"], after["termination_reason"], after["ended_at"]) == ("merged", "merged", at(1))


def test_a_throwaway_start_is_ended_then_folded_into_the_session_it_resumed(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    seed_session(conn, "proj-1")
    seed_session(conn, "proj-2")
    insert_event(conn, "u-1", session_id="proj-2")
    assert facts.absorb(conn, "proj-2", "proj-1", now=at(0)) is True
    assert sessions.get(conn, "proj-2") is None
    assert conn.execute("SELECT session_id FROM events WHERE uid = 'u-1'").fetchone()[0] == "proj-1"
    # Its end was written before it went: a client that saw it appear sees it end.
    (data,) = conn.execute("SELECT data FROM change_log WHERE entity = 'session' AND op = 'update'"
                           " AND session_id = 'proj-2'").fetchone()
    assert '"exited"' in data


def test_probe_results_end_only_live_sessions_whose_handle_they_probed(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    for sid in ("proj-1", "proj-2", "proj-3"):
        seed_session(conn, sid)
        facts.write(conn, sid, {"runtime": "tmux", "runtime_handle": f"%{sid[-1]}"}, now=at(0))
    facts.killed(conn, "proj-2", now=at(1))  # a kill landed while the probe ran
    dead = [Observation(sid, f"%{sid[-1]}", Probe.DEAD) for sid in ("proj-1", "proj-2")]
    moved = [Observation("proj-3", "%9", Probe.DEAD)]  # the agent went elsewhere meanwhile
    assert facts.observed(conn, dead + moved, now=at(100), grace=30.0) == ["proj-1"]
    assert [row(conn, s)["status"] for s in ("proj-1", "proj-2", "proj-3")] == ["lost", "killed", "idle"]
    assert row(conn, "proj-1")["ended_at"] == at(100)


def test_a_process_handle_is_given_the_start_time_the_probe_read() -> None:
    live = {"runtime": "process", "last_event_at": T0, "created_at": T0}
    fields = observed_fields(Observation("proj-1", "4242", Probe.ALIVE, start_token="99"), live, now=at(1), grace=30.0)
    assert fields == {"is_alive": True, "runtime_handle": "4242@99"}
    quiet = observed_fields(Observation("proj-1", "4242@99", Probe.DEAD), live, now=at(31), grace=30.0)
    assert quiet == {"is_alive": False, "termination_reason": "runtime_lost", "ended_at": at(31)}
    assert observed_fields(Observation("proj-1", "4242@99", Probe.DEAD), live, now=at(29), grace=30.0) == {"is_alive": False}


def test_a_created_session_has_its_status_derived(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    seed_session(conn, "other")  # the project row
    created = facts.create(conn, {"id": "proj-7", "project_id": "proj", "agent": "claude-code", "runtime": "tmux"},
                           now=at(0))
    assert (created["status"], created["activity"], created["created_at"], created["is_alive"]) == ("idle", "idle", at(0), None)


def test_an_adopted_session_takes_the_id_its_client_named_while_it_is_free(conn: apsw.Connection) -> None:
    facts = FactWriter(lambda: 600.0)
    here = ProjectLocation("/src/shop", "shop", "git@example.com:shop.git")

    def adopt(wanted: str | None) -> str:
        return facts.adopt(conn, wanted_id=wanted, agent="claude-code", agent_session_id=f"agent-{wanted}",
                           workspace="/src/shop/api", project=here, now=at(0))

    assert adopt("named-by-hand") == "named-by-hand"
    assert adopt("named-by-hand") == "shop-1"  # taken: the project's next number instead
    assert adopt(None) == "shop-2"
    adopted = row(conn, "named-by-hand")
    assert (adopted["project_id"], adopted["workspace_path"], adopted["status"]) == ("shop", "/src/shop/api", "idle")
    (origin,) = conn.execute("SELECT origin_url FROM projects WHERE id = 'shop'").fetchone()
    assert origin == "git@example.com:shop.git"


# --- control's refusals ---------------------------------------------------------------------------


@pytest.fixture
async def control(data_dir: Path) -> AsyncIterator[SessionControl]:
    storage: Storage = await open_storage(data_dir)
    yield SessionControl(storage.db, FactWriter(lambda: 600.0), data_dir=data_dir, socket_path=data_dir / "aod.sock")
    await storage.close()


async def test_control_refuses_what_it_cannot_do_with_the_code_the_api_answers(control: SessionControl) -> None:
    with pytest.raises(Refused) as unknown:
        await control.kill("nobody")
    assert unknown.value.code == "not_found"

    def ended(conn: apsw.Connection) -> None:
        seed_session(conn, "proj-1")
        seed_session(conn, "proj-2")
        control.facts.killed(conn, "proj-1", now=at(0))
        control.facts.write(conn, "proj-2", {"termination_reason": "exited", "ended_at": at(0)}, now=at(0))

    await control.db.write(ended)
    session, ran = await control.kill("proj-1")  # killing a killed session is a no-op
    assert (session["status"], ran) == ("killed", False)
    with pytest.raises(Refused) as exited:
        await control.kill("proj-2")
    assert exited.value.code == "session_ended"
    with pytest.raises(Refused) as gone:
        await control.send("proj-2", "hello", force=False)
    assert gone.value.code == "session_ended"
