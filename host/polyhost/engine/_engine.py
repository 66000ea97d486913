"""The engine: drives one run of a compiled workflow to its end, a pause, or a cancel.

The nodes themselves run in :class:`._graph.GraphRun`; an ``Execution`` holds what the whole run
shares: events, the store and its lease, secrets to mask, the concurrency slots, and the result.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from .._errors import PolyhostError, StoreError
from .._limits import Limits, default_limits
from ..compile._compiled import CompiledNode, CompiledWorkflow
from ..compile._expressions import Scope
from ..events._events import Event, EventLog, EventType, Subscriber
from ..events._redaction import Redactor
from ..events._result import NodeResult, NodeStatus, RunResult, RunStatus
from ..router._router import RuntimeRouter
from ..runtimes._context import NodeContext
from ..store._base import Owner, RunRecord, RunStore
from ..workflow._values import check_output
from ._graph import GraphRun
from ._limiter import NodeSlots
from ._tools import AttemptTools

__all__ = ["EngineSettings", "Execution"]

_log = logging.getLogger("polyhost")
_NO_SIZE_LIMIT = sys.maxsize  # the run's outputs are made of node outputs already bounded


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Host settings the engine applies to every run."""

    max_output_bytes: int = 16 * 1024 * 1024
    env: dict[str, str] | None = None
    lease_seconds: float = 15.0
    renew_every: float = 1.0
    durable_commits: bool = True
    limits: Limits = field(default_factory=default_limits)
    # Called with every event of every run, after the run's own subscribers (a server's
    # live streams); like any subscriber, one that raises is dropped for the run.
    listeners: tuple[Subscriber, ...] = ()


@dataclass(slots=True)
class Resumption:
    """What a run continued from the store starts with."""

    nodes: Mapping[str, NodeResult]
    last_seq: int
    resume_input: dict[str, Any] | None = None
    started_at: float | None = None


class Execution:
    """One run of a compiled workflow. Create, then ``await execute()`` once."""

    def __init__(
        self,
        compiled: CompiledWorkflow,
        inputs: dict[str, Any],
        *,
        run_id: str,
        router: RuntimeRouter,
        limiter: NodeSlots,
        store: RunStore | None = None,
        subscribers: list[Subscriber] | None = None,
        settings: EngineSettings | None = None,
        record: RunRecord | None = None,
        owner: Owner | None = None,
        resumption: Resumption | None = None,
    ) -> None:
        self.compiled = compiled
        self.inputs = inputs
        self.run_id = run_id
        self.router = router
        self.slots = limiter
        self.store = store
        self.settings = settings or EngineSettings()
        self._record = record
        self._owner = owner
        env = dict(self.settings.env or {})
        self._env = env
        self._redactor = Redactor(env.values())
        subs = [*(subscribers or ()), *self.settings.listeners]
        if store is not None:
            subs.insert(0, store.record_event)
        self.events = EventLog(
            run_id,
            subs,
            self._redactor.redact if self._redactor else None,
            start_seq=resumption.last_seq if resumption else 0,
        )
        self._resumed = resumption is not None
        self.restored: Mapping[str, NodeResult] = resumption.nodes if resumption else {}
        self.resume_input = resumption.resume_input if resumption else None
        self._resuming = {
            path for path, r in self.restored.items() if r.status is NodeStatus.PAUSED
        }
        self.pauses: list[dict[str, Any]] = []
        self.cancelling = False
        self._lost = False
        self._abandoned = False
        # One start time for the result, the template's execution.started_at and the store.
        first_start = resumption.started_at if resumption else None
        if first_start is None and record is not None:
            first_start = record.started_at
        self.started_at = first_start or time.time()
        scope = Scope(self.settings.limits.max_value_depth)
        scope.set("input", inputs)
        scope.set("var", dict(compiled.workflow.variables))
        scope.set("env", env)
        scope.set(
            "execution",
            {
                "id": run_id,
                "workflow_id": compiled.workflow_id,
                "started_at": _iso(self.started_at),
            },
        )
        self.root = GraphRun(self, compiled.graph, scope, restored=self.restored)
        self._scope: anyio.CancelScope | None = None

    # what GraphRuns use --------------------------------------------------------------------

    @property
    def drops_outputs(self) -> bool:
        """Outputs no pending node reads leave memory only when the store keeps them."""
        return self.store is not None

    def emit(self, type_: EventType, node: str | None, data: dict[str, Any]) -> Event:
        """Record an event of this run."""
        return self.events.emit(type_, node, data)

    def record_node(self, path: str, record: NodeResult) -> None:
        """Queue a node's state for the store."""
        if self.store is not None and not self._lost:
            self.store.record_node(self.run_id, path, self._redactor.node(record))

    async def commit(self) -> bool:
        """Wait until what was recorded is committed: results before their dependents start.

        True when it waited for the store (which let the loop run other tasks meanwhile).
        """
        if self.store is not None and self.settings.durable_commits:
            await self.store.flush()
            return True
        return False

    def redact(self, text: str) -> str:
        """``text`` with the host's secrets masked."""
        return self._redactor.text(text)

    def redact_value(self, data: Any) -> Any:
        """JSON-like ``data`` with the host's secrets masked."""
        return self._redactor.redact(data) if self._redactor else data

    def context(self, node: CompiledNode, path: str, attempt: int) -> NodeContext:
        """The ``ctx`` of one attempt."""
        ctx = NodeContext(
            run_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            node_id=path,
            node_type=node.type.type,
            attempt=attempt,
            idempotency_key=f"{self.run_id}:{path}",
            durable=self.store is not None,
            resume_input=self.resume_input if path in self._resuming else None,
            env=self._env,
            _log_sink=self._log_sink(path),
            _chunk_sink=self._chunk_sink(path),
        )
        if node.tools:
            ctx.tools = AttemptTools(self, path, node.tools, ctx)
        return ctx

    # public --------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run: in-flight nodes are cancelled and the run is recorded as cancelled."""
        self.cancelling = True
        self.root.cancel()

    def abandon(self) -> None:
        """Stop executing the run but leave it running in the store, released, so that another
        host takes it over at once (a host shutting down hands its runs on)."""
        self._lost = True
        self._abandoned = True
        self.root.cancel()

    async def execute(self) -> RunResult:
        """Run the workflow to its end (or a pause) and return the result."""
        begin = time.perf_counter()
        if self.store is not None:
            self.store.record_run_started(self._redactor.run_record(self._run_record()))
            # Recorded before any node starts: a node's side effects never belong to a run the
            # store does not know (nor that another process could not cancel or take over). A
            # resumed run's claim already made it running and this host's: its record goes
            # with the first node's commit.
            if not self._resumed:
                await self.commit()
        self.emit(
            EventType.RUN_RESUMED if self._resumed else EventType.RUN_STARTED,
            None,
            {"workflow_id": self.compiled.workflow_id, "nodes": len(self.compiled.nodes)},
        )
        stopped: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                # The lease task ends when told to: cancelling its scope costs tens of
                # microseconds per run (anyio writes the cancelling task into a message).
                done = anyio.Event()
                if self.store is not None and self._owner is not None:
                    tg.start_soon(self._keep_lease, done)
                try:
                    await self.root.execute()
                finally:
                    done.set()
        except anyio.get_cancelled_exc_class():
            # Cancelled from outside (Ctrl-C, the caller's scope): record it, then let it go on.
            with anyio.CancelScope(shield=True):
                self.cancelling = True
                await self._finish(begin)
            raise
        except BaseException as exc:  # recorded below; re-raised if fatal
            # The engine stopped for a reason of its own (a bug, KeyboardInterrupt): the run
            # still ends, failed with that error, before anything else happens.
            stopped = exc
            self._fail_run(exc)
        with anyio.CancelScope(shield=stopped is not None):
            result = await self._finish(begin)
        if stopped is not None and not isinstance(stopped, Exception):
            raise stopped
        return result

    # the lease -----------------------------------------------------------------------------

    async def _keep_lease(self, done: anyio.Event) -> None:
        store, owner = self.store, self._owner
        assert store is not None and owner is not None  # started only with both
        while True:
            with anyio.move_on_after(self.settings.renew_every):
                await done.wait()
            if done.is_set():
                return
            try:
                state = await anyio.to_thread.run_sync(
                    store.renew_lease, self.run_id, owner, self.settings.lease_seconds
                )
            except StoreError as exc:
                # A busy or failing database must not stop the run: try again next period (if
                # the lease runs out meanwhile, the next renewal says whether we lost the run).
                _log.warning("run %s: cannot renew the lease: %s", self.run_id, exc.message)
                continue
            if not state.still_owner:
                # Another host took the run over (our lease expired): stop, write nothing more.
                self._lost = True
                self.cancel()
                return
            if state.cancel_requested and not self.cancelling:
                self.cancel()

    # events from handlers -------------------------------------------------------------------

    def _log_sink(self, path: str) -> _LogSink:
        return _LogSink(weakref.ref(self), path)

    def _chunk_sink(self, path: str) -> _ChunkSink:
        return _ChunkSink(weakref.ref(self), path)

    # the end -------------------------------------------------------------------------------

    def _fail_run(self, exc: BaseException) -> None:
        """Record why the engine stopped, as the run's error (unless a node failed first)."""
        if self.root.error is None:
            if isinstance(exc, PolyhostError):
                code, message = exc.code, exc.message
            elif isinstance(exc, Exception):
                code, message = "internal_error", f"{type(exc).__name__}: {exc}"
            else:
                code, message = "internal_error", f"the engine stopped with {type(exc).__name__}"
            self.root.error = {"node": None, "code": code, "message": self.redact(message)}
        for record in self.root.results:
            if record.status in (NodeStatus.PENDING, NodeStatus.RUNNING):
                record.status = NodeStatus.CANCELLED

    def _duration_ms(self, begin: float) -> float:
        """Milliseconds since the run started: a resumed run counts from its first start, pauses
        included, so that its duration agrees with its ``started_at`` and end."""
        if self._resumed:
            return round(max(0.0, time.time() - self.started_at) * 1000, 3)
        return _ms(begin)

    async def _finish(self, begin: float) -> RunResult:
        root = self.root
        error = root.error
        if error is not None:
            status = RunStatus.FAILED
        elif self.cancelling:
            status = RunStatus.CANCELLED
            error = {"node": None, "code": "cancelled", "message": "the run was cancelled"}
        elif root.paused:
            status = RunStatus.PAUSED
        else:
            status = RunStatus.COMPLETED
        outputs = None
        if status is RunStatus.COMPLETED:
            try:
                outputs = root.outputs()
                depth = self.settings.limits.max_value_depth
                for name, value in outputs.items():
                    where = f"outputs.{name}"
                    check_output(
                        value, where, depth, _NO_SIZE_LIMIT, root=where, what=f"the run's {where}"
                    )
            except PolyhostError as exc:
                status = RunStatus.FAILED
                outputs = None
                error = {"node": None, "code": exc.code, "message": exc.message}
        pause = None
        wake_at: float | None = None
        if status is RunStatus.PAUSED:
            due = [float(p["wake_at"]) for p in self.pauses if p.get("wake_at") is not None]
            wake_at = min(due) if due else None
            pause = {"waiting": self.pauses, "wake_at": wake_at}
        nodes = {
            node.id: record for node, record in zip(self.compiled.nodes, root.results, strict=True)
        }
        result = RunResult(
            execution_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            status=status,
            outputs=outputs,
            error=error,
            duration_ms=self._duration_ms(begin),
            nodes=nodes,
            started_at=self.started_at,
            inputs=self.inputs,
            pause=pause,
        )
        # What leaves the run (the store, the caller, the CLI) holds no secret: the nodes'
        # records in memory keep their values, the result gets masked copies.
        result = self._redactor.result(result)
        event = {
            RunStatus.COMPLETED: EventType.RUN_COMPLETED,
            RunStatus.FAILED: EventType.RUN_FAILED,
            RunStatus.CANCELLED: EventType.RUN_CANCELLED,
            RunStatus.PAUSED: EventType.RUN_PAUSED,
        }[status]
        data: dict[str, Any] = {"status": status.value, "duration_ms": result.duration_ms}
        data["pause" if pause else "error"] = pause or error
        if self._abandoned and self.store is not None and self._owner is not None:
            result.status = RunStatus.RUNNING
            try:
                self.store.release_run(self.run_id, self._owner)
                await self.store.flush()
            except PolyhostError as exc:  # the lease lapses instead
                _log.warning("run %s: cannot hand the run on: %s", self.run_id, exc.message)
            return result
        self.emit(event, None, data)
        if self.store is not None and not self._lost:
            await self._record_end(self.store, result, pause, wake_at)
        return result

    async def _record_end(
        self,
        store: RunStore,
        result: RunResult,
        pause: dict[str, Any] | None,
        wake_at: float | None,
    ) -> None:
        """Write the run's end; when the store refuses it, the run still ends there, failed."""
        try:
            if pause is not None:
                store.record_pause(self.run_id, self._redactor.redact(pause), wake_at)
            await self._reload_dropped(result)
            store.record_run_finished(result)
            await store.flush()
            return
        except PolyhostError as exc:
            failure = exc
        # Something in this run's last batch (a node's record, an event) could not be written:
        # the run ends failed with that error, in a record of its own that holds no output.
        result.status = RunStatus.FAILED
        result.outputs = None
        result.pause = None
        result.error = {"node": None, "code": failure.code, "message": self.redact(failure.message)}
        for record in result.nodes.values():
            record.output = None
        try:
            store.record_run_finished(result)
            await store.flush()
        except PolyhostError as exc:
            # Nothing more can be written; the lease lapses and another host ends the run.
            _log.error("run %s: cannot record its end: %s", self.run_id, exc.message)

    async def _reload_dropped(self, result: RunResult) -> None:
        # Outputs dropped from memory mid-run come back from the store for the result object.
        dropped = self.root.dropped
        if not dropped or self.store is None:
            return
        await self.store.flush()
        stored = await anyio.to_thread.run_sync(self.store.load_nodes, self.run_id)
        for node_id in dropped:
            if node_id in stored and node_id in result.nodes:
                result.nodes[node_id].output = stored[node_id].output

    def _run_record(self) -> RunRecord:
        if self._record is not None:
            return self._record
        return RunRecord(
            run_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            status=RunStatus.RUNNING,
            inputs=self.inputs,
            document=self.compiled.recorded_document(),
            started_at=self.started_at,
        )


class _LogSink:
    """``ctx.log`` of one node. It holds the run weakly: a worker thread that keeps its last
    call's arguments must not keep a finished (or paused) run in memory."""

    __slots__ = ("_path", "_run")

    def __init__(self, run: weakref.ref[Execution], path: str) -> None:
        self._run = run
        self._path = path

    def __call__(self, level: str, message: str, fields: dict[str, Any]) -> None:
        run = self._run()
        if run is not None:
            run.emit(EventType.LOG, self._path, {"level": level, "message": message, **fields})


class _ChunkSink:
    """``ctx.chunk`` of one node; weak like :class:`_LogSink`."""

    __slots__ = ("_path", "_run")

    def __init__(self, run: weakref.ref[Execution], path: str) -> None:
        self._run = run
        self._path = path

    def __call__(self, data: Any) -> None:
        run = self._run()
        if run is not None:
            run.emit(EventType.NODE_CHUNK, self._path, {"data": data})


def _ms(begin: float) -> float:
    return round((time.perf_counter() - begin) * 1000, 3)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
