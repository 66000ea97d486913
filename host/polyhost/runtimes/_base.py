"""The one interface every runtime adapter implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..workflow._catalog import NodeType
from ._context import NodeContext

__all__ = ["RuntimeAdapter"]


@runtime_checkable
class RuntimeAdapter(Protocol):
    """Runs one attempt of one node; the engine never knows which runtime ran it.

    ``execute`` returns the node's output (a JSON-serialisable dict, or None) or raises a
    ``NodeError``. Cancellation arrives as the usual async cancellation; adapters that run work
    elsewhere (threads, processes, sidecars) must stop or abandon it and call ``ctx.cancel()``.
    """

    name: str

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        """Run one attempt and return its output."""
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds (pools, channels, processes); idempotent."""
        ...
