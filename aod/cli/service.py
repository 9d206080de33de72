"""`aod service install|uninstall|status|print`: aod as a systemd user service or a launchd agent.

The files come from aod/service_units.py, rendered for this installation. Install and uninstall
touch only files that carry an intact aod stamp (or any with --force), so a unit the user edited
is neither overwritten nor deleted by accident. The service manager is driven with its own
commands (`systemctl --user`, `launchctl`); where none answers (a container, WSL without
systemd), the files are still written and the message says how to run aod instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aod.hook import write_atomically
from aod.service_units import (
    LAUNCHD_LABEL,
    SYSTEMD_UNITS,
    Installation,
    Stamp,
    judge,
    render_launchd,
    render_systemd,
)
from aod.service_units import unit_dir as _unit_dir

# subprocess and shutil wait for the commands that run a service manager: `aod status` builds this parser too.
if TYPE_CHECKING:
    import subprocess

__all__ = ["EXIT_FAILED", "NoServiceManager", "UnitState", "add_parser", "run", "service_status"]

EXIT_FAILED = 1
MANAGER_TIMEOUT = 60
# What systemctl says when no user instance runs for this login (or none at all).
_NO_BUS = re.compile(r"Failed to connect to (user scope )?bus|DBUS_SESSION_BUS_ADDRESS|not been booted with systemd"
                     r"|Failed to connect to the service manager")
_NO_SYSTEMD_HELP = (
    "This happens in containers and on WSL without systemd. Run `aod serve` in a terminal or a tmux"
    " window instead; or, where systemd runs, give your user a systemd instance that outlives your"
    " logins (`loginctl enable-linger $USER`, then log in again) and run:"
    " systemctl --user daemon-reload && systemctl --user enable --now aod.socket aod.service"
)


class NoServiceManager(RuntimeError):
    """The service manager cannot be asked (absent, or no instance for this user)."""


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    service = subparsers.add_parser("service", parents=parents, help="run aod as a systemd user service or launchd agent")
    actions = service.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    helps = {
        "install": "write the unit for this installation, enable and start it",
        "uninstall": "stop the service and remove the files install wrote",
        "status": "whether the unit is installed, enabled and running",
        "print": "print the unit install would write",
    }
    for name, text in helps.items():
        action = actions.add_parser(name, parents=parents, help=text)
        manager = action.add_mutually_exclusive_group()
        manager.add_argument("--systemd", dest="manager", action="store_const", const="systemd",
                             help="a systemd user unit (the default except on macOS)")
        manager.add_argument("--launchd", dest="manager", action="store_const", const="launchd",
                             help="a launchd user agent (the default on macOS)")
        if name == "install":
            action.add_argument("--no-start", action="store_true", help="write the files only")
        if name in ("install", "uninstall"):
            action.add_argument("--force", action="store_true", help="also replace or remove files aod did not write"
                                " or that were edited since")


def run(args: argparse.Namespace) -> int:
    kind = args.manager or ("launchd" if sys.platform == "darwin" else "systemd")
    command = args.service_command
    if command == "status":
        return _print_status(kind)
    if command == "uninstall":  # needs no config: a broken one must not keep the service in place
        return _uninstall(kind, _names(kind), args.force)
    inst = _installation(args)
    files = render_launchd(inst) if kind == "launchd" else render_systemd(inst)
    if command == "install":
        return _install(kind, files, args.no_start, args.force, inst.socket_path)
    for name, text in files.items():
        if len(files) > 1:
            print(f"# ==> {_unit_dir(kind, os.environ) / name} <==")
        sys.stdout.write(text)
    return 0


# --- what gets written ---------------------------------------------------------------------------


def _installation(args: argparse.Namespace) -> Installation:
    from aod.cli.context import config_from_args
    from aod.paths import resolve_config_path

    config = config_from_args(args)
    config_file, named = resolve_config_path(getattr(args, "config", None))
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    return Installation(
        python=os.path.abspath(sys.executable),  # the venv's python, not the one it links to
        data_dir=config.data_dir.absolute(),
        socket_path=config.socket_path.absolute(),
        config_file=config_file.absolute() if named else None,
        tcp=config.server.tcp,
        path=os.environ.get("PATH") or os.defpath,
        log_file=home / "Library" / "Logs" / "aod.log",
    )


def _names(kind: str) -> list[str]:
    return [f"{LAUNCHD_LABEL}.plist"] if kind == "launchd" else list(SYSTEMD_UNITS)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")  # a binary file is simply not aod's
    except FileNotFoundError:
        return None


def _refused(paths: dict[Path, Stamp], force: bool, verb: str) -> bool:
    blocked = {p: s for p, s in paths.items() if s in (Stamp.EDITED, Stamp.FOREIGN)}
    if blocked and not force:
        for path, stamp in blocked.items():
            print(f"aod: not {verb}ing {path}: {stamp.value}; with --force install and uninstall touch it anyway",
                  file=sys.stderr)
        return True
    return False


# --- install / uninstall ------------------------------------------------------------------------


def _install(kind: str, files: dict[str, str], no_start: bool, force: bool, socket_path: Path) -> int:
    import subprocess

    directory = _unit_dir(kind, os.environ)
    targets = {directory / name: text for name, text in files.items()}
    if _refused({p: judge(_read(p)) for p in targets}, force, "replac"):
        return EXIT_FAILED
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        write_atomically(str(path), str(path.parent / f".{path.name}.tmp"), text.encode(), mode=0o644)
        print(f"wrote {path}")
    if no_start:
        print(f"not started (--no-start); to start it: {_start_hint(kind, targets)}")
        return 0
    try:
        foreign = _foreign_daemon(kind, socket_path)
        if foreign is not None:
            print(f"aod: the files are written, but {foreign} answers on {socket_path}: starting the service"
                  " would collide with it; stop it, then run `aod service install` again", file=sys.stderr)
            return EXIT_FAILED
        _start(kind, targets)
    except NoServiceManager as exc:
        print(f"aod: the files are written, but the service is not started: {exc}", file=sys.stderr)
        if kind == "systemd":
            print(_NO_SYSTEMD_HELP, file=sys.stderr)
        return EXIT_FAILED
    except subprocess.CalledProcessError as exc:
        print(f"aod: `{' '.join(exc.cmd)}` failed: {(exc.stderr or '').strip()}", file=sys.stderr)
        print(f"its log: {_log_hint(kind)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"started; `aod service status` shows it, its log: {_log_hint(kind)}")
    return 0


def _uninstall(kind: str, names: list[str], force: bool) -> int:
    import subprocess

    directory = _unit_dir(kind, os.environ)
    stamps = {directory / name: judge(_read(directory / name)) for name in names}
    if _refused(stamps, force, "remov"):
        return EXIT_FAILED
    present = [path for path, stamp in stamps.items() if stamp is not Stamp.MISSING]
    if not present:
        print(f"nothing to uninstall: no {' or '.join(str(p) for p in stamps)}")
        return 0
    try:
        _stop(kind, present)
    except NoServiceManager as exc:
        print(f"aod: warning: could not stop the service ({exc}); removing its files anyway", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(f"aod: warning: `{' '.join(exc.cmd)}` failed ({(exc.stderr or '').strip()}); removing the files anyway",
              file=sys.stderr)
    for path in present:
        path.unlink(missing_ok=True)
        print(f"removed {path}")
    if kind == "systemd":
        # Best effort: without a manager, nothing has the removed units loaded.
        with contextlib.suppress(NoServiceManager, subprocess.CalledProcessError):
            _systemctl("daemon-reload")
    return 0


def _start_hint(kind: str, targets: dict[Path, str]) -> str:
    if kind == "launchd":
        return f"launchctl bootstrap gui/{os.getuid()} {next(iter(targets))}"
    return "systemctl --user daemon-reload && systemctl --user enable --now " + " ".join(SYSTEMD_UNITS)


def _log_hint(kind: str) -> str:
    if kind == "launchd":
        return str(Path(os.environ.get("HOME") or os.path.expanduser("~")) / "Library" / "Logs" / "aod.log")
    return "journalctl --user -u aod.service"


def _foreign_daemon(kind: str, socket_path: Path) -> str | None:
    """Who holds the socket (and so the TCP port), when the service manager did not start it."""
    from aod.unix_socket import probe

    answer = probe(str(socket_path))
    if not answer.answers:
        return None
    # An active aod.socket answers too (and the probe starts aod.service): that one is the manager's.
    names = [LAUNCHD_LABEL] if kind == "launchd" else list(SYSTEMD_UNITS)
    if any(_state(kind, name)[1] in ("active", "activating", "reloading", "running") for name in names):
        return None
    return "a daemon the service manager did not start" + (f" (pid {answer.pid})" if answer.pid else "")


# --- the service managers -------------------------------------------------------------------------


def _tool(name: str, why: str) -> str:
    import shutil

    exe = shutil.which(name)
    if exe is None:
        raise NoServiceManager(f"{name} is not on PATH ({why})")
    return exe


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    import subprocess

    exe = _tool("systemctl", "this system does not run systemd")
    result = subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=MANAGER_TIMEOUT)
    if result.returncode != 0 and _NO_BUS.search(result.stderr):
        first = result.stderr.strip().splitlines()[0]
        raise NoServiceManager(f"no systemd user instance answers for you (systemctl --user: {first})")
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
    return result


def _launchctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    import subprocess

    exe = _tool("launchctl", "launchd runs only on macOS")
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=MANAGER_TIMEOUT)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
    return result


def _domain() -> str:
    return f"gui/{os.getuid()}"


def _start(kind: str, targets: dict[Path, str]) -> None:
    if kind == "launchd":
        _launchctl("bootout", f"{_domain()}/{LAUNCHD_LABEL}", check=False)  # a reinstall replaces the loaded one
        _launchctl("bootstrap", _domain(), str(next(iter(targets))))
        return
    _systemctl("daemon-reload")
    _systemctl("enable", *SYSTEMD_UNITS)
    # Restart, not start: a reinstall must take the new files (and a new socket address) at once.
    _systemctl("restart", *SYSTEMD_UNITS)


def _stop(kind: str, present: list[Path]) -> None:
    if kind == "launchd":
        _launchctl("bootout", f"{_domain()}/{LAUNCHD_LABEL}", check=False)  # fails only when it is not loaded
        return
    _systemctl("disable", "--now", *(p.name for p in present))


def _state(kind: str, name: str) -> tuple[str, str]:
    """(enabled, active) as the manager words them."""
    if kind == "launchd":
        result = _launchctl("print", f"{_domain()}/{LAUNCHD_LABEL}", check=False)
        if result.returncode != 0:
            return "not loaded", "inactive"
        found = re.search(r"^\s*state = (\S+)", result.stdout, flags=re.M)
        return "loaded", found[1] if found else "unknown"
    # With no unit file, is-enabled prints nothing (only an error on stderr).
    enabled = _systemctl("is-enabled", name, check=False).stdout.strip() or "not enabled"
    active = _systemctl("is-active", name, check=False).stdout.strip() or "unknown"
    return enabled, active


# --- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitState:
    name: str
    path: Path
    stamp: Stamp
    enabled: str | None  # None: the manager could not be asked (see error)
    active: str | None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.stamp in (Stamp.OURS, Stamp.EDITED) and self.active in ("active", "running")


def service_status(kind: str | None = None) -> list[UnitState]:
    """Each of aod's service files: whether it is there and aod's, and what the manager says of it."""
    kind = kind or ("launchd" if sys.platform == "darwin" else "systemd")
    directory = _unit_dir(kind, os.environ)
    states = []
    for name in _names(kind):
        path = directory / name
        try:
            enabled, active = _state(kind, LAUNCHD_LABEL if kind == "launchd" else name)
            states.append(UnitState(name, path, judge(_read(path)), enabled, active))
        except NoServiceManager as exc:
            states.append(UnitState(name, path, judge(_read(path)), None, None, str(exc)))
    return states


def _print_status(kind: str) -> int:
    states = service_status(kind)
    for s in states:
        manager = s.error if s.error is not None else f"{s.enabled}, {s.active}"
        print(f"{s.name}: {s.stamp.value} ({s.path}); {manager}")
    return 0 if all(s.running for s in states) else EXIT_FAILED
