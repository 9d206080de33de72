"""The layers of docs/architecture.md hold: import-linter checks the `layers` contract of
pyproject.toml over aod's whole import graph, the contract is the documented block, and the
check does catch an import that points up or sideways, and a module no layer places."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with root's pyproject.toml, on the `aod` package found under root."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["id"] == "layers"]
    return list(layers["layers"])


def _documented_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Layers\n", 1)[1]
    block = section.split("```\n", 2)[1]
    return block.strip().splitlines()


def test_the_imports_keep_the_layers() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_the_checked_layers_are_the_documented_ones() -> None:
    assert _documented_layers() == _contract_layers()


def test_an_upward_a_sideways_and_an_unplaced_import_are_caught(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "aod", tmp_path / "aod", ignore=shutil.ignore_patterns("__pycache__", "dashboard"))
    # storage is a driver: it must not reach up into the HTTP layer.
    (tmp_path / "aod" / "storage" / "upward.py").write_text("from aod.api import errors\n")
    # notify and scm are features of one layer: neither may import the other.
    (tmp_path / "aod" / "notify" / "sideways.py").write_text("def run():\n    from aod.scm import observer\n")
    (tmp_path / "aod" / "newcomer.py").write_text('"""A module no layer places."""\n')
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert "aod.storage.upward -> aod.api.errors" in result.stdout
    assert "aod.notify.sideways -> aod.scm.observer" in result.stdout
    assert "aod.newcomer" in result.stdout
