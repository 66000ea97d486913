"""The SQLite statements behind the writer's records, and the sink that commits them.

A batch is one ``BEGIN IMMEDIATE`` transaction with one ``executemany`` per statement; values
are encoded to JSON text. In the writer thread, a busy database is retried a few times and a row
the database refuses costs only itself (the batch is retried row by row). On the event loop
(:meth:`SQLiteSink.try_write`), a second connection commits only when the write lock is free at
once, and leaves the write-ahead log's checkpoints (an fsync) to the thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, Final

from ..._errors import StoreError
from ...events._events import EventType
from ...events._result import NodeStatus, RunStatus
from .._writer import (
    EVENT,
    NODE_SETTLED,
    RUN_ENDED,
    RUN_PAUSED,
    RUN_RELEASED,
    RUN_STARTED,
    Record,
)

__all__ = ["SQLiteSink"]

_BUSY_RETRIES: Final = 3
_BUSY_TIMEOUT_S: Final = 10.0

# A resumed run is started again: it keeps its first started_at (the history does not reorder
# it), where it came from (workflow_version, trigger), and loses the result of its pause.
_RUN_STARTED: Final = """
INSERT INTO runs (run_id, workflow_id, status, inputs, document, source, manifest,
                  parent_run_id, started_at, owner_id, owner_host, owner_pid, lease_expires_at,
                  workflow_version, trigger)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
_RUN_ENDED: Final = """
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

_RUN_PAUSED: Final = """
UPDATE runs SET pause = ?, wake_at = ? WHERE run_id = ?
"""

# Only the owner's own lease is dropped: a host that lost the run must not free another's.
_RUN_RELEASED: Final = """
UPDATE runs
SET owner_id = NULL, owner_host = NULL, owner_pid = NULL, lease_expires_at = NULL
WHERE run_id = ? AND owner_id = ?
"""

_NODE_SETTLED: Final = """
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
_EVENT: Final = """
INSERT OR REPLACE INTO events (run_id, seq, type, ts, node, data) VALUES (?, ?, ?, ?, ?, ?)
"""

_Segment = tuple[str, list[tuple[Any, ...]]]


class SQLiteSink:
    """Commits the writer's batches to one SQLite file through a connection of its own."""

    early: Final = frozenset({NODE_SETTLED, EVENT, RUN_PAUSED, RUN_RELEASED})

    def __init__(self, path: Path, connect: Callable[[float], sqlite3.Connection]) -> None:
        """``connect(busy_timeout)`` opens a connection to the database."""
        self.where = str(path)
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._now: sqlite3.Connection | None = None  # try_write's, on the loop's thread
        # Reused by every commit: a cursor per statement costs about as much as a small row.
        self._now_cursor: sqlite3.Cursor | None = None
        self._now_failed = False

    def encode(self, kind: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The record's row, its JSON values as text."""
        return _ENCODERS[kind](values)

    def open(self) -> None:
        """Connect (on the writer thread)."""
        self._conn = self._connect(_BUSY_TIMEOUT_S)

    def close(self) -> None:
        """Disconnect; idempotent."""
        for conn in (self._conn, self._now):
            if conn is not None:
                conn.close()
        self._conn = self._now = self._now_cursor = None

    def try_write(self, records: list[Record]) -> bool:
        """Commit ``records`` at once if no other connection holds the write lock."""
        conn, cursor = self._now, self._now_cursor
        if conn is None or cursor is None:
            if self._now_failed:
                return False
            try:
                conn = self._now = self._connect(0.0)
                # Checkpoints write the database file and fsync it: maintain(), in the thread.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                cursor = self._now_cursor = conn.cursor()
            except (StoreError, sqlite3.Error):
                self._now_failed = True
                return False
        try:
            cursor.execute("BEGIN IMMEDIATE")
            for sql, rows in _segments(records):
                cursor.executemany(sql, rows)
            cursor.execute("COMMIT")
        except (sqlite3.Error, ValueError):
            # Busy, or a row the database refuses: the thread commits the batch and sorts it out.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        return True

    def maintain(self) -> None:
        """Checkpoint the write-ahead log that try_write's commits grew (never waits)."""
        if self._conn is not None:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def write(self, records: list[Record], keep: Callable[[BaseException], None]) -> None:
        """Commit ``records`` in one transaction (row by row when the database refuses one)."""
        conn = self._conn
        if conn is None:
            raise StoreError(f"{self.where}: the run database is not open")
        segments = _segments(records)
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
                keep(exc)
                _commit_rows(conn, segments, keep)
                return


def _segments(records: list[Record]) -> list[_Segment]:
    # Order only matters among rows of one table (runs: started before finished; nodes: the
    # latest record wins), so rows are grouped per table, then per statement, keeping their
    # order within each table.
    per_table: dict[str, list[_Segment]] = {}
    for kind, row in records:
        sql = _SQL[kind]
        segments = per_table.setdefault(_TABLE_OF[kind], [])
        if segments and segments[-1][0] == sql:
            segments[-1][1].append(row)
        else:
            segments.append((sql, [row]))
    return [segment for table in per_table.values() for segment in table]


def _commit_rows(
    conn: sqlite3.Connection, segments: list[_Segment], keep: Callable[[BaseException], None]
) -> None:
    for sql, rows in segments:
        for row in rows:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, row)
                conn.execute("COMMIT")
            except (sqlite3.Error, ValueError) as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                keep(exc)


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED} or "locked" in str(exc)


def _dumps(value: Any) -> str:
    if not value and type(value) is dict:
        return "{}"  # most event data and many outputs: no encoder call
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
def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_jsonable)``.

    One C encoder serves every row: ``json.dumps`` with options builds a new encoder per call
    and ``JSONEncoder.encode`` a new C encoder per call, which cost more than a small row's
    encoding. It keeps no circular-reference markers, so a value that contains itself raises
    ``RecursionError`` (a value the store refuses, like any other that is not JSON).
    """
    make = getattr(json.encoder, "c_make_encoder", None)  # not in the type stubs
    if make is None:  # no C accelerator: the pure-Python encoder
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_jsonable).encode
    encode = make(
        None, _jsonable, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    join = "".join

    def dumps(value: Any) -> str:
        return join(encode(value, 0))

    return dumps


_ENCODE: Final = _encoder()


def _text(value: Any) -> str:
    try:
        return _NAMES[value]
    except (KeyError, TypeError):
        return str(value.value) if isinstance(value, Enum) else str(value)


# Statuses and event types by member: an enum's ``value`` is a slow attribute, read per row.
_NAMES: Final[dict[Any, str]] = {
    member: member.value for kind in (RunStatus, NodeStatus, EventType) for member in kind
}


def _encode_run_started(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return (v[0], v[1], _text(v[2]), _dumps(v[3] or {}), _dumps(v[4] or {}), *v[5:])


def _encode_run_ended(v: tuple[Any, ...]) -> tuple[Any, ...]:
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


def _encode_run_paused(v: tuple[Any, ...]) -> tuple[Any, ...]:
    # The record is (run_id, pause, wake_at); the statement binds the run id last.
    return (_dumps(v[1]), v[2], v[0])


def _encode_run_released(v: tuple[Any, ...]) -> tuple[Any, ...]:
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


_ENCODERS: Final[dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {
    RUN_STARTED: _encode_run_started,
    RUN_ENDED: _encode_run_ended,
    RUN_PAUSED: _encode_run_paused,
    RUN_RELEASED: _encode_run_released,
    NODE_SETTLED: _encode_node,
    EVENT: _encode_event,
}
_SQL: Final = {
    RUN_STARTED: _RUN_STARTED,
    RUN_ENDED: _RUN_ENDED,
    RUN_PAUSED: _RUN_PAUSED,
    RUN_RELEASED: _RUN_RELEASED,
    NODE_SETTLED: _NODE_SETTLED,
    EVENT: _EVENT,
}
_TABLE_OF: Final = {
    RUN_STARTED: "runs",
    RUN_ENDED: "runs",
    RUN_PAUSED: "runs",
    RUN_RELEASED: "runs",
    NODE_SETTLED: "node_results",
    EVENT: "events",
}
