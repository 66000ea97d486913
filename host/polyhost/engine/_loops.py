"""``core.loop`` and ``core.parallel``: run a node's body once per iteration or branch.

Each iteration is a ``GraphRun`` of the body with its own Rust scheduler state and a child scope
that adds ``loop`` or ``parallel``; its nodes are named ``node[i].child`` in events and the
store, so a resumed run replays the iterations that finished and runs only the rest.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.lowlevel

from .._errors import ExpressionError, LimitExceededError, NodeError, NodeParameterError
from ..compile._compiled import CompiledNode
from ..runtimes._pause import PauseRequested
from ._graph import GraphRun

__all__ = ["run_loop", "run_parallel"]

DEFAULT_CONCURRENCY = 8


async def run_loop(
    parent: GraphRun, node: CompiledNode, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Iterations one after another: ``count``, ``over``, ``while`` or ``do_while``."""
    limits = parent.run.settings.limits
    limit = _max_iterations(
        params, path, limits.default_loop_iterations, limits.max_loop_iterations
    )
    items, total = _items(params, path)
    if total is not None and total > limit:
        # Refused before the first iteration: none of it would be kept.
        raise NodeError(
            f"loop '{path}' would run {_amount(total)} iterations, over max_iterations ({limit})",
            node=path,
            code="max_iterations",
            field=_count_field(params),
            retryable=False,
        )
    conditions = node.conditions
    results: list[Any] = []
    index = 0
    while True:
        if total is not None and index >= total:
            break
        # Each iteration yields to the loop: the node's timeout and a cancel land between
        # iterations even when the body never waits.
        await anyio.lowlevel.checkpoint()
        loop_var = {
            "index": index,
            "iteration": index + 1,
            "item": items[index] if items is not None else None,
            "total": total,
            "previous": results[-1] if results else None,
        }
        if "while" in conditions and not _check(conditions["while"], parent, loop_var, path):
            break
        if index >= limit:
            raise NodeError(
                f"loop '{path}' reached max_iterations ({limit}) and was stopped",
                node=path,
                code="max_iterations",
                field="with.max_iterations",
                retryable=False,
            )
        iteration = await _iterate(parent, node, path, index, var="loop", value=loop_var)
        results.append(iteration.outputs())
        if "do_while" in conditions and not _check(
            conditions["do_while"], iteration, loop_var, path
        ):
            break
        index += 1
    return {"results": results}


async def run_parallel(
    parent: GraphRun, node: CompiledNode, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Branches at once, at most ``concurrency`` at a time; results keep the input order.

    ``concurrency`` workers take the next branch as they finish one, so a branch exists only
    while it runs: memory holds the results, never a task per pending branch.
    """
    items, total = _items(params, path)
    if total is None:
        raise NodeError(
            "core.parallel takes `count` or `over`", node=path, field="with", retryable=False
        )
    limit = parent.run.settings.limits.max_parallel_branches
    if total > limit:
        raise LimitExceededError(
            "max_parallel_branches",
            limit,
            f"core.parallel '{path}' would run {_amount(total)} branches",
            node=path,
            field=_count_field(params),
        )
    concurrency = _whole(params.get("concurrency", DEFAULT_CONCURRENCY), path, "concurrency")
    if concurrency < 1:
        raise NodeParameterError(
            "`concurrency` must be at least 1", node=path, field="with.concurrency"
        )
    results: list[Any] = [None] * total
    failure: list[BaseException] = []
    paused = False
    next_index = 0

    async def worker() -> None:
        nonlocal paused, next_index
        while next_index < total and not failure:
            index = next_index
            next_index += 1
            var = {"index": index, "item": items[index] if items is not None else None}
            try:
                iteration = await _iterate(parent, node, path, index, var="parallel", value=var)
            except PauseRequested:
                paused = True  # let the other branches finish; the node pauses after
                continue
            except NodeError as exc:
                failure.append(exc)
                tg.cancel_scope.cancel()
                return
            results[index] = iteration.outputs()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, total)):
            tg.start_soon(worker)
            # Workers start one loop turn apart: thousands started in one turn would run their
            # first steps back to back, and the node's timeout could not fire until all had.
            await anyio.lowlevel.checkpoint()
    if failure:
        raise failure[0]
    if paused:
        raise PauseRequested("nested")
    return {"results": results}


async def _iterate(
    parent: GraphRun, node: CompiledNode, path: str, index: int, *, var: str, value: dict[str, Any]
) -> GraphRun:
    assert node.body is not None  # the compiler requires a body for control nodes
    scope = parent.scope.child()
    scope.set(var, value)
    iteration = GraphRun(
        parent.run,
        node.body,
        scope,
        prefix=f"{path}[{index}].",
        restored=parent.run.restored,
    )
    await iteration.execute()
    if iteration.error is not None:
        error = iteration.error
        raise NodeError(
            f"{var} {index}: node '{error['node']}' failed: {error['message']}",
            node=path,
            code=str(error["code"]),
            retryable=False,
        )
    if iteration.paused:
        raise PauseRequested("nested")
    return iteration


def _items(params: dict[str, Any], path: str) -> tuple[list[Any] | None, int | None]:
    if "over" in params:
        over = params["over"]
        if not isinstance(over, list):
            raise NodeParameterError(
                f"`over` must be a list, got {type(over).__name__}", node=path, field="with.over"
            )
        return over, len(over)
    if "count" in params:
        count = _whole(params["count"], path, "count")
        if count < 0:
            raise NodeParameterError(
                f"`count` must be a whole number >= 0, got {count}", node=path, field="with.count"
            )
        return None, count
    return None, None


def _whole(value: Any, path: str, name: str) -> int:
    """An int from a parameter that a template may have made a float (``2.0`` is 2)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise NodeParameterError(
        f"`{name}` must be a whole number, got {value!r}", node=path, field=f"with.{name}"
    )


def _amount(number: int) -> str:
    # 1e30 from a template is an exact int of 31 digits; what the user wrote reads better.
    return str(number) if number < 10**12 else f"{float(number):.3g}"


def _count_field(params: dict[str, Any]) -> str:
    return "with.over" if "over" in params else "with.count"


def _max_iterations(params: dict[str, Any], path: str, default: int, cap: int) -> int:
    if "max_iterations" not in params:
        return default
    limit = _whole(params["max_iterations"], path, "max_iterations")
    if limit < 1:
        raise NodeParameterError(
            f"`max_iterations` must be at least 1, got {limit}",
            node=path,
            field="with.max_iterations",
        )
    if limit > cap:
        raise LimitExceededError(
            "max_loop_iterations",
            cap,
            f"loop '{path}' asks for max_iterations {_amount(limit)}",
            node=path,
            field="with.max_iterations",
        )
    return limit


def _check(expression: Any, where: GraphRun, loop_var: dict[str, Any], path: str) -> bool:
    scope = where.scope.child()
    scope.set("loop", loop_var)
    try:
        value = expression.evaluate(scope)
    except ExpressionError as exc:
        raise NodeError(
            exc.message, node=path, code="expression_error", field="with", retryable=False
        ) from None
    if not isinstance(value, bool):
        raise NodeError(
            f"a loop condition must give a boolean, got {type(value).__name__}",
            node=path,
            code="invalid_condition",
            field="with",
            retryable=False,
        )
    return value
