"""A private PostgreSQL cluster for the tests: initdb + pg_ctl in a temp dir, as the `postgres` user.

Debian's `postgresql` package (scripts/test installs it) ships initdb and pg_ctl under
/usr/lib/postgresql/<major>/bin. PostgreSQL refuses to run as root, so when the tests run as
root the cluster runs as `postgres`, in a directory it owns. It listens on a free loopback port
with trust auth for local connections (a throwaway cluster nobody else can reach meaningfully).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    bindir: Path
    root: Path
    port: int
    user: str | None  # the OS user the server runs as (None: this one)

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def dsn(self, role: str = "postgres", db: str = "postgres", password: str | None = None) -> str:
        auth = role if password is None else f"{role}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-instructions")
        with open(self.pgdata / "postgresql.conf", "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                    # fsync off survives a process crash (the kernel keeps the pages); synchronous_commit
                    # stays on: off, a SIGKILL loses commits already acknowledged, which the forwarder trusts.
                    "fsync = off\nfull_page_writes = off\nmax_connections = 50\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.root / "log"), "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "stop", check=False)

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def kill9(self) -> None:
        """SIGKILL the postmaster: its backends lose their connections at once."""
        pid = self.postmaster_pid()
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        # Orphaned backends exit when they notice the postmaster is gone; wait for the port to free.
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def signal_all(self, sig: int) -> None:
        """`sig` to the postmaster and each of its children (its backends): SIGSTOP freezes the
        server with every socket still open, SIGCONT thaws it."""
        master = self.postmaster_pid()
        pids = [master]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == master:
                    pids.append(int(entry))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def sql(self, statement: str, dsn: str | None = None) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(dsn or self.dsn(), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


def start_cluster() -> Postgres:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: scripts/test installs Debian's postgresql")
    root = Path(tempfile.mkdtemp(prefix="aod-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
    pg = Postgres(bindir, root, _free_port(), user)
    pg.init()
    pg.start()
    return pg


def remove_cluster(pg: Postgres) -> None:
    pg.stop()
    shutil.rmtree(pg.root, ignore_errors=True)


_databases = 0


def new_team_database(pg: Postgres) -> str:
    """A fresh database with the team schema applied by its owner; answers the owner's dsn."""
    from aod.forward.team_schema import migrate

    global _databases
    _databases += 1
    name = f"team_{os.getpid()}_{_databases}"
    pg.sql(f"CREATE DATABASE {name}")
    dsn = pg.dsn(db=name)
    migrate(dsn)
    return dsn


def member_role(pg: Postgres, role: str, *, team: bool = False) -> None:
    """A login role that is a member (its own tenant), and with `team` one that reads every tenant."""
    exists = pg.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
    if not exists:
        pg.sql(f"CREATE ROLE {role} LOGIN IN ROLE aod_member")
    if team:
        pg.sql(f"GRANT aod_team TO {role}")
