"""The wasm runtime as a plug-in: its options, its module check, its adapter."""

from __future__ import annotations

from typing import ClassVar

from ..._limits import Limits
from ...workflow._catalog import Catalog, NodeType
from ...workflow._diagnostics import DiagnosticCode
from .._base import RuntimeAdapter
from .._plugin import Problem, RuntimeOptions, RuntimePlugin, RuntimeSetup
from ._options import WasmOptions
from ._runtime import WasmRuntime, check_wasm_node_type

__all__ = ["PLUGIN", "WasmPlugin"]


class WasmPlugin(RuntimePlugin):
    """WebAssembly modules in a Wasmtime sandbox."""

    name: ClassVar[str] = "wasm"
    options: ClassVar[type[RuntimeOptions]] = WasmOptions
    target: ClassVar[str | None] = "module"

    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        cache = setup.home / "wasm-cache" if setup.cache else None
        return WasmRuntime(cache_dir=cache, limits=setup.limits)

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        # The module is read and validated now, not compiled.
        return [
            (DiagnosticCode.INVALID_WASM_MODULE, problem, None)
            for problem in check_wasm_node_type(node_type, limits)
        ]


PLUGIN = WasmPlugin()
