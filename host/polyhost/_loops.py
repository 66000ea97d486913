"""``core.loop`` and ``core.parallel``: run a node's body once per iteration or branch.

Each iteration is a ``GraphRun`` of the body with its own Rust scheduler state and a child scope
that adds ``loop`` or ``parallel``; its nodes are named ``node[i].child`` in events and the
store, so a resumed run replays the iterations that finished and runs only the rest.
"""

from __future__ import annotations

from typing import Any

import anyio

from ._compiler import CompiledNode
from ._errors import ExpressionError, NodeError
from ._graph import GraphRun
from ._limiter import NodeSlots
from ._pause import PauseRequested

__all__ = ["run_loop", "run_parallel"]

DEFAULT_MAX_ITERATIONS = 10_000
DEFAULT_CONCURRENCY = 8


async def run_loop(
    parent: GraphRun, node: CompiledNode, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Iterations one after another: ``count``, ``over``, ``while`` or ``do_while``."""
    items, total = _items(params, path)
    limit = _max_iterations(params, path)
    conditions = node.conditions
    results: list[Any] = []
    index = 0
    while True:
        if total is not None and index >= total:
            break
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
    """Branches at once, at most ``concurrency`` at a time; results keep the input order."""
    items, total = _items(params, path)
    if total is None:
        raise NodeError(
            "core.parallel takes `count` or `over`", node=path, field="with", retryable=False
        )
    concurrency = int(params.get("concurrency", DEFAULT_CONCURRENCY))
    if concurrency < 1:
        raise NodeError(
            "`concurrency` must be at least 1", node=path, field="with.concurrency", retryable=False
        )
    results: list[Any] = [None] * total
    slots = NodeSlots(concurrency)
    failure: list[BaseException] = []
    paused = False

    async def branch(index: int) -> None:
        nonlocal paused
        async with slots:
            var = {"index": index, "item": items[index] if items is not None else None}
            try:
                iteration = await _iterate(parent, node, path, index, var="parallel", value=var)
            except PauseRequested:
                paused = True  # let the other branches finish; the node pauses after
                return
            except NodeError as exc:
                failure.append(exc)
                tg.cancel_scope.cancel()
                return
            results[index] = iteration.outputs()

    async with anyio.create_task_group() as tg:
        for index in range(total):
            tg.start_soon(branch, index)
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
            raise NodeError(
                f"`over` must be a list, got {type(over).__name__}",
                node=path,
                field="with.over",
                retryable=False,
            )
        return over, len(over)
    if "count" in params:
        count = params["count"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise NodeError(
                f"`count` must be a whole number >= 0, got {count!r}",
                node=path,
                field="with.count",
                retryable=False,
            )
        return None, count
    return None, None


def _max_iterations(params: dict[str, Any], path: str) -> int:
    limit = params.get("max_iterations", DEFAULT_MAX_ITERATIONS)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise NodeError(
            f"`max_iterations` must be a whole number >= 1, got {limit!r}",
            node=path,
            field="with.max_iterations",
            retryable=False,
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
