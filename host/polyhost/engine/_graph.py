"""One DAG being run: a workflow's top level, or one iteration of a loop or parallel body.

A ``GraphRun`` takes ready nodes from its Rust scheduler state, runs them (one node's attempts:
``._attempt``), and commits each result before any dependent starts; a resumed run rebuilds its
state from the store first (``._replay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from .._errors import ExpressionError
from ..compile._compiled import CompiledGraph, CompiledNode
from ..compile._expressions import Scope
from ..events._events import EventType
from ..events._result import NodeResult, NodeStatus
from ._attempt import error_info, unexpected
from ._replay import Replay

if TYPE_CHECKING:
    from ._engine import Execution

__all__ = ["GraphRun"]


class GraphRun(Replay):
    """Runs one graph to its end within an ``Execution``: its scheduling here, one node in
    ``._attempt``, resumption from the store in ``._replay``."""

    def __init__(
        self,
        run: Execution,
        graph: CompiledGraph,
        scope: Scope,
        *,
        prefix: str = "",
        restored: Mapping[str, NodeResult] | None = None,
    ) -> None:
        self.run = run
        self.graph = graph
        self.scope = scope
        self.prefix = prefix
        self.results = [NodeResult() for _ in graph.nodes]
        self.nulls: set[str] = set()
        self.error: dict[str, Any] | None = None
        self.paused: list[dict[str, Any]] = []
        self.dropped: set[str] = set()
        self._state = graph.plan.new_run()
        self._restored = restored or {}
        self._task_group: anyio.abc.TaskGroup | None = None
        # Outputs no pending node reads are dropped from memory (they stay in the store).
        self._pending_readers = [len(r) for r in graph.readers]
        self._sources: list[list[int]] = [[] for _ in graph.nodes]
        for source, readers in enumerate(graph.readers):
            for reader in readers:
                self._sources[reader].append(source)

    # the run -------------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run every node that becomes ready; returns when nothing more can run."""
        ready = self._replay() if self._restored else self._state.start()
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            for index in ready[1:]:
                tg.start_soon(self._run_node, index, name=self.path(index))
            if ready:
                # The first ready node runs in this task: a graph that starts with one node
                # (a chain, a resumed run) spawns no task for it.
                await self._run_node(ready[0])
        self._task_group = None
        # In a paused graph, nodes not reached yet are still pending: the resume runs them.
        waits = bool(self.paused) and self.error is None and not self.run.cancelling
        for node, record in zip(self.graph.nodes, self.results, strict=True):
            if record.status is NodeStatus.PENDING and waits:
                continue
            if record.status in (NodeStatus.PENDING, NodeStatus.RUNNING):
                record.status = NodeStatus.CANCELLED
                self.run.record_node(self.path(node.index), record)

    def cancel(self) -> None:
        """Stop every node of this graph that runs or would run."""
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def path(self, index: int) -> str:
        """The node's id as events and the store name it (``loop[2].node`` inside bodies)."""
        return self.prefix + self.graph.nodes[index].id

    def outputs(self) -> dict[str, Any]:
        """The graph's result: its ``outputs`` templates, or its leaves' outputs."""
        graph = self.graph
        if graph.outputs is None:
            return {node_id: self.results[graph.index[node_id]].output for node_id in graph.leaves}
        nulls = self.nulls | {
            node.id
            for node, record in zip(graph.nodes, self.results, strict=True)
            if record.status is not NodeStatus.COMPLETED
        }
        values = {}
        for name, template in graph.outputs.items():
            try:
                values[name] = template.resolve(self.scope, nulls)
            except ExpressionError as exc:
                raise ExpressionError(
                    f"outputs.{name}: {exc.message}", field=f"outputs.{name}"
                ) from None
        return values

    # scheduling ----------------------------------------------------------------------------

    async def _run_node(self, index: int) -> None:
        # A task goes on with a node its own node made ready rather than spawn a task for it:
        # chains then cost one task, not one per node. Waiting for the commit, or else a
        # checkpoint (in _settled), keeps the loop fair.
        current: int | None = index
        try:
            while current is not None:
                current = await self._run_one(current)
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            raise
        except BaseException as exc:  # whatever stops a node ends the run
            self._crash(index if current is None else current, exc)

    def _crash(self, index: int, exc: BaseException) -> None:
        """The engine itself failed around node ``index`` (a store that cannot write, a bug):
        the node fails unless it had settled, and the graph fails with the error."""
        record = self.results[index]
        path = self.path(index)
        code, message, field = unexpected(exc, self.run.settings.limits.max_value_depth)
        error = error_info(path, code, self.run.redact(message), max(record.attempts, 1), field)
        if record.status in (NodeStatus.PENDING, NodeStatus.RUNNING):
            record.status = NodeStatus.FAILED
            record.error = error
            self.run.emit(EventType.NODE_FAILED, path, {"error": error, "handled": None})
            self.run.record_node(path, record)
        if self.error is None:
            self.error = {"node": path, "code": code, "message": error["message"]}
        self.cancel()

    async def _settled(self, index: int, ready: list[int], skipped: list[int]) -> int | None:
        """Record what settling ``index`` made skipped and ready; start the ready ones once the
        store has committed the settled results. Returns one ready node for the caller."""
        for node in skipped:
            self._mark_skipped(node, "dead_path")
        self._release_sources(index)
        for node in skipped:
            self._release_sources(node)
        if not ready or self._task_group is None:
            return None
        if not await self.run.commit():
            await anyio.lowlevel.checkpoint()
        for node in ready[1:]:
            self._task_group.start_soon(self._run_node, node, name=self.path(node))
        return ready[0]

    def _mark_skipped(self, index: int, reason: str) -> None:
        node = self.graph.nodes[index]
        record = self.results[index]
        record.status = NodeStatus.SKIPPED
        record.reason = reason
        self.nulls.add(node.id)
        self.scope.set(node.id, None)
        event = self.run.emit(EventType.NODE_SKIPPED, self.path(index), {"reason": reason})
        record.settled_seq = event.seq
        self.run.record_node(self.path(index), record)

    def _release_sources(self, index: int) -> None:
        if not self.run.drops_outputs:
            return
        for source in self._sources[index]:
            self._pending_readers[source] -= 1
            node = self.graph.nodes[source]
            if self._pending_readers[source] == 0 and node.id not in self.graph.kept:
                self.scope.remove(node.id)
                # A small output stays: reading it back at the run's end costs more than it.
                if not _small(self.results[source].output):
                    self.results[source].output = None
                    self.dropped.add(node.id)

    # loop and parallel bodies --------------------------------------------------------------

    async def _run_body(self, node: CompiledNode, path: str, params: dict[str, Any]) -> Any:
        from ._loops import run_loop, run_parallel  # noqa: PLC0415 (loops build GraphRuns)

        if node.type.control == "loop":
            return await run_loop(self, node, path, params)
        return await run_parallel(self, node, path, params)

    # pauses (resumption: ._replay) ---------------------------------------------------------

    def _pause(self, index: int, info: dict[str, Any]) -> None:
        record = self.results[index]
        path = self.path(index)
        record.status = NodeStatus.PAUSED
        record.reason = str(info["kind"])
        # While paused, the node's output holds what it waits for (a resumed run reads it).
        record.output = info
        self.paused.append(info)
        if info["kind"] != "nested":
            self.run.pauses.append(info)
        self.run.emit(EventType.NODE_PAUSED, path, info)
        self.run.record_node(path, record)


# What an output may hold and still stay in memory once no node reads it.
_SMALL_FIELDS = 8
_SMALL_CHARS = 256
_SCALARS = (int, float, bool)


def _small(output: Any) -> bool:
    """Whether ``output`` is nothing or a flat object of a few scalars and short strings."""
    if output is None:
        return True
    if type(output) is not dict or len(output) > _SMALL_FIELDS:
        return False
    for key, value in output.items():
        if type(key) is not str or len(key) > _SMALL_CHARS:
            return False
        if type(value) is str:
            if len(value) > _SMALL_CHARS:
                return False
        elif value is not None and type(value) not in _SCALARS:
            return False
    return True
