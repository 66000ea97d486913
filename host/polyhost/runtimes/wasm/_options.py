"""A wasm node type's options: its module, the limits it runs under, the WASI grants it has."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .._plugin import RuntimeOptions

__all__ = ["WasmOptions"]


class WasmOptions(RuntimeOptions):
    """The keys of a wasm node type; ``limits`` and ``grants`` are checked when a workflow
    using it compiles (a diagnostic naming the key), so a manifest loads either way."""

    module: str = Field(description="path of the module, relative to the manifest's folder")
    limits: dict[str, Any] = Field(
        default_factory=dict, description="memory, fuel, timeout, ... (docs/wasm.md)"
    )
    grants: dict[str, Any] = Field(
        default_factory=dict, description="WASI: read, write, env, args (nothing by default)"
    )
