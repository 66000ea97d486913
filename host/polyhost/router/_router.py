"""RuntimeRouter: sends each node to the adapter of the runtime its node type declares."""

from __future__ import annotations

from typing import Any

from .._errors import RuntimeUnavailableError
from .._limits import Limits
from ..runtimes._base import RuntimeAdapter
from ..runtimes._context import NodeContext
from ..runtimes._plugin import Problem, RuntimeSetup
from ..runtimes._registry import find_runtime, runtime_plugins
from ..workflow._catalog import Catalog, NodeType

__all__ = ["RuntimeRouter"]


class RuntimeRouter:
    """A table of runtime adapters keyed by runtime name."""

    def __init__(self, adapters: dict[str, RuntimeAdapter] | None = None) -> None:
        self._adapters: dict[str, RuntimeAdapter] = dict(adapters or {})

    def register(self, adapter: RuntimeAdapter) -> None:
        """Add or replace the adapter for ``adapter.name``."""
        self._adapters[adapter.name] = adapter

    def install(self, setup: RuntimeSetup) -> None:
        """Give every known runtime (built-in, or a plug-in's) that has no adapter here one
        built by its plug-in, then let each plug-in hook its discovery into the catalog."""
        plugins = runtime_plugins()
        for name, plugin in plugins.items():
            if name not in self._adapters:
                self._adapters[name] = plugin.create(setup)
        for name, plugin in plugins.items():
            plugin.attach(self._adapters[name], setup.catalog)

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        """What ``node_type``'s runtime finds wrong with it before a run."""
        plugin = find_runtime(node_type.runtime)
        return plugin.check(node_type, catalog, limits) if plugin is not None else []

    def check_params(
        self, node_type: NodeType, params: dict[str, Any], limits: Limits
    ) -> list[Problem]:
        """What ``node_type``'s runtime finds wrong with a node's constant ``with`` values."""
        plugin = find_runtime(node_type.runtime)
        return plugin.check_params(node_type, params, limits) if plugin is not None else []

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
