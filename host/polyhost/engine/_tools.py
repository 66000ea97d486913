"""Tools of a node (``llm.chat``'s): node types it runs through the router, like any node.

A tool call gets what a node gets: its arguments (with the parameters the workflow fixed) are
checked against the node type's input schema, it runs on its runtime with a context of its own
(its logs are the calling node's, marked with the tool's name), within a timeout, and its output
is checked like a node's. Whatever goes wrong comes back as a typed ``NodeError`` naming the
calling node and the tool, so the caller can report it (to a model) rather than crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import HandlerError, NodeError, NodeParameterError, NodeTimeoutError, PolyhostError
from ..compile._schema import parameter_problem
from ..compile._tools import ToolBinding
from ..runtimes._context import NodeContext, ToolSpec
from ..runtimes._pause import PauseRequested
from ..workflow._values import check_output

if TYPE_CHECKING:
    from ._engine import Execution

__all__ = ["DEFAULT_TOOL_TIMEOUT", "AttemptTools"]

DEFAULT_TOOL_TIMEOUT = 60.0  # seconds a tool call may take when the node sets none


class AttemptTools:
    """The tools of one attempt of one node (``ctx.tools``)."""

    __slots__ = ("_bindings", "_ctx", "_path", "_run", "_specs")

    def __init__(
        self, run: Execution, path: str, bindings: Sequence[ToolBinding], ctx: NodeContext
    ) -> None:
        self._run = run
        self._path = path
        self._bindings = {b.spec.name: b for b in bindings}
        self._specs = tuple(b.spec for b in bindings)
        self._ctx = ctx

    @property
    def specs(self) -> Sequence[ToolSpec]:
        """The tools, in the order the workflow lists them."""
        return self._specs

    async def call(
        self, name: str, arguments: dict[str, Any], call_id: str, timeout: float | None = None
    ) -> Any:
        """Run tool ``name`` within ``timeout`` seconds (default 60, never past the attempt's
        own deadline); its output (secrets masked), or a ``NodeError`` naming it."""
        binding = self._bindings.get(name)
        where = f"tools.{name}"
        if binding is None:
            known = ", ".join(self._bindings) or "none"
            raise NodeParameterError(
                f"there is no tool {name!r} (tools: {known})", node=self._path, field=where
            )
        params = {**arguments, **binding.fixed}  # what the workflow fixed, the model cannot change
        self._check(binding, params, where)
        ctx = self._tool_context(binding, call_id)
        timeout = self._timeout(timeout)
        try:
            with anyio.fail_after(timeout):
                output = await self._run.router.execute(binding.node_type, params, ctx)
        except TimeoutError:
            ctx.cancel()
            raise NodeTimeoutError(
                f"tool {name} timed out after {timeout:g}s", node=self._path, field=where
            ) from None
        except anyio.get_cancelled_exc_class():
            ctx.cancel()
            raise
        except PauseRequested:
            # A run pauses at a node, not inside one's tool call: the model is told instead.
            raise NodeError(
                f"tool {name} asked to pause the run, which a tool cannot do",
                node=self._path,
                code="tool_cannot_pause",
                field=where,
            ) from None
        except NodeError as exc:
            exc.node = self._path
            exc.field = f"{where}.{exc.field}" if exc.field else where
            raise
        except PolyhostError as exc:
            raise NodeError(exc.message, node=self._path, code=exc.code, field=where) from exc
        except Exception as exc:  # a runtime's own failure is the tool's, never the caller's
            message = f"{type(exc).__name__}: {exc}"
            raise HandlerError(message, node=self._path, field=where) from exc
        settings = self._run.settings
        try:
            limits = settings.limits
            check_output(output, self._path, limits.max_value_depth, settings.max_output_bytes)
        except NodeError as exc:
            exc.field = where
            raise
        return self._run.redact_value(output)

    def _check(self, binding: ToolBinding, params: dict[str, Any], where: str) -> None:
        node_type = binding.node_type
        limits = self._run.settings.limits
        problem = parameter_problem(node_type.type, node_type.input_schema, params, limits)
        if problem is not None:
            message, at = problem
            field = f"{where}.{at}" if at else where
            raise NodeParameterError(message, node=self._path, field=field)

    def _tool_context(self, binding: ToolBinding, call_id: str) -> NodeContext:
        ctx = self._ctx
        name = binding.spec.name
        log_sink = ctx._log_sink
        chunk_sink = ctx._chunk_sink
        return NodeContext(
            run_id=ctx.run_id,
            workflow_id=ctx.workflow_id,
            node_id=ctx.node_id,
            node_type=binding.node_type.type,
            attempt=ctx.attempt,
            idempotency_key=f"{ctx.idempotency_key}:{call_id}",
            durable=ctx.durable,
            env=ctx.env,
            _log_sink=_tagged_log(log_sink, name, call_id) if log_sink else None,
            _chunk_sink=_tagged_chunk(chunk_sink, name, call_id) if chunk_sink else None,
        )

    def _timeout(self, given: float | None) -> float:
        deadline = self._ctx.deadline
        timeout = given if given is not None and math.isfinite(given) else DEFAULT_TOOL_TIMEOUT
        if deadline is not None:
            timeout = min(timeout, max(deadline - time.monotonic(), 0.0))
        return timeout


def _tagged_log(
    sink: Callable[[str, str, dict[str, Any]], None], tool: str, call_id: str
) -> Callable[[str, str, dict[str, Any]], None]:
    def log(level: str, message: str, fields: dict[str, Any]) -> None:
        sink(level, message, {**fields, "tool": tool, "call_id": call_id})

    return log


def _tagged_chunk(sink: Callable[[Any], None], tool: str, call_id: str) -> Callable[[Any], None]:
    def chunk(data: Any) -> None:
        sink({"tool_chunk": {"name": tool, "call_id": call_id, "data": data}})

    return chunk
