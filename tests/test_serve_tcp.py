"""`aod serve --tcp ADDRESS`: the way out of a taken port, named by the error that reports it."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.conftest import aod_command
from tests.helpers.daemon import Daemon


def _errors(stderr: str) -> list[dict[str, str]]:
    return [line for line in map(json.loads, stderr.splitlines()) if line["level"] == "error"]


def test_a_taken_port_names_the_ways_to_choose_another(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()
        daemon.config.write_text(f'[server]\ntcp = "{host}:{port}"\n')

        refused = subprocess.run([*aod_command(), "serve"], env=daemon.env, capture_output=True, text=True,
                                 timeout=30)

        assert refused.returncode == 2
        (error,) = _errors(refused.stderr)
        assert error["msg"].startswith(f"cannot listen on {host}:{port} (server.tcp): ")
        assert "server.tcp in the config file" in error["msg"] and "aod serve --tcp ADDRESS" in error["msg"]
        assert '--tcp ""' in error["msg"] and "--tcp 127.0.0.1:0" in error["msg"]

        # Both ways out it names, with the config file still naming the taken port.
        try:
            daemon.start(args=("--tcp", "127.0.0.1:0"))
            bound = daemon.status()["tcp"]
            assert bound.startswith("127.0.0.1:") and bound != f"{host}:{port}"
            with socket.create_connection(("127.0.0.1", int(bound.rpartition(":")[2])), timeout=5):
                pass
            assert daemon.stop() == 0
            daemon.start(args=("--tcp", ""))
            assert daemon.status()["tcp"] is None
            assert daemon.stop() == 0
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()


def test_an_invalid_tcp_option_is_named(data_dir: Path, aod_env: dict[str, str]) -> None:
    daemon = Daemon(data_dir, aod_env)
    result = subprocess.run([*aod_command(), "serve", "--tcp", "8765"], env=daemon.env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    (error,) = _errors(result.stderr)
    assert error["msg"] == "invalid config"
    assert error["error"].startswith("--tcp: expected \"host:port\"") and '"8765"' in error["error"]
    assert not (data_dir / "aod.db").exists()
