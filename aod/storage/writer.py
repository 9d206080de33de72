"""The single writer: one thread, one apsw connection, group commit.

Callers hand in a function of the connection. The thread takes whatever requests are queued
(up to `batch_max`, waiting at most `batch_wait` for stragglers once the queue runs dry),
runs each inside its own SAVEPOINT of one `BEGIN IMMEDIATE` transaction, commits once, and
only then resolves the callers' futures. A request that raises rolls back to its savepoint
and fails alone; a failed COMMIT fails every request of the batch, since none of them landed.

A batched request (`submit_batched`) names a function of the connection and a list: every
batched request of one transaction that names the same function is one call with all their
items (ingest reads and updates a session touched by many requests once). Its weight (ingest:
its event count) bounds a transaction, and a request of `alone_weight` or more is written in a
transaction of its own, where it needs no savepoint.
Failures that mean a full disk or a read-only database go to the storage health state, and a
commit that changed rows clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import apsw

from aod.storage.health import StorageHealth, note_errno

WriteFn = Callable[[apsw.Connection], Any]
T = TypeVar("T")
ItemT = TypeVar("ItemT")
# Called once per transaction with the items of its requests that name it; one result per item.
BatchFn = Callable[[apsw.Connection, list[ItemT]], list[T]]
# Called on the writer thread after each transaction with its size and seconds (the metrics).
CommitObserver = Callable[[int, float], None]


@dataclass
class WriterStats:
    transactions: int = 0
    writes: int = 0
    failed_writes: int = 0
    largest_batch: int = 0


class _Request:
    __slots__ = ("fn", "future", "item", "loop", "weight")

    def __init__(
        self, fn: Any, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, item: Any = None, weight: int = 1,
    ) -> None:
        self.fn = fn  # a WriteFn, or a BatchFn when `item` is not _PLAIN
        self.future = future
        self.loop = loop
        self.item = item
        self.weight = weight


_STOP = object()
_PLAIN = object()


class WriterClosed(RuntimeError):
    """The writer no longer accepts requests (the database is closing)."""


class Writer:
    def __init__(
        self,
        conn: apsw.Connection,
        *,
        batch_max: int = 512,
        batch_wait: float = 0.0002,
        max_weight: int = 5000,
        alone_weight: int = 128,
        on_commit: Callable[[], None] | None = None,
        between_transactions: Callable[[apsw.Connection], None] | None = None,
        health: StorageHealth | None = None,
    ) -> None:
        self._conn = conn
        self._batch_max = batch_max
        self._batch_wait = batch_wait
        # Bounds one transaction, so a flood of bulk requests cannot hold the writer for long.
        self._max_weight = max_weight
        self._alone_weight = alone_weight
        self._carry: _Request | None = None  # taken from the queue, but for the next transaction
        self._on_commit = on_commit
        self._between_transactions = between_transactions
        self._health = health
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._last_batch_size = 1
        self.stats = WriterStats()
        self.observer: CommitObserver | None = None
        self._thread = threading.Thread(target=self._run, name="aod-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[apsw.Connection], T]) -> asyncio.Future[T]:
        if self._closed:
            raise WriterClosed("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Request(fn, future, loop, _PLAIN))
        return future

    def submit_batched(self, fn: BatchFn[ItemT, T], item: ItemT, *, weight: int = 1) -> asyncio.Future[T]:
        """Queue `item` for `fn(conn, items)`, one call per transaction for all items naming `fn`."""
        if self._closed:
            raise WriterClosed("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Request(fn, future, loop, item, weight))
        return future

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the writer thread (approximate, as any queue size read by another thread)."""
        return self._queue.qsize()

    @property
    def connection(self) -> apsw.Connection:
        """The writer's connection; only for use after `close()` returned."""
        return self._conn

    def close(self) -> None:
        """Finish every queued request, then stop the thread. Blocks; call off the loop."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first, self._carry = self._carry or self._queue.get(), None
            if first is _STOP:
                break
            batch, stopping = self._gather(first)
            self._commit(batch)
            if self._between_transactions is not None:
                # Housekeeping (the checkpoint catch-up) may fail; the writer must live on.
                try:
                    self._between_transactions(self._conn)
                except apsw.Error as exc:
                    if self._health is not None:
                        self._health.failed(note_errno(exc, self._conn))

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch = [first]
        weight = first.weight
        if weight >= self._alone_weight:
            return batch, False
        deadline: float | None = None
        get = self._queue.get
        while len(batch) < self._batch_max:
            try:
                item = get(block=False)
            except queue.Empty:
                # Wait for stragglers only while the batch is smaller than the last one: a
                # lone writer never pays the wait, and steady concurrent writers usually
                # arrive together anyway (they were all woken by the previous commit).
                if self._batch_wait <= 0 or len(batch) >= self._last_batch_size:
                    break
                if deadline is None:
                    deadline = time.monotonic() + self._batch_wait
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                return batch, True
            if item.weight >= self._alone_weight or weight + item.weight > self._max_weight:
                # Sharing a transaction would put a large write in a savepoint, whose
                # sub-journal copies every page it changes: it goes next (alone, if large).
                self._carry = item
                break
            weight += item.weight
            batch.append(item)
        self._last_batch_size = len(batch)
        return batch, False

    def _commit(self, batch: list[_Request]) -> None:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        changes_before = conn.total_changes()
        started = time.perf_counter()
        units = _units(batch)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if len(units) == 1:
                    # Alone in its transaction, a write needs no savepoint, and a savepoint would
                    # cost it: SQLite copies every page changed under one into a sub-journal
                    # (measured: bulk ingest at half speed).
                    outcomes = _run_alone(conn, units[0])
                    if outcomes[0][0]:
                        conn.execute("COMMIT")
                    elif not conn.getautocommit():  # a full disk may have rolled it back already
                        conn.execute("ROLLBACK")
                else:
                    for unit in units:
                        outcomes.extend(_run_in_savepoint(conn, unit))
                    conn.execute("COMMIT")
            except BaseException:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # the transaction as a whole failed: nothing of it landed
            outcomes = [(False, exc)] * len(batch)
        if self.observer is not None:
            self.observer(len(batch), time.perf_counter() - started)
        self._report(outcomes, changes_before)
        stats = self.stats
        stats.transactions += 1
        stats.writes += len(batch)
        stats.failed_writes += sum(1 for ok, _ in outcomes if not ok)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for req, (ok, value) in zip([r for unit in units for r in unit], outcomes, strict=True):
            by_loop.setdefault(req.loop, []).append((req.future, ok, value))
        # One wake-up per loop per batch, not one per write.
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed; its callers are gone
                loop.call_soon_threadsafe(_resolve, items, self._on_commit)

    def _report(self, outcomes: list[tuple[bool, Any]], changes_before: int) -> None:
        """Tell the health state what this transaction showed about the disk. Runs before the
        callers see their errors, so the OS error is on them by then (the API maps it to 507)."""
        health, conn = self._health, self._conn
        committed = False
        last: object = None
        for ok, value in outcomes:
            if ok:
                committed = True
            elif value is not last:  # a failed transaction repeats one error for every request
                last = value
                note_errno(value, conn)
                if health is not None:
                    health.failed(value)
        # A transaction that changed nothing writes nothing, so it proves nothing about the disk.
        if committed and health is not None and health.degraded and conn.total_changes() != changes_before:
            health.wrote()


def _units(batch: list[_Request]) -> list[list[_Request]]:
    """The calls a transaction makes: each plain write alone, batched ones one per function."""
    units: list[list[_Request]] = []
    batched: dict[Any, list[_Request]] = {}
    for req in batch:
        if req.item is _PLAIN:
            units.append([req])
        elif req.fn in batched:
            batched[req.fn].append(req)
        else:
            units.append(batched.setdefault(req.fn, [req]))
    return units


def _call(conn: apsw.Connection, unit: list[_Request]) -> list[tuple[bool, Any]]:
    first = unit[0]
    if first.item is _PLAIN:
        return [(True, first.fn(conn))]
    results = first.fn(conn, [req.item for req in unit])
    if len(results) != len(unit):
        raise RuntimeError(f"a batched write returned {len(results)} results for {len(unit)} items")
    return [(True, result) for result in results]


def _run_alone(conn: apsw.Connection, unit: list[_Request]) -> list[tuple[bool, Any]]:
    try:
        return _call(conn, unit)
    except BaseException as exc:  # even SystemExit from one caller must not kill the writer thread
        return [(False, exc)] * len(unit)


def _run_in_savepoint(conn: apsw.Connection, unit: list[_Request]) -> list[tuple[bool, Any]]:
    conn.execute("SAVEPOINT aod_write")
    try:
        outcomes = _call(conn, unit)
    except BaseException as exc:  # even SystemExit from one caller must not kill the writer thread
        if conn.getautocommit() and isinstance(exc, Exception):
            # SQLite rolled the whole transaction back (a full disk, an I/O error): the writes
            # before this one are gone too, so the batch fails with this cause.
            raise
        conn.execute("ROLLBACK TO aod_write")
        conn.execute("RELEASE aod_write")
        return [(False, exc)] * len(unit)
    conn.execute("RELEASE aod_write")
    return outcomes


def _resolve(items: list[tuple[asyncio.Future[Any], bool, Any]], on_commit: Callable[[], None] | None) -> None:
    for future, ok, value in items:
        if future.done():  # the caller was cancelled; its write landed anyway
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    if on_commit is not None:
        on_commit()
