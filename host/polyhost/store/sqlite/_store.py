"""The default run store: one SQLite file in WAL mode, written by one background thread.

``record_*`` only queue (see :mod:`polyhost.store._writer` and :mod:`._writes`), so the
engine never waits for the disk on its event loop. Readers use their own connection; in WAL
mode they see every committed batch, including those of another process sharing the same file.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from ..._errors import AmbiguousRunIdError, RunNotFoundError, StoreError
from ...events._events import Event, EventType
from ...events._result import NodeResult, NodeStatus, RunResult, RunStatus
from .. import _writer
from .._base import (
    ClaimCheck,
    ClaimedRun,
    DeploymentRecord,
    LeaseState,
    Owner,
    RunRecord,
    RunSummary,
)
from .._writer import BatchWriter
from . import _control, _deployments
from ._schema import migrate
from ._writes import SQLiteSink

__all__ = ["DB_FILE_NAME", "SQLiteStore"]

DB_FILE_NAME: Final = "polyhost.db"
_BUSY_TIMEOUT_S: Final = 10.0
# Runs of at most this many nodes have their start and end records encoded on the loop.
_EARLY_RUN_NODES: Final = 64

_RUN_COLUMNS: Final = (
    "run_id, workflow_id, status, inputs, document, source, manifest, parent_run_id, "
    "started_at, finished_at, duration_ms, outputs, error, result, pause, workflow_version, "
    "trigger"
)
_NODE_COLUMNS: Final = (
    "node_id, status, attempts, output, error, started_at, duration_ms, ports, settled_seq, reason"
)
_RUN_NAMES: Final = tuple(name.strip() for name in _RUN_COLUMNS.split(","))
_RUN_ROW: Final = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"  # noqa: S608 (constants)
_NODE_ROWS: Final = f"SELECT {_NODE_COLUMNS} FROM node_results WHERE run_id = ? ORDER BY rowid"  # noqa: S608
# Rows of a run known by this exact id, in one statement (rows of an id no run has, left by a
# write that failed, are not a run's).
_KNOWN: Final = "EXISTS (SELECT 1 FROM runs WHERE runs.run_id = ?1)"
_KNOWN_NODE_ROWS: Final = (
    f"SELECT {_NODE_COLUMNS} FROM node_results "  # noqa: S608 (constants)
    f"WHERE run_id = ?1 AND {_KNOWN} ORDER BY rowid"
)
_STATUS_AND_PAUSE: Final = "SELECT status, pause FROM runs WHERE run_id = ?"
_LAST_SEQ: Final = "SELECT max(seq) FROM events WHERE run_id = ?"
_EVENTS_AFTER: Final = (
    "SELECT seq, type, ts, node, data FROM events "  # noqa: S608 (constants)
    f"WHERE run_id = ?1 AND seq > ?2 AND {_KNOWN} ORDER BY seq LIMIT ?3"
)

_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


class SQLiteStore:
    """A :class:`~polyhost.store.RunStore` in one SQLite file.

    Several stores, in this process or others, may share a file: SQLite's WAL mode lets them
    read while one writes, and writers wait for each other (up to a busy timeout).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._control: sqlite3.Connection | None = None
        self._closed = False
        self._temp_dir: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path.parent}: cannot create the folder: {exc}") from exc
        self._reader = self._connect()
        try:
            migrate(self._reader, str(self.path))
        except sqlite3.Error as exc:
            self._reader.close()
            raise StoreError(f"{self.path}: cannot prepare the run database: {exc}") from exc
        except BaseException:
            self._reader.close()
            raise
        self._writer = BatchWriter(
            SQLiteSink(self.path, self._connect), name=f"polyhost-store:{self.path.name}"
        )
        _OPEN_STORES.add(self)

    @classmethod
    def temporary(cls) -> SQLiteStore:
        """A store in a private temporary folder, removed when the store is closed.

        SQLite's ``:memory:`` databases are private to one connection, and this store reads and
        writes on different threads; a throwaway file gives the same lifetime and works.
        """
        folder = Path(tempfile.mkdtemp(prefix="polyhost-store-"))
        try:
            store = cls(folder / DB_FILE_NAME)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        store._temp_dir = folder
        return store

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing (on the event loop: queue only) ------------------------------------------

    def record_run_started(self, record: RunRecord) -> None:
        """Queue the run's row (an upsert: a resumed run is started again)."""
        # Where the run came from goes last (see _writes._RUN_STARTED); a run keeps it.
        values = (*_writer.run_started_record(record), record.workflow_version, record.trigger)
        self._put(_writer.RUN_STARTED, values, early=_few(record.document.get("nodes")))

    def record_event(self, event: Event) -> None:
        """Queue one event."""
        self._put(_writer.EVENT, _writer.event_record(event))

    def record_node(self, run_id: str, node_id: str, result: NodeResult) -> None:
        """Queue a node's latest state; the fields are read now, as the engine may reuse it."""
        self._put(_writer.NODE_SETTLED, _writer.node_record(run_id, node_id, result))

    def record_run_finished(self, result: RunResult) -> None:
        """Queue the run's final (or paused) state and its result object.

        Node rows are not rewritten here: the engine records every node as its status changes.
        """
        self._put(_writer.RUN_ENDED, _writer.run_ended_record(result), early=_few(result.nodes))

    def record_pause(self, run_id: str, pause: dict[str, Any], wake_at: float | None) -> None:
        """Queue what a paused run waits for and when its timer falls due (``None``: no timer)."""
        self._put(_writer.RUN_PAUSED, _writer.pause_record(run_id, pause, wake_at))

    def release_run(self, run_id: str, owner: Owner) -> None:
        """Queue dropping ``owner``'s lease; a run another host took over keeps its owner."""
        self._put(_writer.RUN_RELEASED, _writer.release_record(run_id, owner))

    # -- ownership (synchronous, committed at once; see ._control) ------------------------

    def claim_run(
        self,
        run_id: str,
        owner: Owner,
        lease_seconds: float,
        *,
        statuses: tuple[RunStatus, ...],
    ) -> RunRecord:
        """Make ``owner`` the run's owner and return the run's record (status running).

        Succeeds when the status is one of ``statuses`` and no other owner is alive: none, an
        expired lease, or an owner on ``owner.hostname`` whose pid has ended. Commits at once;
        it sees only committed rows, so flush this store's queue first. ``run_id`` may be a
        unique prefix. Raises ``RunNotFoundError`` or ``RunStateError``.
        """
        with self._controlling() as conn:
            full_id = self._resolve(conn, run_id)
            _control.claim(
                conn,
                full_id,
                owner,
                lease_seconds=lease_seconds,
                statuses=statuses,
                now=time.time(),
            )
            return _record_of(self._run_row(conn, full_id))

    def claim_and_load(
        self,
        run_id: str,
        owner: Owner,
        lease_seconds: float,
        *,
        statuses: tuple[RunStatus, ...],
        check: ClaimCheck | None = None,
    ) -> ClaimedRun:
        """:meth:`claim_run` and what continuing the run needs, in one transaction.

        ``check(status, pause)`` runs first; what it raises rolls the transaction back. Node
        rows that cannot be decoded leave the claim made and are reported in ``unreadable``.
        """
        with self._controlling() as conn:
            full_id = self._resolve(conn, run_id)
            if check is not None:
                status, pause = conn.execute(_STATUS_AND_PAUSE, (full_id,)).fetchone()
                check(RunStatus(status), _loads(pause))
            _control.claim(
                conn,
                full_id,
                owner,
                lease_seconds=lease_seconds,
                statuses=statuses,
                now=time.time(),
            )
            row = self._run_row(conn, full_id)
            record = _record_of(row)
            node_rows = conn.execute(_NODE_ROWS, (full_id,)).fetchall()
            last_seq = conn.execute(_LAST_SEQ, (full_id,)).fetchone()[0] or 0
        claimed = ClaimedRun(record, {}, last_seq, document_key=row["document"])
        try:
            claimed.nodes = {node[0]: _node_of(node) for node in node_rows}
        except (ValueError, TypeError) as exc:
            claimed.unreadable = StoreError(
                f"{self.path}: run {full_id} has node results this polyhost cannot read: {exc}"
            )
        return claimed

    def renew_lease(self, run_id: str, owner: Owner, lease_seconds: float) -> LeaseState:
        """Extend ``owner``'s lease when it still holds the run; report a requested cancel.

        Raises ``RunNotFoundError``.
        """
        with self._controlling() as conn:
            full_id = self._resolve(conn, run_id)
            return _control.renew(conn, full_id, owner, lease_seconds, time.time())

    def change_mark(self) -> object:
        """The database file's and its write-ahead log's size and modification time: every
        commit (of any process) appends to the log, and a checkpoint rewrites both."""
        marks: list[tuple[int, int]] = []
        for suffix in ("", "-wal"):
            try:
                found = os.stat(f"{self.path}{suffix}")
            except OSError:
                marks.append((0, 0))
            else:
                marks.append((found.st_mtime_ns, found.st_size))
        return tuple(marks)

    def request_cancel(self, run_id: str) -> RunStatus:
        """Cancel a run from any process; returns its status after the request.

        A running run whose owner is alive gets the cancel flag and stays running until the
        owner sees it on its next renewal. A paused or pending run, or a running one whose
        owner is gone, is cancelled at once. ``run_id`` may be a unique prefix. Raises
        ``RunNotFoundError``, or ``RunStateError`` for a finished run.
        """
        with self._controlling() as conn:
            full_id = self._resolve(conn, run_id)
            return _control.cancel(conn, full_id, socket.gethostname(), time.time())

    def due_runs(self, now: float) -> list[str]:
        """Paused runs whose timer is due (``wake_at <= now``) and running runs whose lease
        expired (``lease_expires_at < now``), oldest first."""
        with self._reading() as conn:
            return _control.due(conn, now)

    # -- deployed workflows and schedule fires (synchronous; see ._deployments) ------------

    def deploy(
        self, workflow_id: str, document: str, hash: str, *, manifest: str | None = None
    ) -> tuple[int, bool]:
        """Keep ``document`` as the next version of ``workflow_id`` unless the latest version
        has the same ``hash``; the workflow is active afterwards. Returns ``(version,
        created)``."""
        with self._controlling() as conn:
            return _deployments.deploy(
                conn, workflow_id, document, hash, manifest=manifest, now=time.time()
            )

    def list_deployments(self, *, include_undeployed: bool = False) -> list[DeploymentRecord]:
        """The latest version of every deployed workflow, by id, without documents."""
        with self._reading() as conn:
            return _deployments.list_deployments(conn, include_undeployed=include_undeployed)

    def get_deployment(self, workflow_id: str, version: int | None = None) -> DeploymentRecord:
        """One version (the latest by default) with its document and every version listed.

        Raises ``WorkflowNotFoundError``.
        """
        with self._reading() as conn:
            return _deployments.get_deployment(conn, workflow_id, version)

    def undeploy(self, workflow_id: str) -> bool:
        """Mark the workflow undeployed (its versions stay); False when it was not deployed."""
        with self._controlling() as conn:
            return _deployments.undeploy(conn, workflow_id, time.time())

    def claim_fire(
        self, workflow_id: str, trigger_key: str, due_at: float, *, version: int | None = None
    ) -> bool:
        """Claim a schedule's due time (to the second); True for the one claimer that won."""
        with self._controlling() as conn:
            return _deployments.claim_fire(
                conn, workflow_id, trigger_key, round(due_at), version=version, now=time.time()
            )

    def record_fire_run(
        self, workflow_id: str, trigger_key: str, due_at: float, run_id: str
    ) -> None:
        """Note the run a claimed fire started."""
        with self._controlling() as conn:
            _deployments.record_fire_run(conn, workflow_id, trigger_key, round(due_at), run_id)

    async def flush(self) -> None:
        """Wait, without blocking the loop, until everything queued so far is committed.

        Raises ``StoreError`` for a write that failed since the last flush.
        """
        if not self._closed:
            await self._writer.wait()
        self._raise_pending()

    def close(self) -> None:
        """Commit what is queued, stop the writer and close; idempotent.

        Raises ``StoreError`` when a queued write failed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._writer.stop()
        with self._read_lock:
            self._reader.close()
        with self._control_lock:
            if self._control is not None:
                self._control.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        _OPEN_STORES.discard(self)
        self._raise_pending()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def _put(self, kind: str, values: tuple[Any, ...], *, early: bool = False) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        self._writer.put(kind, values, early=early)

    def _raise_pending(self) -> None:
        error = self._writer.take_error()
        if error is None:
            return
        if isinstance(error, StoreError):
            raise error
        raise StoreError(f"{self.path}: a write to the run database failed: {error}") from error

    # -- reading (synchronous, own connection) ----------------------------------------------

    def list_runs(
        self,
        *,
        limit: int = 50,
        status: RunStatus | str | None = None,
        workflow_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunSummary]:
        """The most recent runs first, with per-status node counts; ``limit <= 0``: all.

        ``since <= started_at < until``; ``before`` is the (started_at, run_id) key of a row
        already shown: only rows after it in this order (keyset paging).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(RunStatus(status).value)
        if workflow_id is not None:
            clauses.append("workflow_id = ?")
            params.append(workflow_id)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            params.append(until)
        if before is not None:
            clauses.append("(started_at < ? OR (started_at = ? AND run_id < ?))")
            params.extend((before[0], before[0], before[1]))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = (
            "run_id, workflow_id, status, started_at, finished_at, duration_ms, error, "
            "workflow_version, trigger"
        )
        order = "ORDER BY started_at DESC, run_id DESC LIMIT ?"
        sql = f"SELECT {columns} FROM runs {where} {order}"  # noqa: S608 (clauses are fixed text)
        params.append(limit if limit > 0 else -1)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
            counts = _node_counts(conn, [row[0] for row in rows])
        return [
            RunSummary(
                run_id=row[0],
                workflow_id=row[1],
                status=RunStatus(row[2]),
                started_at=row[3],
                finished_at=row[4],
                duration_ms=row[5],
                error=_loads(row[6]),
                counts=counts.get(row[0], {}),
                workflow_version=row[7],
                trigger=row[8],
            )
            for row in rows
        ]

    def get_result(self, run_id: str) -> RunResult:
        """The run's result object; a run still going is assembled from its node rows.

        A paused run's result carries ``pause``. ``run_id`` may be a unique prefix. Raises
        ``RunNotFoundError``.
        """
        with self._reading() as conn:
            row = self._run_row(conn, run_id)
            node_rows = self._node_rows(conn, row["run_id"])
        status = RunStatus(row["status"])
        stored = _loads(row["result"])
        # The row's status is the truth: a claim makes a paused or failed run running again
        # before the new owner's first write replaces the old result object.
        if stored is not None and stored.get("status") == status.value:
            result = RunResult.from_dict(stored)
            result.workflow_id = result.workflow_id or row["workflow_id"]
            for node_id, node in result.nodes.items():
                known = node_rows.get(node_id)
                if known is not None:
                    node.started_at = known.started_at
                    node.ports = known.ports
                    node.settled_seq = known.settled_seq
                    node.reason = known.reason
        else:
            duration = row["duration_ms"]
            if duration is None and not status.is_final:
                duration = max(0.0, (time.time() - row["started_at"]) * 1000.0)
            result = RunResult(
                execution_id=row["run_id"],
                workflow_id=row["workflow_id"],
                status=status,
                outputs=_loads(row["outputs"]),
                error=_loads(row["error"]),
                duration_ms=duration or 0.0,
                nodes=node_rows,
            )
        result.started_at = row["started_at"]
        result.inputs = _loads(row["inputs"]) or {}
        if status is RunStatus.PAUSED and result.pause is None:
            result.pause = _loads(row["pause"])
        return result

    def get_record(self, run_id: str) -> RunRecord:
        """What the run started with; ``run_id`` may be a unique prefix.

        Raises ``RunNotFoundError``.
        """
        with self._reading() as conn:
            return _record_of(self._run_row(conn, run_id))

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]:
        """Every node row of the run in first-recorded order, with outputs, ports and settle
        order; ``run_id`` may be a unique prefix. Raises ``RunNotFoundError``."""
        with self._reading() as conn:
            # A full id with node rows needs one query; an empty answer may be a prefix.
            rows = conn.execute(_KNOWN_NODE_ROWS, (run_id,)).fetchall()
            if rows:
                return {row[0]: _node_of(row) for row in rows}
            full_id = self._resolve(conn, run_id)
            return {} if full_id == run_id else self._node_rows(conn, full_id)

    def events(self, run_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """A run's events in sequence order, at most ``limit`` (``None``: all); ``run_id``
        may be a unique prefix.

        Raises ``RunNotFoundError`` when no run has that id.
        """
        count = -1 if limit is None else limit
        with self._reading() as conn:
            # A full id with events needs one query; an empty answer may be a prefix.
            full_id = run_id
            rows = conn.execute(_EVENTS_AFTER, (full_id, after_seq, count)).fetchall()
            if not rows:
                full_id = self._resolve(conn, run_id)
                if full_id != run_id:
                    rows = conn.execute(_EVENTS_AFTER, (full_id, after_seq, count)).fetchall()
        try:
            return [
                Event(full_id, row[0], EventType(row[1]), row[2], row[3], _loads(row[4]) or {})
                for row in rows
            ]
        except ValueError as exc:
            raise StoreError(
                f"{self.path}: run {full_id} has an event this polyhost does not know: {exc}"
            ) from exc

    def resolve_id(self, run_id: str) -> str:
        """The full id of the one run whose id is ``run_id`` or starts with it.

        Raises ``RunNotFoundError`` (code ``ambiguous_run_id`` when several runs match).
        """
        with self._reading() as conn:
            return self._resolve(conn, run_id)

    def _run_row(self, conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
        # The full id is the common case: one query, and the prefix lookup only without a row.
        row = conn.execute(_RUN_ROW, (run_id,)).fetchone()
        if row is None:
            row = conn.execute(_RUN_ROW, (self._resolve(conn, run_id),)).fetchone()
        return dict(zip(_RUN_NAMES, row, strict=True))

    def _node_rows(self, conn: sqlite3.Connection, full_id: str) -> dict[str, NodeResult]:
        rows = conn.execute(_NODE_ROWS, (full_id,)).fetchall()
        return {row[0]: _node_of(row) for row in rows}

    def _resolve(self, conn: sqlite3.Connection, run_id: str) -> str:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            return run_id
        matches: list[str] = []
        if run_id:
            # A range on the primary key, so a prefix costs an index seek, not a scan.
            upper = _prefix_upper_bound(run_id)
            found = conn.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT 4",
                (run_id, upper),
            ).fetchall()
            matches = [row[0] for row in found if row[0].startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunNotFoundError(f"no run with id {run_id!r} in {self.path}", run_id=run_id)
        raise AmbiguousRunIdError(run_id, matches[:3], more=len(matches) > 3)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            if self._closed:
                raise StoreError(f"{self.path}: the store is closed")
            conn = self._reader
            try:
                # One read transaction: a run's row and its node rows come from one snapshot.
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read the run database: {exc}") from exc

    @contextmanager
    def _controlling(self) -> Iterator[sqlite3.Connection]:
        # A connection of its own: the reader's is often inside a read transaction, and a
        # snapshot older than the claim would let two claimers both see the run free.
        with self._control_lock:
            if self._closed:
                raise StoreError(f"{self.path}: the store is closed")
            if self._control is None:
                self._control = self._connect()
            conn = self._control
            try:
                # IMMEDIATE takes the write lock first (waiting up to the busy timeout), so
                # the row read below cannot change before this transaction commits.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: cannot update the run database: {exc}") from exc

    def _connect(self, busy_timeout: float = _BUSY_TIMEOUT_S) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # transactions are explicit
                check_same_thread=False,  # each connection is guarded by a lock
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the run database: {exc}") from exc
        try:
            _use_wal(conn, busy_timeout)
            # NORMAL in WAL mode: a power cut may lose the last batches, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: cannot open the run database: {exc}") from exc
        return conn


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch ``conn``'s database to WAL mode, waiting up to ``busy_timeout`` for a lock.

    SQLite does not call the busy handler for this pragma: while another process creates the
    same new database (``polyhost run`` and ``polyhost runs list`` started together), it
    answers "database is locked" at once. Ask again until the lock is free or time is up.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _few(nodes: Any) -> bool:
    """Whether a run of these nodes is small enough to encode its start and end on the loop:
    a run's end waits for its commit, which the loop makes at once when every record of the
    batch is encoded; encoding a large run's records there would hold the loop instead."""
    return isinstance(nodes, Sized) and len(nodes) <= _EARLY_RUN_NODES


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _node_of(row: tuple[Any, ...]) -> NodeResult:
    return NodeResult(
        status=NodeStatus(row[1]),
        attempts=row[2],
        output=_loads(row[3]),
        error=_loads(row[4]),
        started_at=row[5],
        duration_ms=row[6],
        ports=_loads(row[7]),
        settled_seq=row[8],
        reason=row[9],
    )


def _record_of(row: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        workflow_id=row["workflow_id"],
        status=RunStatus(row["status"]),
        inputs=_loads(row["inputs"]) or {},
        document=_loads(row["document"]) or {},
        source=row["source"],
        manifest=row["manifest"],
        started_at=row["started_at"],
        parent_run_id=row["parent_run_id"],
        workflow_version=row["workflow_version"],
        trigger=row["trigger"],
    )


def _node_counts(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    chunk = 500  # well under SQLite's limit on bound parameters
    for start in range(0, len(run_ids), chunk):
        part = run_ids[start : start + chunk]
        marks = ", ".join("?" * len(part))
        where = f"WHERE run_id IN ({marks}) GROUP BY run_id, status"
        sql = f"SELECT run_id, status, count(*) FROM node_results {where}"  # noqa: S608 (marks)
        rows = conn.execute(sql, part).fetchall()
        for run_id, status, count in rows:
            counts.setdefault(run_id, {})[status] = count
    return counts


def _prefix_upper_bound(prefix: str) -> str:
    # A string greater than every string starting with prefix. U+10FFFF has no successor:
    # drop trailing ones and bump the character before, or, with none left, go past them all.
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return chr(0x10FFFF) * (len(prefix) + 1)
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


@atexit.register
def _close_open_stores() -> None:
    # The writer is a daemon thread; without this, batches queued just before the interpreter
    # exits would be dropped when a caller forgot close().
    for store in list(_OPEN_STORES):
        try:
            store.close()
        except Exception:  # noqa: S112 (nothing left to report to at exit)
            continue
