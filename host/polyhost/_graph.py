"""One DAG being run: a workflow's top level, or one iteration of a loop or parallel body.

A ``GraphRun`` takes ready nodes from its Rust scheduler state, runs them (templates, ``when``,
retries, timeouts, error routing), and commits each result before any dependent starts.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import jsonschema

from ._compiler import ERROR_PORT, CompiledGraph, CompiledNode
from ._errors import (
    ExpressionError,
    NodeError,
    NodeOutputError,
    NodeParameterError,
    NodeTimeoutError,
    PolyhostError,
)
from ._events import EventType
from ._expressions import Scope
from ._pause import PauseRequested
from ._result import NodeResult, NodeStatus

if TYPE_CHECKING:
    from ._engine import Execution

__all__ = ["GraphRun"]

_JSON_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_HANDLED = frozenset({"error_port", "continue"})


class GraphRun:
    """Runs one graph to its end within an ``Execution``."""

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
            for index in ready:
                tg.start_soon(self._run_node, index, name=self.path(index))
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
        # chains then cost one task, not one per node. The checkpoint keeps the loop fair.
        following = await self._run_one(index)
        while following is not None:
            await anyio.lowlevel.checkpoint()
            following = await self._run_one(following)

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
        await self.run.commit()
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
                self.results[source].output = None
                self.dropped.add(node.id)

    # one node ------------------------------------------------------------------------------

    async def _run_one(self, index: int) -> int | None:
        """Run one node to its end; returns a newly ready node for the caller to run next."""
        node = self.graph.nodes[index]
        record = self.results[index]
        path = self.path(index)
        restored = self._restored.get(path)
        if restored is not None and restored.status is NodeStatus.PAUSED:
            return await self._resume_paused(index, restored)
        if node.when is not None and (
            restored is None or restored.status is not NodeStatus.RUNNING
        ):
            try:
                go = node.when.evaluate(self.scope)
            except ExpressionError as exc:
                return await self._fail(
                    index, _error(path, "expression_error", exc.message, 1, "when")
                )
            if go is not True:
                if go is not False:
                    message = f"`when` must give a boolean, got {_type_name(go)}"
                    return await self._fail(
                        index, _error(path, "invalid_condition", message, 1, "when")
                    )
                self._mark_skipped(index, "when")
                return await self._settled(index, *self._state.skip(index))
        self._state.mark_running(index)
        record.status = NodeStatus.RUNNING
        record.started_at = time.time()
        begin = time.perf_counter()
        policy = node.retry
        # A node that was in flight when its host died runs that attempt again.
        attempt = restored.attempts - 1 if restored and restored.status is NodeStatus.RUNNING else 0
        while True:
            attempt += 1
            record.attempts = attempt
            try:
                output, ports = await self._attempt(node, path, attempt)
            except PauseRequested as pause:
                record.duration_ms = _ms(begin)
                self._pause(index, pause.info(path))
                return None
            except NodeError as exc:
                error = _error(path, exc.code, self.run.redact(exc.message), attempt, exc.field)
                if exc.retryable and attempt < policy.attempts and not self.run.cancelling:
                    delay = policy.delay_before(attempt + 1, random.random())  # noqa: S311
                    self.run.emit(
                        EventType.NODE_RETRYING,
                        path,
                        {"attempt": attempt, "delay": delay, "error": error},
                    )
                    await anyio.sleep(delay)
                    continue
                record.duration_ms = _ms(begin)
                return await self._fail(index, error)
            except anyio.get_cancelled_exc_class():
                record.status = NodeStatus.CANCELLED
                record.duration_ms = _ms(begin)
                self.run.emit(EventType.NODE_CANCELLED, path, {"attempt": attempt})
                self.run.record_node(path, record)
                raise
            record.duration_ms = _ms(begin)
            return await self._complete(index, output, ports)

    async def _complete(self, index: int, output: Any, ports: list[str]) -> int | None:
        node = self.graph.nodes[index]
        record = self.results[index]
        path = self.path(index)
        record.status = NodeStatus.COMPLETED
        record.output = output
        record.ports = ports
        self.scope.set(node.id, output)
        event = self.run.emit(
            EventType.NODE_COMPLETED,
            path,
            {"attempt": record.attempts, "duration_ms": record.duration_ms, "ports": ports},
        )
        record.settled_seq = event.seq
        self.run.record_node(path, record)
        return await self._settled(index, *self._state.complete(index, ports))

    async def _attempt(self, node: CompiledNode, path: str, attempt: int) -> tuple[Any, list[str]]:
        params = self._resolve_params(node, path)
        ctx = self.run.context(node, path, attempt)
        self.run.emit(EventType.NODE_STARTED, path, {"type": node.type.type, "attempt": attempt})
        try:
            if node.type.control is not None:
                # Loops hold no concurrency slot: their body nodes take their own.
                output = await self._with_timeout(node, path, self._run_body(node, path, params))
            else:
                async with self.run.slots:
                    if node.timeout is not None:
                        ctx.deadline = time.monotonic() + node.timeout
                    output = await self._with_timeout(
                        node, path, self.run.router.execute(node.type, params, ctx)
                    )
        except anyio.get_cancelled_exc_class():
            ctx.cancel()
            raise
        except NodeTimeoutError:
            ctx.cancel()
            raise
        except (NodeError, PauseRequested) as exc:
            if isinstance(exc, NodeError):
                exc.node = exc.node or path
            raise
        except PolyhostError as exc:
            raise NodeError(exc.message, node=path, code=exc.code, retryable=False) from exc
        self._check_output(path, output)
        return output, self._ports(node, params, output, path)

    async def _with_timeout(self, node: CompiledNode, path: str, call: Any) -> Any:
        if node.timeout is None:
            return await call
        try:
            with anyio.fail_after(node.timeout):
                return await call
        except TimeoutError:
            raise NodeTimeoutError(
                f"timed out after {node.timeout:g}s", node=path, field="timeout"
            ) from None

    async def _run_body(self, node: CompiledNode, path: str, params: dict[str, Any]) -> Any:
        from ._loops import run_loop, run_parallel  # noqa: PLC0415 (loops build GraphRuns)

        if node.type.control == "loop":
            return await run_loop(self, node, path, params)
        return await run_parallel(self, node, path, params)

    def _resolve_params(self, node: CompiledNode, path: str) -> dict[str, Any]:
        try:
            params: dict[str, Any] = node.params.resolve(self.scope, self.nulls)
            for key, expression in node.expression_params.items():
                params[key] = expression.evaluate(self.scope)
        except ExpressionError as exc:
            raise NodeError(
                exc.message, node=path, code="expression_error", field="with", retryable=False
            ) from None
        schema = node.type.input_schema
        if schema:
            error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(params))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path)
                raise NodeParameterError(
                    f"{node.type.type}: {error.message}",
                    node=path,
                    field=f"with.{where}" if where else "with",
                )
        return params

    def _check_output(self, path: str, output: Any) -> None:
        if output is None:
            return
        try:
            size = len(_JSON_DUMPS(output))
        except (TypeError, ValueError) as exc:
            raise NodeOutputError(
                f"the output is not JSON-serialisable: {exc}", node=path
            ) from None
        limit = self.run.settings.max_output_bytes
        if size > limit:
            raise NodeOutputError(
                f"the output is {size} bytes, over the limit of {limit} bytes", node=path
            )

    def _ports(
        self, node: CompiledNode, params: dict[str, Any], output: Any, path: str
    ) -> list[str]:
        node_type = node.type
        declared = node_type.ports_for(params)
        if node_type.port_field is None:
            return list(declared)
        value = output.get(node_type.port_field) if isinstance(output, dict) else None
        port = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if port not in declared:
            raise NodeOutputError(
                f"the output chose port {port!r}, which {node_type.type} does not declare "
                f"({', '.join(declared)})",
                node=path,
            )
        return [port]

    async def _fail(self, index: int, error: dict[str, Any]) -> int | None:
        node = self.graph.nodes[index]
        record = self.results[index]
        path = self.path(index)
        record.status = NodeStatus.FAILED
        record.error = error
        if node.has_error_edge:
            handled: str | None = "error_port"
            # Readable both as `n.message` and as `n.error.message` (the spec uses both).
            record.output = {**error, "error": error}
            self.scope.set(node.id, record.output)
            # Reads of fields a failed node did not produce give null, not a second failure.
            self.nulls.add(node.id)
            ports = [ERROR_PORT]
        elif node.on_error == "continue":
            handled = "continue"
            self.nulls.add(node.id)
            self.scope.set(node.id, None)
            ports = list(node.type.ports_for({}))
        else:
            handled = None
            ports = []
        record.reason = handled
        event = self.run.emit(EventType.NODE_FAILED, path, {"error": error, "handled": handled})
        if handled is None:
            self.run.record_node(path, record)
            if self.error is None:
                self.error = {"node": path, "code": error["code"], "message": error["message"]}
            self.cancel()
            return None
        record.ports = ports
        record.settled_seq = event.seq
        self.run.record_node(path, record)
        return await self._settled(index, *self._state.complete(index, ports))

    # pauses and resumption ----------------------------------------------------------------

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

    async def _resume_paused(self, index: int, restored: NodeResult) -> int | None:
        info = dict(restored.output or {})
        kind = info.get("kind")
        record = self.results[index]
        record.attempts = restored.attempts
        if kind in ("approval", "timer"):
            self._state.mark_running(index)
        if kind == "approval":
            record.duration_ms = restored.duration_ms
            return await self._complete_resumed(index, dict(self.run.resume_input or {}))
        if kind == "timer":
            wake_at = float(info.get("wake_at") or 0)
            if time.time() < wake_at:
                self._pause(index, info)
                return None
            waited = float(info.get("detail", {}).get("seconds", 0.0))
            return await self._complete_resumed(index, {"waited": waited})
        if kind == "nested":
            # A loop or parallel node paused inside its body: run it again; its iterations
            # replay from the store and the paused body node resumes there.
            self._restored = {k: v for k, v in self._restored.items() if k != self.path(index)}
            return await self._run_one(index)
        # A handler's own pause: it runs again and reads ctx.resume_input.
        self._restored = {k: v for k, v in self._restored.items() if k != self.path(index)}
        return await self._run_one(index)

    async def _complete_resumed(self, index: int, output: dict[str, Any]) -> int | None:
        node = self.graph.nodes[index]
        record = self.results[index]
        record.started_at = record.started_at or time.time()
        ports = self._ports(node, {}, output, self.path(index))
        return await self._complete(index, output, ports)

    def _replay(self) -> list[int]:
        """Rebuild the scheduler state and scope from stored node results; the ready nodes."""
        state = self._state
        state.start()
        settled: list[tuple[int, int, NodeResult]] = []
        for index, node in enumerate(self.graph.nodes):
            stored = self._restored.get(self.prefix + node.id)
            if stored is None:
                continue
            if stored.settled_seq is not None and (
                stored.status is NodeStatus.COMPLETED
                or (stored.status is NodeStatus.FAILED and stored.reason in _HANDLED)
                or (stored.status is NodeStatus.SKIPPED and stored.reason == "when")
            ):
                settled.append((stored.settled_seq, index, stored))
        for _, index, stored in sorted(settled, key=lambda item: item[0]):
            node = self.graph.nodes[index]
            self.results[index] = stored
            if stored.status is NodeStatus.SKIPPED:
                state.skip(index)
                self.nulls.add(node.id)
                self.scope.set(node.id, None)
                continue
            state.complete(index, stored.ports or [])
            self.scope.set(node.id, stored.output)
            if stored.status is NodeStatus.FAILED:
                self.nulls.add(node.id)
        ready = []
        for index, node in enumerate(self.graph.nodes):
            current = state.state(index)
            if current == "skipped" and self.results[index].status is not NodeStatus.SKIPPED:
                self.results[index].status = NodeStatus.SKIPPED
                self.results[index].reason = "dead_path"
                self.nulls.add(node.id)
                self.scope.set(node.id, None)
            elif current == "ready":
                ready.append(index)
                stored = self._restored.get(self.prefix + node.id)
                if stored is not None and stored.status is NodeStatus.PAUSED:
                    self.results[index] = NodeResult(
                        status=NodeStatus.PAUSED, attempts=stored.attempts, output=stored.output
                    )
        return ready


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, jsonschema.Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def _error(path: str, code: str, message: str, attempts: int, field: str | None) -> dict[str, Any]:
    return {"message": message, "code": code, "node": path, "attempts": attempts, "field": field}


def _ms(begin: float) -> float:
    return round((time.perf_counter() - begin) * 1000, 3)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
