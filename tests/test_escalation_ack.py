"""The human side: acknowledging escalations (API and `aod ack`) and `aod show`."""

from __future__ import annotations

import json

from tests.conftest import run_aod
from tests.helpers import gh_standin
from tests.helpers.agent_world import FAST, World
from tests.helpers.waiting import wait_for


def test_ack_through_the_api_and_the_cli(world: World) -> None:
    # The webhook points at a closed port: its deliveries stay pending, retrying.
    d = world.daemon(FAST + """
[reactions.ci-failed]
retries = 0
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:9/nobody"
backoff = "30s"
[routing]
urgent = ["hook"]
""")
    sid = world.adopt_session(d)
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "abc", [gh_standin.check_run("unit", "FAILURE", "https://ci/u")])])
    wait_for(lambda: world.query("SELECT attempts FROM deliveries") == [(1,)], message="a failed delivery attempt")
    (escalation_id,) = world.query("SELECT id FROM escalations")[0]

    env = {k: v for k, v in d.env.items() if k.startswith(("AOD_", "XDG_"))}
    show = run_aod("show", sid, env=env)
    assert show.returncode == 0, show.stderr
    assert "pull requests" in show.stdout and "#7 Add the feature" in show.stdout
    assert "failed  unit  https://ci/u" in show.stdout
    assert "ci-failed: attempts 0" in show.stdout
    assert f"#{escalation_id} urgent ci-failed" in show.stdout and "NOT ACKED" in show.stdout

    first = d.post(f"/v1/escalations/{escalation_id}/ack", {})
    assert first.status == 200 and first.body["acked_at"]
    # Acknowledged: the page still pending is not sent any more.
    (delivery,) = first.body["deliveries"]
    assert delivery["status"] == "failed" and delivery["last_error"].startswith("cancelled: the escalation was acknowledged")
    again = d.post(f"/v1/escalations/{escalation_id}/ack", {})
    assert again.status == 200 and again.body["acked_at"] == first.body["acked_at"]

    cli = run_aod("ack", str(escalation_id), env=env)
    assert cli.returncode == 0, cli.stderr
    assert f"escalation #{escalation_id} (ci-failed, session {sid}) acknowledged at {first.body['acked_at']}" in cli.stdout
    as_json = run_aod("ack", str(escalation_id), "--json", env=env)
    assert json.loads(as_json.stdout)["acked_at"] == first.body["acked_at"]
    assert "NOT ACKED" not in run_aod("show", sid, env=env).stdout

    missing = d.post("/v1/escalations/999/ack", {})
    assert missing.status == 404 and missing.body["error"] == {"code": "not_found", "message": "no escalation 999"}
    bad = d.post("/v1/escalations/abc/ack", {})
    assert bad.status == 400 and bad.body["error"]["code"] == "invalid_parameter"
    # Digits that int() or SQLite refuse: a 400 as well, not a server error.
    for odd in ("%C2%B2", "9" * 20, "9" * 5000):
        reply = d.post(f"/v1/escalations/{odd}/ack", {})
        assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter", (odd, reply.status)
    assert d.get(f"/v1/escalations/{escalation_id}/ack").status == 405
    cli_missing = run_aod("ack", "999", env=env)
    assert cli_missing.returncode == 4 and "no escalation 999" in cli_missing.stderr
    cli_bad = run_aod("ack", "x1", env=env)
    assert cli_bad.returncode == 2 and "not an escalation id" in cli_bad.stderr
    d.stop()
    down = run_aod("ack", str(escalation_id), env=env)
    assert down.returncode == 3 and "no daemon is answering" in down.stderr
