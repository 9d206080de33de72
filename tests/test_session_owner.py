"""One owner of session state, checked on the source (AST): a second writer of the sessions table
would break it without any behaviour test noticing at once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The sessions table's facts and status are written only by aod/sessions/ (the FactWriter), on
# top of the table's SQL in aod/storage/sessions.py: a second writer would set a status that no
# rule derived, or facts without the status they lead to.

OWNERS = ("aod/sessions/", "aod/storage/sessions.py")
# Modules that write the table for another reason, and why that is no second owner.
ALLOWED = {
    # `aod db check` inserts a row inside a savepoint that it always rolls back (the trigger round trip).
    "aod/storage/selfcheck.py": "rolled-back trigger round trip",
}
SQL_WRITE = re.compile(r"\b(?:UPDATE|INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM)\s+sessions\b", re.I)
STORAGE = "aod.storage.sessions"


def _storage_writers() -> set[str]:
    """The functions of aod/storage/sessions.py whose SQL writes the sessions table."""
    tree = ast.parse((REPO / "aod/storage/sessions.py").read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef)
        and any(isinstance(c, ast.Constant) and isinstance(c.value, str) and SQL_WRITE.search(c.value)
                for c in ast.walk(node))
    }


def session_state_writes(source: str, writers: set[str]) -> list[str]:
    """Where `source` writes the sessions table or derives a status itself, one line each."""
    tree = ast.parse(source)
    module_names: set[str] = set()  # names bound to aod.storage.sessions
    function_names: dict[str, str] = {}  # names bound to one of its writing functions
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "aod.storage":
            module_names |= {a.asname or a.name for a in node.names if a.name == "sessions"}
        elif isinstance(node, ast.ImportFrom) and node.module == STORAGE:
            function_names |= {a.asname or a.name: a.name for a in node.names if a.name in writers}
        elif isinstance(node, ast.ImportFrom) and node.module == "aod.lifecycle.status":
            function_names |= {a.asname or a.name: a.name for a in node.names if a.name == "derive_status"}
        elif isinstance(node, ast.Import):
            module_names |= {a.asname for a in node.names if a.name == STORAGE and a.asname}
    for node in ast.walk(tree):
        sql = SQL_WRITE.search(node.value) if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        if sql is not None:
            found.append(f"line {getattr(node, 'lineno', '?')}: SQL {sql.group(0)!r}")
        elif isinstance(node, ast.Call):
            callee = node.func
            if (isinstance(callee, ast.Attribute) and callee.attr in writers and isinstance(callee.value, ast.Name)
                    and callee.value.id in module_names):
                found.append(f"line {node.lineno}: {callee.value.id}.{callee.attr}()")
            elif isinstance(callee, ast.Name) and callee.id in function_names:
                found.append(f"line {node.lineno}: {function_names[callee.id]}()")
            elif isinstance(callee, ast.Attribute) and callee.attr == "derive_status":
                found.append(f"line {node.lineno}: derive_status()")
    return found


def test_only_the_sessions_layer_writes_session_facts_and_status() -> None:
    writers = _storage_writers()
    offenders = {}
    for path in sorted((REPO / "aod").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        if name.startswith(OWNERS) or name in ALLOWED or name == "aod/lifecycle/status.py":
            continue
        found = session_state_writes(path.read_text(), writers)
        if found:
            offenders[name] = found
    assert not offenders, f"only aod/sessions/ (its FactWriter) writes a session's facts and status: {offenders}"


def test_the_owner_check_knows_the_writing_functions_and_catches_each_way_of_writing() -> None:
    writers = _storage_writers()
    assert {"create", "update", "absorb"} <= writers and "get" not in writers and "add_alias" not in writers
    caught = {
        "from aod.storage import sessions\nsessions.update(conn, 'x', {'status': 'idle'})": "sessions.update()",
        "from aod.storage import sessions as s\ns.create(conn, {})": "s.create()",
        "from aod.storage.sessions import absorb as fold\nfold(conn, 'a', 'b')": "absorb()",
        "import aod.storage.sessions as rows\nrows.update(conn, 'x', {})": "rows.update()",
        "conn.execute('update  sessions set status = ?', ('idle',))": "SQL 'update  sessions'",
        "conn.execute(f\"INSERT OR REPLACE INTO sessions ({cols}) VALUES (?)\")": "SQL 'INSERT OR REPLACE INTO sessions'",
        "from aod.lifecycle.status import derive_status\nderive_status(facts, now=1, stuck_after=2)": "derive_status()",
    }
    for source, what in caught.items():
        (line,) = session_state_writes(source, writers)
        assert line.endswith(what), (source, line)
    innocent = (
        "from aod.storage import sessions\nsessions.get(conn, 'x')\nsessions.add_alias(conn, 'a', 'b', 'c', 'now')",
        "conn.execute('SELECT * FROM sessions')\nconn.execute('UPDATE session_aliases SET session_id = ?', ('x',))",
        "from aod.storage import prs\nprs.update(conn)",
    )
    for source in innocent:
        assert session_state_writes(source, writers) == [], source
