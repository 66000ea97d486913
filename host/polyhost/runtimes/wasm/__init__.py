"""The wasm runtime: WebAssembly modules in a Wasmtime sandbox (wasmtime loads on first use)."""

from ._options import WasmOptions
from ._plugin import PLUGIN, WasmPlugin
from ._runtime import WasmRuntime, check_wasm_node_type, module_limits

__all__ = [
    "PLUGIN",
    "WasmOptions",
    "WasmPlugin",
    "WasmRuntime",
    "check_wasm_node_type",
    "module_limits",
]
