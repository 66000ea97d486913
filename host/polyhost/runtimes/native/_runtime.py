"""The native runtime: Rust node functions, run on a worker thread with the GIL released.

Built-in native nodes live in the extension's registry and are called by name (through
``polyhost.plan._bridge``); out-of-tree ones are a callable ``(params, cancel) -> dict`` in an
importable extension module that a manifest names (``module`` + ``handler``). Either way a
failure or a Rust panic becomes a typed ``NodeError`` naming the node, and cancellation (a
timeout, a cancelled run) reaches the Rust code through a flag it checks between chunks.

The limits built-in nodes keep to (record size, ``where`` nesting, ...) are fields of
:class:`~polyhost._limits.Limits`, passed into Rust by name with every call; the compiler
asks the same nodes about parameters known at compile time (the plug-in's ``check_params``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..._errors import NodeError, NodeParameterError
from ..._limits import Limits, default_limits
from ...plan._bridge import (
    CancelToken,
    call_native_node,
    is_native_failure,
    native_limit_names,
    native_node_error,
)
from ...workflow._catalog import Catalog, NodeType
from .._context import NodeContext
from .._plugin import options_of
from ._plugin import NativeOptions, load_module_handler

__all__ = ["NativeRuntime", "native_limits", "path_params"]


def native_limits(limits: Limits, max_output_bytes: int | None = None) -> dict[str, int]:
    """The limits the built-in native nodes enforce, by name, from ``limits``.

    ``max_output_bytes`` (the host's output limit) bounds rows a node returns inline while
    it collects them; without it the native default stands.
    """
    values = limits.model_dump()
    out = {name: int(values[name]) for name in native_limit_names() if name in values}
    if max_output_bytes is not None:
        out["max_output_bytes"] = max_output_bytes
    return out


class NativeRuntime:
    """Runs ``runtime = "native"`` node types."""

    name = "native"

    def __init__(
        self,
        catalog: Catalog,
        allowed_roots: Sequence[Path],
        limits: Limits | None = None,
        max_output_bytes: int | None = None,
    ) -> None:
        self._catalog = catalog
        self._roots = [Path(root).resolve() for root in allowed_roots]
        self._limits = native_limits(limits or default_limits(), max_output_bytes)

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        """Run one attempt on a worker thread; the event loop keeps going meanwhile."""
        params = self._resolve_paths(node_type, params, ctx.node_id)
        token = CancelToken()
        call = self._call(node_type, params, token, ctx.node_id)
        try:
            output = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except Exception as exc:
            if is_native_failure(exc):
                raise native_node_error(exc, ctx.node_id) from exc
            token.cancel()
            raise
        except BaseException:
            token.cancel()  # a cancelled or timed-out call: the Rust side stops at its next check
            raise
        if output is not None and not isinstance(output, dict):
            raise NodeError(
                f"the native node returned {type(output).__name__}, not an object",
                node=ctx.node_id,
                code="invalid_output",
                retryable=False,
            )
        return output

    async def aclose(self) -> None:
        """Nothing to release: native calls hold no resources between calls."""

    def _call(
        self, node_type: NodeType, params: dict[str, Any], token: Any, node_id: str
    ) -> Callable[[], Any]:
        options = options_of(node_type, NativeOptions)
        if options.module is None:
            return call_native_node(options.handler, params, token, node_id, self._limits)
        func = load_module_handler(self._catalog, node_type)
        return functools.partial(func, params, token)

    def _resolve_paths(
        self, node_type: NodeType, params: dict[str, Any], node_id: str
    ) -> dict[str, Any]:
        keys = path_params(node_type)
        if not keys:
            return params
        resolved = dict(params)
        for dotted in keys:
            holder, key = _holder(resolved, dotted)
            if holder is None or not isinstance(holder.get(key), str):
                continue
            holder[key] = str(self._inside_roots(holder[key], node_id, f"with.{dotted}"))
        return resolved

    def _inside_roots(self, value: str, node_id: str, field: str) -> Path:
        if not self._roots:
            raise NodeParameterError(
                "this host allows no files: set allowed_roots in the host config",
                node=node_id,
                field=field,
            )
        raw = Path(value).expanduser()
        candidate = (raw if raw.is_absolute() else self._roots[0] / raw).resolve()
        for root in self._roots:
            if candidate == root or root in candidate.parents:
                return candidate
        roots = ", ".join(str(r) for r in self._roots)
        raise NodeParameterError(
            f"the path {value!r} is outside the allowed roots ({roots})", node=node_id, field=field
        )


def path_params(node_type: NodeType) -> list[str]:
    """``with`` keys (dotted for nested objects) whose schema says ``format: path``."""
    found: list[str] = []

    def walk(schema: Any, prefix: str) -> None:
        if not isinstance(schema, dict):
            return
        for name, prop in (schema.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            if prop.get("format") == "path":
                found.append(prefix + name)
            walk(prop, f"{prefix}{name}.")

    walk(node_type.input_schema, "")
    return found


def _holder(params: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    *parents, key = dotted.split(".")
    holder: Any = params
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
        if holder is None:
            return None, key
    if isinstance(holder, dict):
        # Params are resolved afresh for every attempt, so changing them in place is safe.
        return holder, key
    return None, key
