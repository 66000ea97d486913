"""The SQLite store's writer: one daemon thread committing queued records in batches.

Callers on the event loop only put ``(statement, raw values)`` on a queue. The thread takes
everything queued at once, encodes it to JSON and writes it in a single transaction
(``executemany`` per table), so a run with thousands of node transitions costs a handful of
commits while every transition still reaches the disk within one batch.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from enum import Enum
from pathlib import Path
from typing import Any, Final

from .._errors import StoreError

__all__ = [
    "EVENT",
    "NODE",
    "RUN_FINISHED",
    "RUN_PAUSE",
    "RUN_RELEASE",
    "RUN_STARTED",
    "BatchWriter",
]

_COMMIT_INTERVAL = 0.005  # seconds; an explicit flush never waits for it
_BUSY_RETRIES: Final = 3

# A resumed run is started again: it keeps its first started_at (the history does not reorder
# it) and loses the result of its pause.
RUN_STARTED: Final = """
INSERT INTO runs (run_id, workflow_id, status, inputs, document, source, manifest,
                  parent_run_id, started_at, owner_id, owner_host, owner_pid, lease_expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    owner_id = coalesce(excluded.owner_id, runs.owner_id),
    owner_host = coalesce(excluded.owner_host, runs.owner_host),
    owner_pid = coalesce(excluded.owner_pid, runs.owner_pid),
    lease_expires_at = coalesce(excluded.lease_expires_at, runs.lease_expires_at),
    workflow_id = excluded.workflow_id,
    status = excluded.status,
    inputs = excluded.inputs,
    document = excluded.document,
    source = excluded.source,
    manifest = excluded.manifest,
    parent_run_id = coalesce(excluded.parent_run_id, runs.parent_run_id),
    finished_at = NULL,
    duration_ms = NULL,
    outputs = NULL,
    error = NULL,
    result = NULL
"""

# A finished or paused run holds no process, so it loses its owner. A paused run keeps the
# timer that record_pause set unless its result names one; a finished run waits for nothing.
RUN_FINISHED: Final = """
INSERT INTO runs (run_id, workflow_id, status, inputs, started_at, finished_at, duration_ms,
                  outputs, error, result, pause, wake_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    status = excluded.status,
    finished_at = excluded.finished_at,
    duration_ms = excluded.duration_ms,
    outputs = excluded.outputs,
    error = excluded.error,
    result = excluded.result,
    owner_id = NULL,
    owner_host = NULL,
    owner_pid = NULL,
    lease_expires_at = NULL,
    pause = CASE WHEN excluded.status = 'paused' THEN coalesce(excluded.pause, runs.pause) END,
    wake_at = CASE WHEN excluded.status = 'paused' THEN coalesce(excluded.wake_at, runs.wake_at) END
"""

RUN_PAUSE: Final = """
UPDATE runs SET pause = ?, wake_at = ? WHERE run_id = ?
"""

# Only the owner's own lease is dropped: a host that lost the run must not free another's.
RUN_RELEASE: Final = """
UPDATE runs
SET owner_id = NULL, owner_host = NULL, owner_pid = NULL, lease_expires_at = NULL
WHERE run_id = ? AND owner_id = ?
"""

NODE: Final = """
INSERT INTO node_results (run_id, node_id, status, attempts, output, error, started_at,
                          duration_ms, ports, settled_seq, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, node_id) DO UPDATE SET
    status = excluded.status,
    attempts = excluded.attempts,
    output = excluded.output,
    error = excluded.error,
    started_at = coalesce(excluded.started_at, node_results.started_at),
    duration_ms = excluded.duration_ms,
    ports = excluded.ports,
    settled_seq = excluded.settled_seq,
    reason = excluded.reason
"""

# OR REPLACE: a run continued after a crash may repeat a sequence number whose first write
# never committed completely; the later event is the true one.
EVENT: Final = """
INSERT OR REPLACE INTO events (run_id, seq, type, ts, node, data) VALUES (?, ?, ?, ?, ?, ?)
"""

_Item = tuple[str, tuple[Any, ...]]
_Segment = tuple[str, list[tuple[Any, ...]]]


class _Waiter:
    """A flush marker: ``wake`` runs in the writer thread once earlier items are committed."""

    __slots__ = ("wake",)

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake


_STOP: Final = object()


class BatchWriter:
    """The queue and the thread behind one store; the thread starts with the first item.

    A failed batch is kept (the first failure explains the rest) for :meth:`take_error`;
    the thread itself outlives any one bad batch.
    """

    def __init__(self, path: Path, connect: Callable[[], sqlite3.Connection]) -> None:
        self._path = path
        self._connect = connect
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        """True once something was queued."""
        return self._thread is not None

    def put(self, statement: str, values: tuple[Any, ...]) -> None:
        """Queue one record; never blocks."""
        if self._thread is None:
            self._start()
        if statement in _ENCODED_AT_PUT:
            # Small, frequent rows are encoded here: encoding in the writer thread would make
            # the event loop's thread wait for the GIL, which costs more than the encoding.
            try:
                values = _ENCODERS[statement](values)
            except (TypeError, ValueError, RecursionError) as exc:
                self._keep(
                    StoreError(f"{self._path}: cannot encode a record of run {values[0]}: {exc}")
                )
                return
            statement = _PRE_ENCODED[statement]
        self._queue.put((statement, values))

    async def wait(self) -> None:
        """Return, without blocking the loop, once everything queued before is committed."""
        if self._thread is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            await self._wait_in_thread()
            return
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # A closed loop raises RuntimeError; whoever was waiting is gone with it.
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

        self._queue.put(_Waiter(wake))
        await future

    async def _wait_in_thread(self) -> None:
        # Another async backend: wait for the marker in a worker thread instead.
        import anyio.to_thread  # noqa: PLC0415 (only for non-asyncio loops)

        done = threading.Event()
        self._queue.put(_Waiter(done.set))
        await anyio.to_thread.run_sync(done.wait)

    def stop(self) -> None:
        """Commit what is queued and end the thread (blocks until it has)."""
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def take_error(self) -> BaseException | None:
        """The first failure since the last call, if any."""
        with self._lock:
            error, self._error = self._error, None
        return error

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._run, name=f"polyhost-store:{self._path.name}", daemon=True
            )
            thread.start()
            self._thread = thread

    def _keep(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
        except StoreError as exc:
            self._keep(exc)
        stop = False
        last_commit = 0.0
        while not stop:
            batch = [self._queue.get()]
            batch.extend(_drain(self._queue))
            # Many tiny transactions cost more than the rows in them. Unless someone waits on a
            # flush, commit at most once per interval and let records pile up meanwhile.
            if not any(isinstance(e, _Waiter) or e is _STOP for e in batch):
                batch.extend(self._gather(last_commit + _COMMIT_INTERVAL))
            stop = self._write_batch(conn, batch)
            last_commit = time.monotonic()
            # Do not hold the last batch (node outputs) while waiting for the next one.
            del batch
        # An item queued while stop() was putting the marker still gets written.
        self._write_batch(conn, _drain(self._queue))
        if conn is not None:
            conn.close()

    def _gather(self, until: float) -> list[object]:
        """Items that arrive before ``until``; returns early when a flush or stop arrives."""
        items: list[object] = []
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return items
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                return items
            items.append(item)
            if isinstance(item, _Waiter) or item is _STOP:
                items.extend(_drain(self._queue))
                return items

    def _write_batch(self, conn: sqlite3.Connection | None, batch: list[object]) -> bool:
        stop = False
        waiters: list[_Waiter] = []
        items: list[_Item] = []
        for entry in batch:
            if entry is _STOP:
                stop = True
            elif isinstance(entry, _Waiter):
                waiters.append(entry)
            else:
                items.append(entry)  # type: ignore[arg-type]
        try:
            if items:
                if conn is None:
                    self._keep(StoreError(f"{self._path}: the run database is not open"))
                else:
                    self._commit(conn, items)
        except BaseException as exc:  # the writer must outlive any one bad batch
            self._keep(exc)
        finally:
            for waiter in waiters:
                waiter.wake()
        return stop

    def _commit(self, conn: sqlite3.Connection, items: list[_Item]) -> None:
        segments = self._encode(items)
        for attempt in range(1, _BUSY_RETRIES + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                for sql, rows in segments:
                    conn.executemany(sql, rows)
                conn.execute("COMMIT")
                return
            except (sqlite3.Error, ValueError) as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and _is_busy(exc):
                    if attempt == _BUSY_RETRIES:
                        raise
                    continue
                if sum(len(rows) for _, rows in segments) <= 1:
                    raise
                # One row the database refuses (a constraint, a trigger) must not cost the
                # others of the batch, which may belong to other runs: each goes on its own.
                self._keep(exc)
                self._commit_rows(conn, segments)
                return

    def _commit_rows(self, conn: sqlite3.Connection, segments: list[_Segment]) -> None:
        for sql, rows in segments:
            for row in rows:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(sql, row)
                    conn.execute("COMMIT")
                except (sqlite3.Error, ValueError) as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._keep(exc)

    def _encode(self, items: list[_Item]) -> list[_Segment]:
        # Order only matters among rows of one table (runs: started before finished; nodes:
        # the latest record wins), so rows are grouped per table, then per statement, keeping
        # their order within each table.
        per_table: dict[str, list[_Segment]] = {}
        for sql, values in items:
            try:
                row = _ENCODERS[sql](values)
            except (TypeError, ValueError, RecursionError) as exc:
                self._keep(
                    StoreError(f"{self._path}: cannot encode a record of run {values[0]}: {exc}")
                )
                continue
            segments = per_table.setdefault(_TABLE_OF[sql], [])
            if segments and segments[-1][0] == sql:
                segments[-1][1].append(row)
            else:
                segments.append((sql, [row]))
        return [segment for table in per_table.values() for segment in table]


def _dumps(value: Any) -> str:
    text = _ENCODE(value)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a handler's log line or error message) is not UTF-8, and SQLite
        # would refuse the whole batch for it: it is stored as U+FFFD instead. Node outputs
        # never get here; the engine refuses them first.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _dumps_or_null(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _jsonable(value: Any) -> Any:
    # Outputs are checked by the engine; this keeps a stray object in event data from costing
    # the whole batch.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


# One encoder for every row: json.dumps with options builds a new encoder on each call.
_ENCODE: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_jsonable
).encode


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def _encode_run_started(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return (v[0], v[1], _text(v[2]), _dumps(v[3] or {}), _dumps(v[4] or {}), *v[5:])


def _encode_run_finished(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return (
        *v[:2],
        _text(v[2]),
        _dumps(v[3] or {}),
        *v[4:7],
        _dumps_or_null(v[7]),
        _dumps_or_null(v[8]),
        _dumps(v[9]),
        _dumps_or_null(v[10]),
        v[11],
    )


def _encode_run_pause(v: tuple[Any, ...]) -> tuple[Any, ...]:
    # Queued as (run_id, pause, wake_at) like every record (run id first, for error messages).
    return (_dumps(v[1]), v[2], v[0])


def _encode_run_release(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return v


def _encode_node(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return (
        v[0],
        v[1],
        _text(v[2]),
        v[3],
        _dumps_or_null(v[4]),
        _dumps_or_null(v[5]),
        v[6],
        v[7],
        _dumps_or_null(v[8]),
        *v[9:],
    )


def _encode_event(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return (v[0], v[1], _text(v[2]), v[3], v[4], _dumps(v[5] or {}))


def _as_encoded(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row


_ENCODERS: Final[dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {
    RUN_STARTED: _encode_run_started,
    RUN_FINISHED: _encode_run_finished,
    RUN_PAUSE: _encode_run_pause,
    RUN_RELEASE: _encode_run_release,
    NODE: _encode_node,
    EVENT: _encode_event,
}
_ENCODED_AT_PUT: Final = frozenset({NODE, EVENT})
# A pre-encoded row travels under its statement's twin (the same SQL text, marked), so the
# writer knows to pass it through.
_PRE_ENCODED: Final = {sql: sql + "-- encoded\n" for sql in _ENCODED_AT_PUT}
_ENCODERS.update(dict.fromkeys(_PRE_ENCODED.values(), _as_encoded))
_TABLE_OF: Final = {
    RUN_STARTED: "runs",
    RUN_FINISHED: "runs",
    RUN_PAUSE: "runs",
    RUN_RELEASE: "runs",
    NODE: "node_results",
    EVENT: "events",
    _PRE_ENCODED[NODE]: "node_results",
    _PRE_ENCODED[EVENT]: "events",
}


def _drain(source: queue.SimpleQueue[object]) -> list[object]:
    items: list[object] = []
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED} or "locked" in str(exc)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
