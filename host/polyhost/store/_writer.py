"""A store's writer: records queued on the event loop, committed in batches.

Callers on the event loop only append records to a list. Nothing is committed per record: a
background thread takes everything queued at once, at most once per commit interval, and hands
it to the backend (a :class:`Sink`) as one batch, so a run with thousands of node transitions
costs a handful of commits. Only the first record after an idle spell wakes the thread; waking
it for every record would cost a thread switch (and a fight for the GIL) per record.

A flush on an asyncio loop (a durable run waiting for a node's result to be committed before
its dependents start) is a group commit on the loop itself: every task that flushes in one
turn of the loop shares one commit, made with :meth:`Sink.try_write`, which never waits for a
lock. The first of them leads: it yields one turn, so that the others can join, then commits for
all and goes on, so a lone flush (a chain of nodes) costs one turn of the loop, not two. Handing
that commit to the thread and back costs two thread wake-ups, several times the commit itself.
A batch the sink cannot commit at once (the database is locked, or it holds large records not
encoded yet) goes to the thread, and the loop waits without blocking.

The records are the store's, not a database's: what happened to a run (it started, a node
settled, an event, a pause, a release, its end), each a tuple whose layout is given below. A
backend turns them into its own statements.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .._errors import StoreError
from ..events._result import NodeResult, RunResult, RunStatus

if TYPE_CHECKING:
    from ..events._events import Event
    from ._base import Owner, RunRecord

__all__ = [
    "EVENT",
    "NODE_SETTLED",
    "RUN_ENDED",
    "RUN_PAUSED",
    "RUN_RELEASED",
    "RUN_STARTED",
    "BatchWriter",
    "Record",
    "RecordKind",
    "Sink",
    "event_record",
    "node_record",
    "pause_record",
    "release_record",
    "run_ended_record",
    "run_started_record",
]

# The record kinds. The values of every record start with the run id (for error messages).
#: (run_id, workflow_id, status, inputs, document, source, manifest, parent_run_id, started_at,
#:  owner_id, owner_host, owner_pid, lease_expires_at). A resumed run is started again.
RUN_STARTED: Final = "run_started"
#: (run_id, node_id, status, attempts, output, error, started_at, duration_ms, ports,
#:  settled_seq, reason). The latest record of a node wins.
NODE_SETTLED: Final = "node_settled"
#: (run_id, seq, type, ts, node, data).
EVENT: Final = "event"
#: (run_id, pause, wake_at): what a paused run waits for and when its timer falls due.
RUN_PAUSED: Final = "run_paused"
#: (run_id, owner_id): drop that owner's lease (and only that owner's).
RUN_RELEASED: Final = "run_released"
#: (run_id, workflow_id, status, inputs, started_at, finished_at, duration_ms, outputs, error,
#:  result (the result object as a dict), pause, wake_at). A run ended or paused.
RUN_ENDED: Final = "run_ended"

RecordKind = Literal[
    "run_started", "node_settled", "event", "run_paused", "run_released", "run_ended"
]
Record = tuple[str, tuple[Any, ...]]

_COMMIT_INTERVAL: Final = 0.005  # seconds; an explicit flush never waits for it


class Sink(Protocol):
    """A backend's half of the writer: it encodes records and commits batches.

    ``open``, ``write``, ``maintain`` and ``close`` run on the writer thread; ``try_write`` on
    the event loop's thread, never at the same time as ``write``. ``encode`` runs on the writer
    thread too, except for the kinds in ``early`` and the records queued with ``early=True``,
    which are encoded on the caller's thread when queued (small, frequent records: encoding
    them in the writer thread makes the event loop wait for the GIL, which costs more than the
    encoding, and a batch holding a record not encoded yet is committed by the thread, not on
    the loop).
    """

    @property
    def where(self) -> str:
        """Names the database in error messages."""
        ...

    @property
    def early(self) -> frozenset[str]:
        """The kinds to encode on the caller's thread."""
        ...

    def encode(self, kind: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The record in the backend's form; raises TypeError/ValueError for a value it cannot
        store."""
        ...

    def open(self) -> None:
        """Connect (raises ``StoreError``)."""
        ...

    def write(self, records: list[Record], keep: Callable[[BaseException], None]) -> None:
        """Commit one batch of encoded records, in order.

        A record the backend refuses must not cost the others: report it through ``keep`` and
        go on; raise only when the whole batch is lost.
        """
        ...

    def try_write(self, records: list[Record]) -> bool:
        """Commit a batch of early-encoded records at once, without waiting for a lock, or
        commit nothing and return False (the writer thread then commits it with ``write``)."""
        ...

    def maintain(self) -> None:
        """Housekeeping that must not run on the event loop, after ``try_write`` commits (SQLite:
        checkpoint the write-ahead log). It may run while ``try_write`` commits."""
        ...

    def close(self) -> None:
        """Disconnect; idempotent."""
        ...


class _Raw:
    """A queued record not encoded yet (the writer thread encodes it)."""

    __slots__ = ("kind", "values")

    def __init__(self, kind: str, values: tuple[Any, ...]) -> None:
        self.kind = kind
        self.values = values


class _Waiter:
    """A flush marker: ``wake`` runs once the records queued before it are committed."""

    __slots__ = ("wake",)

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake


_STOP: Final = object()
_ENCODE_ERRORS: Final = (TypeError, ValueError, RecursionError)
# Commits made on the loop between two maintenance passes in the writer thread.
_MAINTAIN_EVERY: Final = 200


class BatchWriter:
    """The queue and the thread behind one store; the thread starts with the first record.

    A failed batch is kept (the first failure explains the rest) for :meth:`take_error`;
    the thread itself outlives any one bad batch.
    """

    def __init__(self, sink: Sink, *, name: str) -> None:
        self._sink = sink
        self._name = name
        self._early = sink.early
        self._encode = sink.encode
        # _items is guarded by _mutex; whoever takes items to commit them holds _committing
        # until they are committed (or put back), which keeps records in order.
        self._mutex = threading.Lock()
        self._committing = threading.Lock()
        self._items: list[object] = []
        self._signalled = False  # _work is set for the items queued so far
        self._maintain = False  # the thread owes the sink a maintain() pass
        self._work = threading.Event()  # something is queued
        self._urgent = threading.Event()  # someone waits: commit without waiting out the interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._error: BaseException | None = None
        # The next group commit on a loop: that loop and the tasks waiting for it.
        self._group: tuple[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] | None = None
        self._inline_commits = 0

    @property
    def started(self) -> bool:
        """True once something was queued."""
        return self._thread is not None

    def put(self, kind: str, values: tuple[Any, ...], *, early: bool = False) -> None:
        """Queue one record; never blocks. ``early``: encode it now whatever its kind (a small
        record, which a commit on the loop may then take)."""
        if self._thread is None:
            self._start()
        entry: object
        if early or kind in self._early:
            try:
                entry = (kind, self._encode(kind, values))
            except _ENCODE_ERRORS as exc:
                self._keep(self._encode_error(values, exc))
                return
        else:
            entry = _Raw(kind, values)
        with self._mutex:
            self._items.append(entry)
            if self._signalled:
                return
            self._signalled = True
        self._work.set()

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
        start = True
        with self._mutex:
            group = self._group
            if group is not None and group[0] is loop:
                group[1].append(future)
                start = False
            elif group is None or group[0].is_closed():
                group = self._group = (loop, [future])
            else:  # another loop's group commit is pending: this one goes to the thread
                group = None
        if group is None:
            self._hand_to_thread(loop, [future])
        elif start:
            # This task leads the group: it lets the callbacks already ready run first (the
            # tasks they resume may flush too, and share this commit), then commits for all
            # and goes on in the same turn of the loop.
            try:
                await asyncio.sleep(0)
            finally:  # cancelled or not, the others must not be left waiting
                self._group_commit(group)
        await future

    def _group_commit(
        self, group: tuple[asyncio.AbstractEventLoop, list[asyncio.Future[None]]]
    ) -> None:
        with self._mutex:
            if self._group is group:
                self._group = None
        try:
            committed = self._commit_on_loop()
        except BaseException as exc:  # a waiting task must never be left hanging
            self._keep(exc)
            committed = False
        if committed:
            _resolve_all(group[1])
        else:
            self._hand_to_thread(*group)

    def _hand_to_thread(
        self, loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[None]]
    ) -> None:
        """Resolve ``futures`` once the thread has committed what is queued now."""

        def wake() -> None:
            # A closed loop raises RuntimeError; whoever was waiting is gone with it.
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_all, futures)

        if not self._enqueue_marker(_Waiter(wake)):
            _resolve_all(futures)

    def _commit_on_loop(self) -> bool:
        """Commit what is queued here and now; False when the thread must do it."""
        if not self._committing.acquire(blocking=False):
            return False  # the thread holds a batch: records queued later wait for it
        try:
            if self._stopped:
                return False
            with self._mutex:
                taken, self._items = self._items, []
            if self._commit_taken(taken):
                # The thread stays signalled: it wakes once per interval, not once per record.
                return True
            with self._mutex:
                self._items[:0] = taken  # back in front of anything queued meanwhile
            return False
        finally:
            self._committing.release()

    def _commit_taken(self, taken: list[object]) -> bool:
        records: list[Record] = []
        waiters: list[_Waiter] = []
        for entry in taken:
            if isinstance(entry, _Waiter):
                waiters.append(entry)
            elif entry is _STOP or isinstance(entry, _Raw):
                return False  # large records are encoded in the thread, off the loop
            else:
                records.append(entry)  # type: ignore[arg-type]
        if records:
            try:
                if not self._sink.try_write(records):
                    return False
            except Exception:  # the thread commits the batch again and reports what fails
                return False
        for waiter in waiters:
            waiter.wake()
        if records:
            self._inline_commits += 1
            if self._inline_commits % _MAINTAIN_EVERY == 0:
                with self._mutex:
                    self._maintain = self._signalled = True
                self._work.set()
        return True

    def _enqueue_marker(self, marker: object) -> bool:
        """Queue a marker for the thread and wake it; False when the thread has ended."""
        with self._mutex:
            if self._stopped:
                return False
            self._items.append(marker)
            self._signalled = True
        self._urgent.set()
        self._work.set()
        return True

    async def _wait_in_thread(self) -> None:
        # Another async backend: wait for the marker in a worker thread instead.
        import anyio.to_thread  # noqa: PLC0415 (only for non-asyncio loops)

        done = threading.Event()
        if self._enqueue_marker(_Waiter(done.set)):
            await anyio.to_thread.run_sync(done.wait)

    def stop(self) -> None:
        """Commit what is queued and end the thread (blocks until it has)."""
        thread = self._thread
        if thread is not None and self._enqueue_marker(_STOP):
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
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            thread.start()
            self._thread = thread

    def _keep(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    def _encode_error(self, values: tuple[Any, ...], exc: BaseException) -> StoreError:
        return StoreError(f"{self._sink.where}: cannot encode a record of run {values[0]}: {exc}")

    def _run(self) -> None:
        opened = True
        try:
            self._sink.open()
        except StoreError as exc:
            self._keep(exc)
            opened = False
        stop = False
        last_commit = 0.0
        while not stop:
            self._work.wait()
            # Many tiny transactions cost more than the rows in them. Unless someone waits on a
            # flush, commit at most once per interval and let records pile up meanwhile.
            left = last_commit + _COMMIT_INTERVAL - time.monotonic()
            if left > 0:
                self._urgent.wait(left)
            with self._committing:
                with self._mutex:
                    batch, self._items = self._items, []
                    maintain, self._maintain = self._maintain, False
                    self._signalled = False
                    self._work.clear()
                    self._urgent.clear()
                    if any(entry is _STOP for entry in batch):
                        self._stopped = True
                if batch:
                    stop = self._write_batch(opened, batch)
                last_commit = time.monotonic()
                # Do not hold the last batch (node outputs) while waiting for the next one.
                del batch
            if maintain and opened:
                # Outside the commit lock: a checkpoint (which writes and syncs the database
                # file) must not make the loop's commits wait for it.
                self._maintain_sink()
        with self._committing:
            # A record queued while stop() was putting its marker still gets written.
            with self._mutex:
                rest, self._items = self._items, []
            self._write_batch(opened, rest)
            if opened:
                with suppress(Exception):
                    self._sink.close()

    def _maintain_sink(self) -> None:
        try:
            self._sink.maintain()
        except Exception as exc:  # the writer must outlive a failed checkpoint
            self._keep(exc)

    def _write_batch(self, opened: bool, batch: list[object]) -> bool:
        stop = False
        waiters: list[_Waiter] = []
        records: list[Record] = []
        encode = self._encode
        for entry in batch:
            if entry is _STOP:
                stop = True
            elif isinstance(entry, _Waiter):
                waiters.append(entry)
            elif isinstance(entry, _Raw):
                try:
                    records.append((entry.kind, encode(entry.kind, entry.values)))
                except _ENCODE_ERRORS as exc:
                    self._keep(self._encode_error(entry.values, exc))
            else:
                records.append(entry)  # type: ignore[arg-type]
        try:
            if records:
                if not opened:
                    self._keep(StoreError(f"{self._sink.where}: the run database is not open"))
                else:
                    self._sink.write(records, self._keep)
        except BaseException as exc:  # the writer must outlive any one bad batch
            self._keep(exc)
        finally:
            for waiter in waiters:
                waiter.wake()
        return stop


# The records, built from the store's objects. Their fields are read now: the engine may reuse
# its objects once it has recorded them.


def run_started_record(record: RunRecord) -> tuple[Any, ...]:
    """The values of a ``RUN_STARTED`` record."""
    owner = record.owner
    # A new run is recorded with its owner, so no other host may take it over, even for the
    # moment before its first lease renewal.
    owned: tuple[Any, ...] = (
        (None, None, None, None)
        if owner is None
        else (owner.host_id, owner.hostname, owner.pid, time.time() + record.lease_seconds)
    )
    return (
        record.run_id,
        record.workflow_id,
        record.status,
        record.inputs,
        record.document,
        record.source,
        record.manifest,
        record.parent_run_id,
        record.started_at or time.time(),
        *owned,
    )


def node_record(run_id: str, node_id: str, result: NodeResult) -> tuple[Any, ...]:
    """The values of a ``NODE_SETTLED`` record."""
    return (
        run_id,
        node_id,
        result.status,
        result.attempts,
        result.output,
        result.error,
        result.started_at,
        result.duration_ms,
        None if result.ports is None else list(result.ports),
        result.settled_seq,
        result.reason,
    )


def event_record(event: Event) -> tuple[Any, ...]:
    """The values of an ``EVENT`` record."""
    return (event.run_id, event.seq, event.type, event.ts, event.node, event.data)


def pause_record(run_id: str, pause: dict[str, Any], wake_at: float | None) -> tuple[Any, ...]:
    """The values of a ``RUN_PAUSED`` record."""
    return (run_id, dict(pause), wake_at)


def release_record(run_id: str, owner: Owner) -> tuple[Any, ...]:
    """The values of a ``RUN_RELEASED`` record."""
    return (run_id, owner.host_id)


def run_ended_record(result: RunResult) -> tuple[Any, ...]:
    """The values of a ``RUN_ENDED`` record: the run's final (or paused) state."""
    snapshot = result.to_dict()
    status = RunStatus(result.status)
    now = time.time()
    started_at = result.started_at
    if started_at is None:
        started_at = now - (result.duration_ms or 0.0) / 1000.0
    pause = result.pause if status is RunStatus.PAUSED else None
    return (
        result.execution_id,
        result.workflow_id,
        status,
        result.inputs,
        started_at,
        now if status.is_final else None,
        result.duration_ms,
        result.outputs,
        result.error,
        snapshot,
        pause,
        _wake_at(pause),
    )


def _wake_at(pause: dict[str, Any] | None) -> float | None:
    # The pause object may name its timer; record_pause is the other way to set it.
    value = (pause or {}).get("wake_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _resolve_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
