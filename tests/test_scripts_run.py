"""scripts/run installs aod only when the checkout changed, and says how to put ~/.local/bin on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO


def snapshot(dest: Path) -> Path:
    """What scripts/run installs from, copied: other work in this checkout must not change it meanwhile."""
    (dest / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "run", dest / "scripts" / "run")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "aod", dest / "aod", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_a_second_start_does_not_reinstall_until_a_package_file_changes(tmp_path: Path) -> None:
    checkout = snapshot(tmp_path / "checkout")
    home = tmp_path / "home"
    home.mkdir()
    bindir = home / ".local" / "bin"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
    env = base | {"HOME": str(home), "PYTHON": sys.executable, "SHELL": "/bin/bash",
                  "PATH": os.pathsep.join(p for p in base["PATH"].split(os.pathsep) if p != str(bindir))}

    def run(**extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = subprocess.run([str(checkout / "scripts" / "run"), "--install-only"], env=env | extra,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done, time.monotonic() - started

    def installed() -> Path:
        (init,) = (home / ".local" / "lib" / "aod").glob("lib/python*/site-packages/aod/__init__.py")
        return init

    def identity(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns

    first, _ = run()
    assert "installing aod" in first.stderr
    # One line with the exact shell line to paste.
    (hint,) = [line for line in first.stderr.splitlines() if "is not on your PATH" in line]
    assert hint.endswith("""echo 'export PATH="$HOME/.local/bin:$PATH"' >> ~/.bashrc""")
    assert subprocess.run([str(bindir / "aod"), "--help"], capture_output=True, env=env).returncode == 0
    before = identity(installed())

    second, took = run(PATH=f"{bindir}{os.pathsep}{env['PATH']}")
    assert "up to date" in second.stderr and "installing" not in second.stderr
    assert "is not on your PATH" not in second.stderr
    assert identity(installed()) == before, "pip ran again: it replaces every installed file"
    assert took < 10, f"{took:.2f}s"  # pip alone takes seconds; the hash takes milliseconds

    os.utime(checkout / "aod" / "__init__.py")  # a newer mtime is not a change
    assert "up to date" in run()[0].stderr and identity(installed()) == before

    with (checkout / "aod" / "__init__.py").open("a") as f:
        f.write("# a changed checkout\n")
    assert "installing aod" in run()[0].stderr
    assert installed().read_text().endswith("# a changed checkout\n")
    assert "up to date" in run()[0].stderr
