"""The team store's side of forwarding: one psycopg 3 connection and the upsert of one batch.

Blocking (psycopg's sync API): the job runs it in a thread, so neither PostgreSQL's latency nor
the work of encoding a batch runs on the event loop. A batch is one PostgreSQL transaction: each
table's rows are COPYed into a temporary table and merged with INSERT … ON CONFLICT DO UPDATE,
so a batch sent twice (a crash before the local cursor moved) leaves the same rows, once.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql

from aod.forward import team_schema
from aod.storage.forward import COLUMNS, Batch

# Each team table's key, tenant and machine included; events are keyed by their uid alone.
KEYS: dict[str, tuple[str, ...]] = {
    "projects": ("tenant_id", "machine_id", "id"),
    "sessions": ("tenant_id", "machine_id", "id"),
    "events": ("uid",),
    "prs": ("tenant_id", "machine_id", "url"),
    "pr_checks": ("tenant_id", "machine_id", "pr_url", "name", "commit_sha"),
    "escalations": ("tenant_id", "machine_id", "id"),
    "usage": ("tenant_id", "machine_id", "message_id", "request_id"),
}
CONNECT_TIMEOUT = 5
# A statement that hangs (a stopped server that still holds the socket) fails instead of pinning the thread.
STATEMENT_TIMEOUT_MS = 30_000


def _without_nul(row: tuple[object, ...]) -> tuple[object, ...]:
    """PostgreSQL's text holds no NUL character and its jsonb no \\u0000, which SQLite keeps (a
    tool's output, a prompt): each becomes U+FFFD, or that row would fail its batch forever."""
    if not any(isinstance(v, str) and ("\x00" in v or "\\u0000" in v) for v in row):
        return row
    return tuple(_clean(v) if isinstance(v, str) else v for v in row)


def _clean(text: str) -> str:
    text = text.replace("\x00", "\ufffd")
    if "\\u0000" not in text:
        return text
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # not JSON: a plain text column, where the escape is just six characters
    return orjson.dumps(_clean_json(parsed)).decode()


def _clean_json(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    if isinstance(value, dict):
        return {_clean_json(k): _clean_json(v) for k, v in value.items()}
    return value


def target_of(dsn: str) -> str:
    """The dsn without its password: names the store in the local cursor, /v1/status and logs."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host)
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class TeamStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.tenant: str | None = None  # the role PostgreSQL authenticated: the rows' tenant_id

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT, keepalives=1, keepalives_idle=10,
                                   keepalives_interval=5, keepalives_count=2,
                                   options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
            try:
                missing = "SELECT to_regclass('aod.events') IS NULL OR to_regclass('aod.usage') IS NULL"
                if conn.execute(missing).fetchone() == (True,):
                    # A new (or older) team store: its schema, if this role may create it (else the error says so).
                    conn.close()
                    team_schema.migrate(self.dsn)
                    return self._connect()
                row = conn.execute("SELECT current_user").fetchone()
                self.tenant = str(row[0]) if row else None
                for table, columns in COLUMNS.items():
                    # Session-lifetime staging tables, emptied at each commit.
                    conn.execute(sql.SQL(
                        "CREATE TEMP TABLE {} ON COMMIT DELETE ROWS AS SELECT {} FROM aod.{} WITH NO DATA"
                    ).format(sql.Identifier(f"stage_{table}"), sql.SQL(", ").join(map(sql.Identifier, columns)),
                             sql.Identifier(table)))
                conn.commit()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def upsert(self, batch: Batch, machine_id: str) -> None:
        """One transaction: every row of the batch is in the team store when this returns."""
        try:
            conn = self._connect()
            with conn.transaction():
                for table, rows in batch.rows.items():
                    if rows:
                        self._merge(conn, table, rows, machine_id)
        except BaseException:
            self.close()  # the next attempt starts on a fresh connection
            raise

    def ping(self) -> None:
        """A round trip: the half-open probe when there is nothing to ship."""
        try:
            self._connect().execute("SELECT 1")
        except BaseException:
            self.close()
            raise

    def _merge(self, conn: psycopg.Connection[tuple[object, ...]], table: str, rows: list[tuple[object, ...]],
               machine_id: str) -> None:
        columns = COLUMNS[table]
        stage = sql.Identifier(f"stage_{table}")
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    stage, sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
                for row in rows:
                    copy.write_row(_without_nul(row))
            keys = KEYS[table]
            names = ("tenant_id", "machine_id", *columns)
            updated = [c for c in names if c not in keys and c != "tenant_id"]
            cur.execute(sql.SQL(
                "INSERT INTO aod.{table} ({names}) SELECT current_user, %s, {columns} FROM {stage}"
                " ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            ).format(
                table=sql.Identifier(table), names=sql.SQL(", ").join(map(sql.Identifier, names)),
                columns=sql.SQL(", ").join(map(sql.Identifier, columns)), stage=stage,
                keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
                sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updated),
            ), (machine_id,))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
