"""RuntimeRouter: sends each node to the adapter of the runtime its node type declares."""

from __future__ import annotations

from typing import Any

from ._catalog import NodeType
from ._context import NodeContext
from ._errors import RuntimeUnavailableError
from .runtimes._base import RuntimeAdapter

__all__ = ["RuntimeRouter"]


class RuntimeRouter:
    """A table of runtime adapters keyed by runtime name."""

    def __init__(self, adapters: dict[str, RuntimeAdapter] | None = None) -> None:
        self._adapters: dict[str, RuntimeAdapter] = dict(adapters or {})

    def register(self, adapter: RuntimeAdapter) -> None:
        """Add or replace the adapter for ``adapter.name``."""
        self._adapters[adapter.name] = adapter

    def has(self, runtime: str) -> bool:
        """True when an adapter for ``runtime`` is registered."""
        return runtime in self._adapters

    @property
    def runtimes(self) -> list[str]:
        """Names of the registered runtimes."""
        return sorted(self._adapters)

    def adapter(self, runtime: str) -> RuntimeAdapter:
        """The adapter registered for ``runtime``; ``RuntimeUnavailableError`` when none is."""
        found = self._adapters.get(runtime)
        if found is None:
            raise RuntimeUnavailableError(
                f"this host has no {runtime!r} runtime (available: {', '.join(self.runtimes)})"
            )
        return found

    def adapter_for(self, node_type: NodeType) -> RuntimeAdapter:
        """The adapter that runs ``node_type``; ``RuntimeUnavailableError`` when none is."""
        adapter = self._adapters.get(node_type.runtime)
        if adapter is None:
            raise RuntimeUnavailableError(
                f"node type {node_type.type} needs the {node_type.runtime!r} runtime, "
                f"which this host does not have (available: {', '.join(self.runtimes)})"
            )
        return adapter

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        """Run one attempt of a node on its runtime."""
        return await self.adapter_for(node_type).execute(node_type, params, ctx)

    async def aclose(self) -> None:
        """Close every adapter."""
        for adapter in self._adapters.values():
            await adapter.aclose()
