"""One node of a graph run, attempt by attempt: its ``when``, its parameters resolved and
checked, the call through the router (or a loop's body), its timeout, its retries, its output
and ports checked, and where its error goes (the error port, ``continue``, or the run)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import (
    ExpressionError,
    NodeError,
    NodeOutputError,
    NodeParameterError,
    NodeTimeoutError,
    PolyhostError,
)
from ..compile._compiled import ERROR_PORT, CompiledGraph, CompiledNode
from ..compile._expressions import Scope
from ..compile._schema import parameter_problem
from ..events._events import EventType
from ..events._result import NodeResult, NodeStatus
from ..plan._bridge import RunState
from ..runtimes._pause import PauseRequested
from ..workflow._model import RetryPolicy
from ..workflow._values import check_output

if TYPE_CHECKING:
    from ._engine import Execution

__all__ = ["NodeAttempts", "error_info", "unexpected"]


class NodeAttempts:
    """How a ``GraphRun`` runs one node (the graph's scheduling lives in ``._graph``)."""

    run: Execution
    graph: CompiledGraph
    scope: Scope
    results: list[NodeResult]
    nulls: set[str]
    error: dict[str, Any] | None
    _state: RunState
    _restored: Mapping[str, NodeResult]

    if TYPE_CHECKING:  # defined by GraphRun and Replay

        def path(self, index: int) -> str: ...
        def cancel(self) -> None: ...
        async def _settled(
            self, index: int, ready: list[int], skipped: list[int]
        ) -> int | None: ...
        def _mark_skipped(self, index: int, reason: str) -> None: ...
        def _pause(self, index: int, info: dict[str, Any]) -> None: ...
        async def _resume_paused(self, index: int, restored: NodeResult) -> int | None: ...
        async def _run_body(self, node: CompiledNode, path: str, params: dict[str, Any]) -> Any: ...

    # one node, its attempts ----------------------------------------------------------------

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
                return await self._fail(index, error_info(path, exc.code, exc.message, 1, "when"))
            if go is not True:
                if go is not False:
                    message = f"`when` must give a boolean, got {_type_name(go)}"
                    return await self._fail(
                        index, error_info(path, "invalid_condition", message, 1, "when")
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
                error = error_info(path, exc.code, self.run.redact(exc.message), attempt, exc.field)
                if exc.retryable and attempt < policy.attempts and not self.run.cancelling:
                    delay = self._retry_delay(policy, attempt, exc)
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
            except GeneratorExit:
                raise
            except BaseException as exc:
                # Nothing that escapes an attempt may leave the node running: it fails, typed.
                code, message, field = unexpected(exc, self.run.settings.limits.max_value_depth)
                record.duration_ms = _ms(begin)
                return await self._fail(
                    index, error_info(path, code, self.run.redact(message), attempt, field)
                )
            record.duration_ms = _ms(begin)
            return await self._complete(index, output, ports)

    def _retry_delay(self, policy: RetryPolicy, attempt: int, exc: NodeError) -> float:
        """The wait before a retry, within [0, max_retry_delay] whatever the policy gave; at
        least what the failing service asked for (a 429's Retry-After)."""
        rand = random.random()  # noqa: S311 (jitter, not a secret)
        delay = policy.delay_before(attempt + 1, rand)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        cap = self.run.settings.limits.max_retry_delay
        if math.isnan(delay) or delay > cap:
            return cap
        return max(delay, 0.0)

    async def _complete(self, index: int, output: Any, ports: list[str]) -> int | None:
        node = self.graph.nodes[index]
        record = self.results[index]
        path = self.path(index)
        try:
            self.scope.set(node.id, output)
        except (PolyhostError, ValueError, TypeError, RecursionError) as exc:
            # The output passed the checks but the expression scope cannot hold it.
            message = f"the output cannot be read by expressions: {_message(exc)}"
            return await self._fail(
                index, error_info(path, "invalid_output", message, record.attempts, None)
            )
        record.status = NodeStatus.COMPLETED
        record.output = output
        record.ports = ports
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
                    if node.timeout is not None and math.isfinite(node.timeout):
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
            raise _node_error(exc, path) from exc
        try:
            self._check_output(path, output)
        except PolyhostError as exc:
            raise _node_error(exc, path) from None
        return output, self._ports(node, params, output, path)

    async def _with_timeout(self, node: CompiledNode, path: str, call: Any) -> Any:
        if node.timeout is None or node.timeout == math.inf:
            return await call
        if math.isnan(node.timeout):
            call.close()
            raise NodeParameterError("`timeout` is not a number", node=path, field="timeout")
        try:
            with anyio.fail_after(node.timeout):
                return await call
        except TimeoutError:
            raise NodeTimeoutError(
                f"timed out after {node.timeout:g}s", node=path, field="timeout"
            ) from None

    def _resolve_params(self, node: CompiledNode, path: str) -> dict[str, Any]:
        try:
            params: dict[str, Any] = node.params.resolve(self.scope, self.nulls)
            for key, expression in node.expression_params.items():
                params[key] = expression.evaluate(self.scope)
        except ExpressionError as exc:
            raise NodeError(
                exc.message, node=path, code=exc.code, field="with", retryable=False
            ) from None
        node_type = node.type
        problem = parameter_problem(
            node_type.type, node_type.input_schema, params, self.run.settings.limits
        )
        if problem is not None:
            message, where = problem
            raise NodeParameterError(message, node=path, field=f"with.{where}" if where else "with")
        return params

    def _check_output(self, path: str, output: Any) -> None:
        if output is None:
            return
        settings = self.run.settings
        check_output(output, path, settings.limits.max_value_depth, settings.max_output_bytes)

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


def error_info(
    path: str, code: str, message: str, attempts: int, field: str | None
) -> dict[str, Any]:
    return {
        "message": _clean(message),
        "code": code,
        "node": path,
        "attempts": attempts,
        "field": field,
    }


def _clean(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (from a handler's message) becomes U+FFFD, so
    the error can be stored and printed."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _node_error(exc: PolyhostError, path: str) -> NodeError:
    """A typed error from below the node (a limit, the store, a runtime) as the node's error."""
    if isinstance(exc, NodeError):
        exc.node = exc.node or path
        return exc
    return NodeError(
        exc.message,
        node=path,
        code=exc.code,
        field=getattr(exc, "field", None),
        retryable=False,
    )


def unexpected(exc: BaseException, max_depth: int) -> tuple[str, str, str | None]:
    """Code, message and field for an exception the engine did not expect from a node."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # a task group's wrapping says nothing; its first cause does
    if isinstance(exc, PolyhostError):
        return exc.code, exc.message, getattr(exc, "field", None)
    if isinstance(exc, RecursionError):
        # Only nesting makes Python run out of stack here (a value deeper than anything checks).
        return (
            "limit_exceeded",
            f"a value of the node is nested too deep to process (limit max_value_depth = "
            f"{max_depth}; see docs/limits.md)",
            None,
        )
    if not isinstance(exc, Exception):  # KeyboardInterrupt or SystemExit from a handler
        return "internal_error", f"the node stopped with {type(exc).__name__}", None
    return "internal_error", f"{type(exc).__name__}: {_message(exc)}", None


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, PolyhostError) else str(exc) or type(exc).__name__


def _ms(begin: float) -> float:
    return round((time.perf_counter() - begin) * 1000, 3)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
