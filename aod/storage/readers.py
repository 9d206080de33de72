"""A pool of reader threads, each with its own apsw connection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import apsw

from aod.storage.connection import open_connection

T = TypeVar("T")


class ReaderPool:
    """Runs read functions on worker threads, each inside one read transaction.

    One transaction per call gives the function a consistent snapshot across its statements;
    in WAL mode it never waits for the writer.
    """

    def __init__(self, path: Path, size: int, *, synchronous: str = "normal") -> None:
        self._path = path
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[apsw.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="aod-reader")

    def _connection(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_connection(self._path, synchronous=self._synchronous, query_only=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _run(self, fn: Callable[[apsw.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("ROLLBACK")

    async def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn)

    def close(self) -> None:
        """Wait for running reads, then close every connection. Blocks; call off the loop."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
