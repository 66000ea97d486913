"""The python runtime: async handlers on the event loop, sync ones in worker threads, and
``isolation = "process"`` handlers in a pool of worker processes."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from pydantic import BaseModel, ValidationError

from ..._codes import check_node_error
from ..._errors import HandlerError, NodeError, NodeOutputError, NodeParameterError, PolyhostError
from ...events._capture import (
    NodeOutput,
    acquire,
    capture_node_output,
    install,
    release,
    release_node_output,
)
from ...workflow._catalog import Catalog, NodeType
from .._context import NodeContext
from .._plugin import options_of
from ._plugin import PythonOptions, load_handler
from ._process_pool import ProcessPool

__all__ = ["PythonRuntime"]


@dataclass(frozen=True, slots=True)
class _Signature:
    is_async: bool
    takes_ctx: bool
    params_model: type[BaseModel] | None


@functools.lru_cache(maxsize=4096)
def _inspect(func: Callable[..., Any]) -> _Signature:
    params = list(inspect.signature(func).parameters.values())
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    model: type[BaseModel] | None = None
    if positional:
        try:
            hints = inspect.get_annotations(func, eval_str=True)
        except Exception:  # unresolvable annotations just mean "no model"
            hints = {}
        annotation = hints.get(positional[0].name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    takes_ctx = len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (async callable objects)
    )
    return _Signature(is_async=is_async, takes_ctx=takes_ctx, params_model=model)


class PythonRuntime:
    """Runs python node handlers (``def handler(params, ctx)``, sync or async)."""

    name = "python"

    def __init__(self, catalog: Catalog, *, process_workers: int | None = None) -> None:
        self._catalog = catalog
        self._process_workers = process_workers
        self._pool: ProcessPool | None = None
        self._capturing = False  # holds the stream proxies (_capture) from its first node on

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        """Run one attempt of a python node.

        What the handler prints or logs, and what its module prints when first imported,
        becomes log events of the node (see ``_capture``).
        """
        if self._capturing:
            install()  # again, should something have replaced sys.stdout since
        else:
            acquire()
            self._capturing = True
        if options_of(node_type, PythonOptions).isolation == "process":
            return await self._execute_in_process(node_type, params, ctx)
        output = NodeOutput(ctx._log_sink)
        token = capture_node_output(output)
        try:
            return await self._execute_inline(node_type, params, ctx)
        finally:
            release_node_output(token)
            output.close()

    async def _execute_inline(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        func = load_handler(self._catalog, node_type)
        signature = _inspect(func)
        arg: Any = (
            _as_model(signature.params_model, params, ctx) if signature.params_model else params
        )
        args = (arg, ctx) if signature.takes_ctx else (arg,)
        try:
            if signature.is_async:
                result = await func(*args)
            else:
                result = await anyio.to_thread.run_sync(
                    _call_in_thread, func, args, ctx, abandon_on_cancel=True
                )
        except NodeError as exc:  # its code and field follow the rule for user-given codes
            raise check_node_error(exc, "handler_error") from exc.__cause__
        except PolyhostError:
            raise
        except (Exception, GeneratorExit) as exc:  # a handler's own failure: a typed node error
            # GeneratorExit too: a task's coroutine is not closed while it runs, so this one is
            # the async handler's own, and would otherwise stop the engine.
            raise HandlerError(f"{type(exc).__name__}: {exc}", node=ctx.node_id) from exc
        return as_output(result, ctx.node_id)

    async def _execute_in_process(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        handler = options_of(node_type, PythonOptions).handler
        if handler is None:
            raise NodeError(
                f"node type {node_type.type} has no handler", node=ctx.node_id, retryable=False
            )
        if self._pool is None:
            self._pool = ProcessPool(max_workers=self._process_workers)
        # The worker's logs and output reach the node's log even when the call fails.
        result, _ = await self._pool.run(
            handler,
            node_type.base_dir,
            params,
            _ctx_info(ctx),
            on_log=lambda level, message, fields: ctx.log(message, level, **fields),
        )
        return as_output(result, ctx.node_id)

    async def aclose(self) -> None:
        """Stop the process pool, if one was started; give the standard streams back."""
        if self._capturing:
            self._capturing = False
            release()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()


def _call_in_thread(func: Callable[..., Any], args: tuple[Any, ...], ctx: NodeContext) -> Any:
    # ctx.log, ctx.chunk and printed lines from a worker thread must reach the event loop's
    # thread; the copy shares the cancel flag, so ``ctx.cancelled`` still follows the engine.
    log_sink = _to_loop(ctx._log_sink)
    if len(args) == 2:
        threaded = dataclasses.replace(
            ctx, _log_sink=log_sink, _chunk_sink=_to_loop(ctx._chunk_sink)
        )
        args = (args[0], threaded)
    output = NodeOutput(log_sink)
    token = capture_node_output(output)
    try:
        return func(*args)
    except GeneratorExit as exc:
        # The handler's own: out of a worker thread it would reach the engine as if the node's
        # task were being closed, and stop the run.
        raise HandlerError(f"GeneratorExit: {exc}", node=ctx.node_id) from exc
    finally:
        release_node_output(token)
        output.close()


def _to_loop(sink: Callable[..., None] | None) -> Callable[..., None] | None:
    if sink is None:
        return None

    def forward(*args: Any) -> None:
        anyio.from_thread.run_sync(sink, *args)

    return forward


def _as_model(model: type[BaseModel], params: dict[str, Any], ctx: NodeContext) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        raise NodeParameterError(
            f"parameter {field or '(root)'}: {error['msg']}", node=ctx.node_id, field=field
        ) from exc


def as_output(result: Any, node_id: str) -> dict[str, Any] | None:
    """A handler's return value as a node output (dict or None)."""
    if result is None or isinstance(result, dict):
        return result
    if isinstance(result, BaseModel):
        dumped: dict[str, Any] = result.model_dump(mode="json")
        return dumped
    raise NodeOutputError(
        f"the handler returned {type(result).__name__}; a node returns a dict or a pydantic model",
        node=node_id,
    )


def _ctx_info(ctx: NodeContext) -> dict[str, Any]:
    return {
        "run_id": ctx.run_id,
        "workflow_id": ctx.workflow_id,
        "node_id": ctx.node_id,
        "node_type": ctx.node_type,
        "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key,
        "durable": ctx.durable,
        "resume_input": ctx.resume_input,
    }
