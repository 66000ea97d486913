"""The engine: drives one run of a compiled workflow to its end.

It takes ready nodes from the Rust scheduler state, resolves their templates, hands them to the
RuntimeRouter under the host-wide concurrency limit, applies ``when``, retries, timeouts and
error routing, and records every transition as an event.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import jsonschema

from ._compiler import ERROR_PORT, CompiledNode, CompiledWorkflow
from ._context import NodeContext
from ._errors import (
    ExpressionError,
    NodeError,
    NodeOutputError,
    NodeParameterError,
    NodeTimeoutError,
    PolyhostError,
)
from ._events import EventLog, EventType, Subscriber
from ._expressions import Scope
from ._limiter import NodeSlots
from ._redaction import Redactor
from ._result import NodeResult, NodeStatus, RunResult, RunStatus
from ._router import RuntimeRouter
from .store._base import RunRecord, RunStore

__all__ = ["EngineSettings", "Execution"]

_JSON_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Host settings the engine applies to every run."""

    max_output_bytes: int = 16 * 1024 * 1024
    env: dict[str, str] | None = None


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
    ) -> None:
        self.compiled = compiled
        self.inputs = inputs
        self.run_id = run_id
        self._router = router
        self._limiter = limiter
        self._store = store
        self._settings = settings or EngineSettings()
        self._record = record
        env = dict(self._settings.env or {})
        self._redactor = Redactor(env.values())
        subs = list(subscribers or [])
        if store is not None:
            subs.insert(0, store.record_event)
        self.events = EventLog(run_id, subs, self._redactor.redact if self._redactor else None)
        self.nodes = {node.id: NodeResult() for node in compiled.nodes}
        self._results = [self.nodes[node.id] for node in compiled.nodes]
        self._state = compiled.plan.new_run()
        self._scope = Scope()
        self._nulls: set[str] = set()
        self._error: dict[str, Any] | None = None
        self._cancel_requested = False
        self._task_group: anyio.abc.TaskGroup | None = None
        self._contexts: dict[int, NodeContext] = {}
        self.started_at = time.time()
        self._scope.set("input", inputs)
        self._scope.set("var", dict(compiled.workflow.variables))
        self._scope.set("env", env)
        self._scope.set(
            "execution",
            {
                "id": run_id,
                "workflow_id": compiled.workflow_id,
                "started_at": _iso(self.started_at),
            },
        )

    # public --------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run: in-flight nodes are cancelled and the run is recorded as cancelled."""
        self._cancel_requested = True
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def execute(self) -> RunResult:
        """Run the workflow to its end and return the result."""
        begin = time.perf_counter()
        if self._store is not None:
            self._store.record_run_started(self._run_record())
        self.events.emit(
            EventType.RUN_STARTED,
            data={"workflow_id": self.compiled.workflow_id, "nodes": len(self._results)},
        )
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                if self._cancel_requested:
                    tg.cancel_scope.cancel()
                self._spawn(tg, self._state.start())
        except anyio.get_cancelled_exc_class():
            # Cancelled from outside (Ctrl-C, the caller's scope): record it, then let it go on.
            with anyio.CancelScope(shield=True):
                self._cancel_requested = True
                await self._finish(begin)
            raise
        finally:
            self._task_group = None
        return await self._finish(begin)

    # scheduling ----------------------------------------------------------------------------

    def _spawn(self, tg: anyio.abc.TaskGroup, ready: list[int]) -> None:
        for index in ready:
            tg.start_soon(self._run_node, index, name=self.compiled.nodes[index].id)

    def _settled(self, ready: list[int], skipped: list[int]) -> None:
        for index in skipped:
            self._mark_skipped(index, "dead_path")
        if ready and self._task_group is not None:
            self._spawn(self._task_group, ready)

    def _settled_then(self, ready: list[int], skipped: list[int]) -> int | None:
        """Like ``_settled``, but the first ready node is left to the calling task to run."""
        if not ready or self._task_group is None:
            self._settled(ready, skipped)
            return None
        self._settled(ready[1:], skipped)
        return ready[0]

    def _mark_skipped(self, index: int, reason: str) -> None:
        node = self.compiled.nodes[index]
        self._results[index].status = NodeStatus.SKIPPED
        self._nulls.add(node.id)
        self._scope.set(node.id, None)
        self.events.emit(EventType.NODE_SKIPPED, node.id, {"reason": reason})
        if self._store is not None:
            self._store.record_node(self.run_id, node.id, self._results[index])

    async def _run_node(self, index: int) -> None:
        # A task goes on with a node its own node made ready rather than spawn a task for it:
        # chains then cost one task, not one per node. The checkpoint keeps the loop fair.
        following = await self._run_one(index)
        while following is not None:
            await anyio.lowlevel.checkpoint()
            following = await self._run_one(following)

    async def _run_one(self, index: int) -> int | None:
        """Run one node to its end; returns a newly ready node for the caller to run next."""
        node = self.compiled.nodes[index]
        result = self._results[index]
        if node.when is not None:
            try:
                go = node.when.evaluate(self._scope)
            except ExpressionError as exc:
                self._fail_node(
                    node, result, _error_dict(node, "expression_error", exc.message, 1, "when")
                )
                return None
            if go is not True:
                if go is not False:
                    message = f"`when` must give a boolean, got {_type_name(go)}"
                    self._fail_node(
                        node, result, _error_dict(node, "invalid_condition", message, 1, "when")
                    )
                    return None
                self._mark_skipped(index, "when")
                return self._settled_then(*self._state.skip(index))
        self._state.mark_running(index)
        result.status = NodeStatus.RUNNING
        result.started_at = time.time()
        begin = time.perf_counter()
        policy = node.retry
        attempt = 0
        while True:
            attempt += 1
            result.attempts = attempt
            try:
                output, ports = await self._attempt(node, attempt)
            except NodeError as exc:
                error = _error_dict(
                    node, exc.code, self._redactor.text(exc.message), attempt, exc.field
                )
                if exc.retryable and attempt < policy.attempts and not self._cancel_requested:
                    delay = policy.delay_before(attempt + 1, random.random())  # noqa: S311
                    self.events.emit(
                        EventType.NODE_RETRYING,
                        node.id,
                        {"attempt": attempt, "delay": delay, "error": error},
                    )
                    await anyio.sleep(delay)
                    continue
                result.duration_ms = _ms(begin)
                self._fail_node(node, result, error)
                return None
            except anyio.get_cancelled_exc_class():
                result.status = NodeStatus.CANCELLED
                result.duration_ms = _ms(begin)
                self.events.emit(EventType.NODE_CANCELLED, node.id, {"attempt": attempt})
                if self._store is not None:
                    self._store.record_node(self.run_id, node.id, result)
                raise
            result.duration_ms = _ms(begin)
            result.status = NodeStatus.COMPLETED
            result.output = output
            self._scope.set(node.id, output)
            self.events.emit(
                EventType.NODE_COMPLETED,
                node.id,
                {"attempt": attempt, "duration_ms": result.duration_ms, "ports": ports},
            )
            if self._store is not None:
                self._store.record_node(self.run_id, node.id, result)
            return self._settled_then(*self._state.complete(index, ports))

    async def _attempt(self, node: CompiledNode, attempt: int) -> tuple[Any, list[str]]:
        params = self._resolve_params(node)
        ctx = NodeContext(
            run_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            node_id=node.id,
            node_type=node.type.type,
            attempt=attempt,
            idempotency_key=f"{self.run_id}:{node.id}",
            _log_sink=self._log_sink(node.id),
            _chunk_sink=self._chunk_sink(node.id),
        )
        self.events.emit(
            EventType.NODE_STARTED, node.id, {"type": node.type.type, "attempt": attempt}
        )
        try:
            async with self._limiter:
                if node.timeout is not None:
                    with anyio.fail_after(node.timeout):
                        output = await self._router.execute(node.type, params, ctx)
                else:
                    output = await self._router.execute(node.type, params, ctx)
        except TimeoutError:
            ctx.cancel()
            raise NodeTimeoutError(
                f"timed out after {node.timeout:g}s", node=node.id, field="timeout"
            ) from None
        except anyio.get_cancelled_exc_class():
            ctx.cancel()
            raise
        except NodeError as exc:
            exc.node = exc.node or node.id
            raise
        except PolyhostError as exc:
            raise NodeError(exc.message, node=node.id, code=exc.code, retryable=False) from exc
        self._check_output(node, output)
        return output, self._ports(node, params, output)

    def _resolve_params(self, node: CompiledNode) -> dict[str, Any]:
        try:
            params: dict[str, Any] = node.params.resolve(self._scope, self._nulls)
            for key, expression in node.expression_params.items():
                params[key] = expression.evaluate(self._scope)
        except ExpressionError as exc:
            raise NodeError(
                exc.message, node=node.id, code="expression_error", field="with", retryable=False
            ) from None
        schema = node.type.input_schema
        if schema:
            error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(params))
            if error is not None:
                path = ".".join(str(p) for p in error.absolute_path)
                raise NodeParameterError(
                    f"{node.type.type}: {error.message}",
                    node=node.id,
                    field=f"with.{path}" if path else "with",
                )
        return params

    def _check_output(self, node: CompiledNode, output: Any) -> None:
        if output is None:
            return
        try:
            size = len(_JSON_DUMPS(output))
        except (TypeError, ValueError) as exc:
            raise NodeOutputError(
                f"the output is not JSON-serialisable: {exc}", node=node.id
            ) from None
        limit = self._settings.max_output_bytes
        if size > limit:
            raise NodeOutputError(
                f"the output is {size} bytes, over the limit of {limit} bytes", node=node.id
            )

    def _ports(self, node: CompiledNode, params: dict[str, Any], output: Any) -> list[str]:
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
                node=node.id,
            )
        return [port]

    def _fail_node(self, node: CompiledNode, result: NodeResult, error: dict[str, Any]) -> None:
        result.status = NodeStatus.FAILED
        result.error = error
        index = node.index
        if node.has_error_edge:
            handled = "error_port"
            # Readable both as `n.message` and as `n.error.message` (the spec uses both).
            result.output = {**error, "error": error}
            self._scope.set(node.id, result.output)
            # Reads of fields a failed node did not produce give null, not a second failure.
            self._nulls.add(node.id)
            ports = [ERROR_PORT]
        elif node.on_error == "continue":
            handled = "continue"
            self._nulls.add(node.id)
            self._scope.set(node.id, None)
            ports = list(node.type.ports_for({}))
        else:
            handled = None
            ports = []
        self.events.emit(EventType.NODE_FAILED, node.id, {"error": error, "handled": handled})
        if self._store is not None:
            self._store.record_node(self.run_id, node.id, result)
        if handled is None:
            if self._error is None:
                self._error = {"node": node.id, "code": error["code"], "message": error["message"]}
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
            return
        self._settled(*self._state.complete(index, ports))

    # events from handlers -------------------------------------------------------------------

    def _log_sink(self, node_id: str) -> Callable[[str, str, dict[str, Any]], None]:
        def sink(level: str, message: str, fields: dict[str, Any]) -> None:
            self.events.emit(EventType.LOG, node_id, {"level": level, "message": message, **fields})

        return sink

    def _chunk_sink(self, node_id: str) -> Callable[[Any], None]:
        def sink(data: Any) -> None:
            self.events.emit(EventType.NODE_CHUNK, node_id, {"data": data})

        return sink

    # the end -------------------------------------------------------------------------------

    async def _finish(self, begin: float) -> RunResult:
        for node, record in zip(self.compiled.nodes, self._results, strict=True):
            if record.status in (NodeStatus.PENDING, NodeStatus.RUNNING):
                record.status = NodeStatus.CANCELLED
                if self._store is not None:
                    self._store.record_node(self.run_id, node.id, record)
        if self._error is not None:
            status = RunStatus.FAILED
        elif self._cancel_requested:
            status = RunStatus.CANCELLED
            self._error = {"node": None, "code": "cancelled", "message": "the run was cancelled"}
        else:
            status = RunStatus.COMPLETED
        outputs = None
        if status is RunStatus.COMPLETED:
            try:
                outputs = self._outputs()
            except ExpressionError as exc:
                status = RunStatus.FAILED
                self._error = {"node": None, "code": "expression_error", "message": exc.message}
        result = RunResult(
            execution_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            status=status,
            outputs=outputs,
            error=self._error,
            duration_ms=_ms(begin),
            nodes=self.nodes,
            started_at=self.started_at,
            inputs=self.inputs,
        )
        event = {
            RunStatus.COMPLETED: EventType.RUN_COMPLETED,
            RunStatus.FAILED: EventType.RUN_FAILED,
            RunStatus.CANCELLED: EventType.RUN_CANCELLED,
        }[status]
        self.events.emit(
            event,
            data={"status": status.value, "duration_ms": result.duration_ms, "error": self._error},
        )
        if self._store is not None:
            self._store.record_run_finished(result)
            await self._store.flush()
        return result

    def _outputs(self) -> dict[str, Any]:
        compiled = self.compiled
        nulls = self._nulls | {
            node.id
            for node, r in zip(compiled.nodes, self._results, strict=True)
            if r.status is not NodeStatus.COMPLETED and r.output is None
        }
        if compiled.outputs is None:
            return {node_id: self.nodes[node_id].output for node_id in compiled.leaves}
        values = {}
        for name, template in compiled.outputs.items():
            try:
                values[name] = template.resolve(self._scope, nulls)
            except ExpressionError as exc:
                raise ExpressionError(
                    f"outputs.{name}: {exc.message}", field=f"outputs.{name}"
                ) from None
        return values

    def _run_record(self) -> RunRecord:
        if self._record is not None:
            return self._record
        return RunRecord(
            run_id=self.run_id,
            workflow_id=self.compiled.workflow_id,
            status=RunStatus.RUNNING,
            inputs=self.inputs,
            document=self.compiled.workflow.model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
            started_at=self.started_at,
        )


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, jsonschema.Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def _error_dict(
    node: CompiledNode, code: str, message: str, attempts: int, field: str | None
) -> dict[str, Any]:
    return {"message": message, "code": code, "node": node.id, "attempts": attempts, "field": field}


def _ms(begin: float) -> float:
    return round((time.perf_counter() - begin) * 1000, 3)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
